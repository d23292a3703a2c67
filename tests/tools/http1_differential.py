"""What statuscope forwards, read by two HTTP/1 parsers nobody here wrote.

    http1_differential.py random HOST:PORT DIR COUNT SEED
        The same check over COUNT mutations drawn at random from the corpus's parts
        (`fuzz/differential.sh`, in `make fuzz`).

    http1_differential.py recorder DIR
        An upstream that keeps the bytes of each connection in DIR/NNNNNN (written before it
        answers), reads each request with h11 to know where it ends, and answers it 200 with
        `Connection: close`, so every forwarded request arrives on a connection of its own.
        Prints `READY <port>`.

    http1_differential.py corpus HOST:PORT DIR
        Sends each generated request mutation to statuscope on a connection of its own,
        followed by a plain request that asks to close it, and checks: everything statuscope forwarded is read identically by h11 (strict) and by
        waitress's parser (lenient) — the same number of requests, methods, targets, header
        fields and body bytes — and a mutation the two parsers read differently is never
        forwarded past the requests they agree on, unless statuscope rewrote the request line
        they differ on (an absolute-form target, a version other than HTTP/1.1). Prints a JSON summary; exits 1 on a
        failure, with the mutation's bytes and both readings.
"""
import base64
import json
import os
import socket
import sys
import threading
from urllib.parse import unquote

import h11
from waitress.adjustments import Adjustments
from waitress.parser import HTTPRequestParser

# Fields the parsers consume as framing (waitress drops them from its map) or that an
# intermediary rewrites: compared through the body and the request count instead.
FRAMING = {"transfer-encoding", "content-length", "connection", "keep-alive"}


def read_h11(data):
    """Requests h11 reads from `data`, then "error: ..." if it stops on one."""
    conn = h11.Connection(our_role=h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    readings, current = [], None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as error:
            readings.append(f"error: {error}")
            return readings
        if event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
            if event is h11.PAUSED:
                conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                conn.send(h11.EndOfMessage())
                conn.start_next_cycle()
                continue
            if current is not None:
                readings.append("error: incomplete")
            return readings
        if isinstance(event, h11.Request):
            target = event.target.decode("latin-1")
            path, _, query = target.partition("?")
            current = {
                "method": event.method.decode("latin-1"),
                "path": unquote(path, encoding="latin-1"),
                "query": query,
                "headers": fields((n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers),
                "body": b"",
            }
        elif isinstance(event, h11.Data):
            current["body"] += event.data
        elif isinstance(event, h11.EndOfMessage):
            current["body"] = current["body"].decode("latin-1")
            readings.append(current)
            current = None


def read_waitress(data):
    """Requests waitress's parser reads from `data`, then "error: ..." if it stops on one."""
    readings = []
    while data:
        parser = HTTPRequestParser(Adjustments())
        while data and not parser.completed:
            taken = parser.received(data)
            data = data[taken:]
            if taken == 0:
                break
        if parser.error is not None:
            readings.append(f"error: {type(parser.error).__name__}")
            return readings
        if not parser.completed:
            if parser.header_plus or parser.headers_finished:
                readings.append("error: incomplete")
            return readings
        body = parser.get_body_stream().read()
        headers = {k: v for k, v in parser.headers.items()}
        readings.append(
            {
                "method": parser.command,
                "path": parser.path,
                "query": parser.query,
                "headers": fields((k.replace("_", "-"), v) for k, v in headers.items()),
                "body": body.decode("latin-1"),
            }
        )
        if parser.connection_close:
            break
    return readings


def fields(pairs):
    """Header fields as compared: names lowercased, `-` and `_` alike (waitress folds them),
    repeated fields joined, framing left out."""
    joined = {}
    for name, value in pairs:
        name = name.lower().replace("_", "-")
        if name in FRAMING:
            continue
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return dict(sorted(joined.items()))


def rewritten(mutation, sent_on):
    """Whether statuscope rewrote the request lines the parsers differ on: the mutation has an
    absolute-form target or a version other than HTTP/1.1, and nothing forwarded does (a
    request line statuscope normalises is read the same by both parsers once it is)."""
    def odd(data):
        lines = [line for line in data.split(b"\n") if line.count(b" ") == 2 and b"HTTP/" in line]
        return any(b"://" in line.split(b" ")[1] or not line.rstrip(b"\r").endswith(b" HTTP/1.1") for line in lines)
    return odd(mutation) and not odd(sent_on)


def agreed(a, b):
    """How many leading requests two readings share."""
    count = 0
    for x, y in zip(a, b):
        if x != y or isinstance(x, str):
            break
        count += 1
    return count


# The corpus.

GOOD_BODY = b"5\r\nhello\r\n0\r\n\r\n"
TE_NAMES = [b"Transfer-Encoding", b"transfer-encoding", b"TRANSFER-ENCODING", b"Transfer-Encoding ",
            b"Transfer_Encoding", b"Transfer-Encoding\t", b" Transfer-Encoding"]
TE_VALUES = [b"chunked", b"Chunked", b"CHUNKED", b" chunked", b"chunked ", b"\tchunked", b"chunked\t",
             b"chunked, chunked", b"gzip, chunked", b"chunked, gzip", b"identity, chunked", b"xchunked",
             b"chunked;q=1", b'"chunked"', b"chunk", b"", b"chunked,", b",chunked", b"chunked\x0b",
             b"chu\x00nked"]
CL_NAMES = [b"Content-Length", b"content-length", b"Content-Length ", b"Content_Length", b" Content-Length"]
CL_VALUES = [b"5", b"05", b"005", b"+5", b"-5", b" 5", b"5 ", b"5, 5", b"5,5", b"5, 6", b"0x5", b"5.0",
             b"", b"99999999999999999999", b"4", b"6", b"5\t"]
CHUNK_SIZES = [b"5", b"05", b"0005", b"0x5", b"5;ext=1", b"5;ext", b"5 ;ext", b"5\t", b"5 ",
               b"fffffffffffffffff5", b"-5", b"+5", b"5;a=\"b\"", b"5;", b"00000000000000000005",
               b"0X5", b" 5", b"5\r\x00"]
ENDINGS = [b"\r\n", b"\n", b"\r"]
TARGETS = [b"/a", b"http://svc/a", b"HTTP://svc/a", b"http://other/a", b"http://svc", b"https://svc/a",
           b"http://svc:80/a", b"http://u@svc/a", b"/a?b=%20c", b"/a#frag", b"*", b"svc:80", b"//a"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"HTTP/1.9", b"HTTP/2.0", b"http/1.1", b"HTTP/1.10",
            b"HTTP/1.1 "]


def request(method=b"POST", target=b"/a", version=b"HTTP/1.1", fields_=(), body=b"", eol=b"\r\n"):
    head = method + b" " + target + b" " + version + eol + b"Host: svc" + eol
    for name, value in fields_:
        head += name + b":" + (b" " if value and value[:1] not in b" \t" else b"") + value + eol
    return head + eol + body


def corpus():
    out = []
    for name in TE_NAMES:
        for value in TE_VALUES:
            out.append(request(fields_=[(name, value)], body=GOOD_BODY))
    for name in CL_NAMES:
        for value in CL_VALUES:
            out.append(request(fields_=[(name, value)], body=b"hello"))
    for te in TE_VALUES[:8]:
        for cl in (b"5", b"0", b"14"):
            out.append(request(fields_=[(b"Content-Length", cl), (b"Transfer-Encoding", te)], body=GOOD_BODY))
            out.append(request(fields_=[(b"Transfer-Encoding", te), (b"Content-Length", cl)], body=GOOD_BODY))
    for a, b in [(b"chunked", b"chunked"), (b"gzip", b"chunked"), (b"chunked", b"gzip"), (b"chunked", b"")]:
        out.append(request(fields_=[(b"Transfer-Encoding", a), (b"Transfer-Encoding", b)], body=GOOD_BODY))
    for a, b in [(b"5", b"5"), (b"5", b"6"), (b"05", b"5")]:
        out.append(request(fields_=[(b"Content-Length", a), (b"Content-Length", b)], body=b"hello"))
    for size in CHUNK_SIZES:
        for eol in (b"\r\n", b"\n"):
            body = size + eol + b"hello" + b"\r\n0\r\n\r\n"
            out.append(request(fields_=[(b"Transfer-Encoding", b"chunked")], body=body))
    for eol in ENDINGS:
        out.append(request(method=b"GET", eol=eol))
        out.append(request(fields_=[(b"Content-Length", b"5")], body=b"hello", eol=eol))
        out.append(request(fields_=[(b"Transfer-Encoding", b"chunked")], body=GOOD_BODY.replace(b"\r\n", eol)))
    for value in [b"a\rb", b"a\nb", b"a\r\n b", b"a\r\n\tb", b"a\x00b", b"a\x7fb"]:
        out.append(request(method=b"GET", fields_=[(b"X-Folded", value)]))
    out.append(request(method=b"GET", fields_=[(b"X-A", b"1\r\n X-B: 2")]))
    out.append(request(fields_=[(b"Content-Length", b"5\r\n 0")], body=b"hello"))
    out.append(request(fields_=[(b"Transfer-Encoding", b"\r\n chunked")], body=GOOD_BODY))
    for target in TARGETS:
        for method in (b"GET", b"OPTIONS"):
            out.append(request(method=method, target=target))
    for version in VERSIONS:
        out.append(request(method=b"GET", version=version))
        out.append(request(version=version, fields_=[(b"Content-Length", b"5")], body=b"hello"))
        out.append(request(version=version, fields_=[(b"Transfer-Encoding", b"chunked")], body=GOOD_BODY))
    for method in (b"get", b"G ET", b"GET\t", b"GE\x00T", b"PATCH", b"X-CUSTOM"):
        out.append(request(method=method, fields_=[(b"Content-Length", b"0")]))
    first = request(method=b"GET")
    singles = list(out)
    for mutation in singles[::3]:
        out.append(first + mutation)
        out.append(mutation + first)
    return out


def random_corpus(count, seed):
    """`count` mutations drawn from the same parts at random, for `make fuzz`'s longer run."""
    import random

    pick = random.Random(seed).choice
    out = []
    for _ in range(count):
        fields_ = []
        for _ in range(pick([0, 1, 1, 2, 3])):
            fields_.append(pick([(pick(TE_NAMES), pick(TE_VALUES)), (pick(CL_NAMES), pick(CL_VALUES))]))
        size = pick(CHUNK_SIZES)
        body = pick([b"", b"hello", GOOD_BODY, size + b"\r\nhello\r\n0\r\n\r\n", size + b"\nhello\n0\n\n"])
        mutation = request(
            # Mostly plain, so the odd part under test is usually the only one.
            method=pick([b"GET", b"POST"] * 4 + [b"PUT", b"get", b"OPTIONS"]),
            target=pick([b"/a"] * 12 + TARGETS),
            version=pick(VERSIONS[:4] + [b"HTTP/1.1"] * 12),
            fields_=fields_,
            body=body,
            eol=pick([b"\r\n"] * 12 + ENDINGS),
        )
        if pick([False, False, True]):
            mutation += request(method=b"GET")
        out.append(mutation)
    return out


# The recorder.


def recorder(directory):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    count = 0
    while True:
        sock, _ = listener.accept()
        count += 1
        path = os.path.join(directory, f"{count:06d}")
        threading.Thread(target=record, args=(sock, path), daemon=True).start()


def record(sock, path):
    conn = h11.Connection(our_role=h11.SERVER)
    kept = b""
    answer = None
    try:
        while answer is None:
            data = sock.recv(65536)
            kept += data
            conn.receive_data(data)
            try:
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        break
                    if isinstance(event, h11.EndOfMessage):
                        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        break
                    if isinstance(event, h11.ConnectionClosed):
                        answer = b""
                        break
            except h11.RemoteProtocolError:
                answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            if not data:
                answer = answer or b""
    except OSError:
        answer = b""
    with open(path + ".tmp", "wb") as out:
        out.write(kept)
    os.rename(path + ".tmp", path)
    try:
        sock.sendall(answer)
        sock.close()
    except OSError:
        pass


# Sent after each mutation, so statuscope closes the connection once it has answered all it
# read (a client's half-close would be taken as the client leaving, as nginx takes it).
LAST = b"GET /last HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n"


def exchange(target, data):
    """Sends `data` on a fresh connection and reads until statuscope closes it."""
    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(data)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return answer
            answer += chunk
    except OSError:
        return b""
    finally:
        sock.close()


def run_corpus(target, directory, mutations):
    failures, forwarded, refused_ambiguous, agreeing = [], 0, 0, 0
    seen = set(os.listdir(directory))
    for mutation in mutations:
        mutation += LAST
        exchange(target, mutation)
        now = set(n for n in os.listdir(directory) if not n.endswith(".tmp"))
        new = sorted(now - seen)
        seen = now
        sent_on = b"".join(open(os.path.join(directory, n), "rb").read() for n in new)
        raw_strict, raw_lenient = read_h11(mutation), read_waitress(mutation)
        strict, lenient = read_h11(sent_on), read_waitress(sent_on)
        count = len([r for r in strict if not isinstance(r, str)])
        forwarded += count
        problem = None
        if strict != lenient:
            problem = "the parsers read what statuscope forwarded differently"
        elif raw_strict != raw_lenient:
            refused_ambiguous += 1
            if count > agreed(raw_strict, raw_lenient) and not rewritten(mutation, sent_on):
                problem = "a request the parsers read differently was forwarded"
        else:
            agreeing += 1
        if problem:
            failures.append(
                {
                    "problem": problem,
                    "mutation": base64.b64encode(mutation).decode(),
                    "mutation_text": mutation.decode("latin-1"),
                    "forwarded": sent_on.decode("latin-1"),
                    "h11": strict,
                    "waitress": lenient,
                    "h11_of_mutation": raw_strict,
                    "waitress_of_mutation": raw_lenient,
                }
            )
    summary = {
        "mutations": len(mutations),
        "forwarded_requests": forwarded,
        "parsers_disagreed_on_mutation": refused_ambiguous,
        "failures": failures,
    }
    print(json.dumps(summary, default=str), flush=True)
    return 1 if failures else 0


def main():
    if sys.argv[1] == "recorder":
        recorder(sys.argv[2])
    elif sys.argv[1] == "corpus":
        sys.exit(run_corpus(sys.argv[2], sys.argv[3], corpus()))
    elif sys.argv[1] == "random":
        mutations = random_corpus(int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(run_corpus(sys.argv[2], sys.argv[3], mutations))
    elif sys.argv[1] == "count":
        print(len(corpus()))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
