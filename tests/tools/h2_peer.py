"""Raw HTTP/2 peers for the end-to-end tests of tests/e2e/h2.rs, built on PyPI's h2, hpack and
hyperframe (the frames of a hostile client are written by hand: h2's state machine would refuse
to send them).

    h2_peer.py attack TARGET NAME     one hostile client against TARGET (host:port); prints what
                                      became of its connection as one JSON object:
                                      {"goaway": code|null, "closed": bool, "resets": {code: n},
                                       "responses": {status: n}, "frames": n}
    h2_peer.py upstream MODE          an h2c upstream on 127.0.0.1 that prints `READY <port>`;
                                      GET /__stats answers its counts as JSON. MODE:
                                        goaway-after:N  after N requests, GOAWAY with the last
                                                        stream it processed, later streams
                                                        ignored, the connection closed once
                                                        the processed ones are answered
                                        one-stream:MS   SETTINGS_MAX_CONCURRENT_STREAMS 1 (a
                                                        stream past it refused), each
                                                        answer after MS milliseconds
                                        refuse-first    RST_STREAM REFUSED_STREAM for the very
                                                        first request
                                        silent          never answers a request: it stays
                                                        open until the client resets it (a
                                                        server that does not keep deadlines)
"""

import json
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# How long an attack goes on at most: the tests stay fast.
ATTACK_SECONDS = 2.0


def request_block(encoder, path, extra=()):
    return encoder.encode(
        [(":method", "GET"), (":scheme", "http"), (":authority", "upstream"), (":path", path), *extra]
    )


class Observer:
    """Reads what the proxy sends on an attacking connection, in a thread of its own."""

    def __init__(self, sock):
        self.sock = sock
        self.goaway = None
        self.closed = False
        self.resets = {}
        self.responses = {}
        self.frames = 0
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return
            buf += chunk
            while len(buf) >= 9:
                length = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + length:
                    break
                kind, flags = buf[3], buf[4]
                payload = buf[9 : 9 + length]
                buf = buf[9 + length :]
                self.frames += 1
                if kind == 0x7:
                    self.goaway = int.from_bytes(payload[4:8], "big")
                elif kind == 0x3:
                    code = int.from_bytes(payload[:4], "big")
                    self.resets[code] = self.resets.get(code, 0) + 1
                elif kind == 0x1:
                    try:
                        for name, value in self.decoder.decode(payload):
                            if name == ":status":
                                self.responses[value] = self.responses.get(value, 0) + 1
                    except Exception:
                        pass

    def outcome(self):
        return {
            "goaway": self.goaway,
            "closed": self.closed,
            "resets": {str(k): v for k, v in self.resets.items()},
            "responses": self.responses,
            "frames": self.frames,
        }


def open_connection(target, settings=None):
    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    frame = SettingsFrame(0)
    frame.settings = settings or {}
    sock.sendall(PREFACE + frame.serialize())
    return sock


def send(sock, data):
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def until_done(observer, deadline):
    while time.time() < deadline and not observer.closed:
        time.sleep(0.01)


def rapid_reset(target):
    """CVE-2023-44487: streams opened and reset at once, thousands of them."""
    sock = open_connection(target)
    observer = Observer(sock)
    encoder = hpack.Encoder()
    deadline = time.time() + ATTACK_SECONDS
    stream = 1
    while time.time() < deadline and not observer.closed and stream < 20000:
        burst = b""
        for _ in range(100):
            headers = HeadersFrame(stream)
            headers.data = request_block(encoder, "/slow/1000")
            headers.flags.add("END_HEADERS")
            headers.flags.add("END_STREAM")
            reset = RstStreamFrame(stream)
            reset.error_code = 8
            burst += headers.serialize() + reset.serialize()
            stream += 2
        if not send(sock, burst):
            break
    until_done(observer, deadline)
    return observer


def continuation_flood(target):
    """HEADERS without END_HEADERS, then CONTINUATION frames without end."""
    sock = open_connection(target)
    observer = Observer(sock)
    encoder = hpack.Encoder()
    headers = HeadersFrame(1)
    headers.data = request_block(encoder, "/status/200")
    send(sock, headers.serialize())
    deadline = time.time() + ATTACK_SECONDS
    filler = hpack.Encoder().encode([("x-filler", "a" * 8000)])
    while time.time() < deadline and not observer.closed:
        frame = ContinuationFrame(1)
        frame.data = filler
        if not send(sock, frame.serialize() * 8):
            break
    until_done(observer, deadline)
    return observer


def control_flood(target, make):
    sock = open_connection(target)
    observer = Observer(sock)
    deadline = time.time() + ATTACK_SECONDS
    frame = make().serialize() * 1000
    while time.time() < deadline and not observer.closed:
        if not send(sock, frame):
            break
    until_done(observer, deadline)
    return observer


def settings_flood(target):
    return control_flood(target, lambda: SettingsFrame(0, settings={0x3: 100}))


def ping_flood(target):
    return control_flood(target, lambda: PingFrame(0, opaque_data=b"12345678"))


def header_frames(stream, block, end_stream=True):
    """A header block in a HEADERS frame and as many CONTINUATION frames as it needs."""
    headers = HeadersFrame(stream)
    headers.data, rest = block[:16000], block[16000:]
    if end_stream:
        headers.flags.add("END_STREAM")
    if not rest:
        headers.flags.add("END_HEADERS")
    out = headers.serialize()
    while rest:
        frame = ContinuationFrame(stream)
        frame.data, rest = rest[:16000], rest[16000:]
        if not rest:
            frame.flags.add("END_HEADERS")
        out += frame.serialize()
    return out


def hpack_bomb(target):
    """One large field put in the dynamic table, then referenced thousands of times."""
    sock = open_connection(target)
    observer = Observer(sock)
    # A literal with incremental indexing (RFC 7541 §6.2.1): the entry goes to index 62.
    big = b"\x40" + encode_string(b"x-bomb") + encode_string(b"b" * 4000)
    pseudo = hpack.Encoder().encode(
        [(":method", "GET"), (":scheme", "http"), (":authority", "upstream"), (":path", "/status/200")]
    )
    stream = 1
    deadline = time.time() + ATTACK_SECONDS
    first = True
    while time.time() < deadline and not observer.closed and stream < 200:
        block = pseudo + (big if first else b"") + b"\xbe" * 15000
        first = False
        if not send(sock, header_frames(stream, block)):
            break
        stream += 2
    until_done(observer, deadline)
    return observer


def encode_string(raw):
    """A string literal, not Huffman-coded."""
    return encode_int(len(raw), 7, 0) + raw


def encode_int(value, prefix, flags):
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([flags | value])
    out = [flags | limit]
    value -= limit
    while value >= 128:
        out.append((value % 128) + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def header_list_over_limit(target):
    """One request whose header list is larger than statuscope's limit."""
    sock = open_connection(target)
    observer = Observer(sock)
    encoder = hpack.Encoder()
    extra = [(f"x-big-{i}", "v" * 1000) for i in range(48)]
    send(sock, header_frames(1, request_block(encoder, "/status/200", extra)))
    until_done(observer, time.time() + 1.0)
    return observer


def many_requests(target, count, path, settings=None):
    """`count` requests for `path` sent at once, on a connection with these settings."""
    sock = open_connection(target, settings)
    observer = Observer(sock)
    encoder = hpack.Encoder()
    out = b"".join(header_frames(1 + 2 * n, request_block(encoder, path)) for n in range(count))
    send(sock, out)
    until_done(observer, time.time() + ATTACK_SECONDS)
    return observer


def too_many_streams(target):
    """More streams open at once than statuscope allows, each held open by a slow upstream."""
    return many_requests(target, 300, "/slow/1500")


def stalled_download(target):
    """Large downloads on a connection whose window never opens."""
    return many_requests(target, 50, "/bytes/50000000", {0x4: 0})


def bad_preface(target):
    """The preface's first line, then something that is not the rest of it."""
    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    observer = Observer(sock)
    send(sock, b"PRI * HTTP/2.0\r\n\r\nXY\r\n\r\n" + b"\x00" * 64)
    until_done(observer, time.time() + ATTACK_SECONDS)
    return observer


def not_settings_first(target):
    """The preface, then a frame that is not SETTINGS."""
    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    observer = Observer(sock)
    send(sock, PREFACE + PingFrame(0, opaque_data=b"12345678").serialize())
    until_done(observer, time.time() + ATTACK_SECONDS)
    return observer


ATTACKS = {
    "rapid-reset": rapid_reset,
    "continuation-flood": continuation_flood,
    "settings-flood": settings_flood,
    "ping-flood": ping_flood,
    "hpack-bomb": hpack_bomb,
    "header-list-over-limit": header_list_over_limit,
    "too-many-streams": too_many_streams,
    "stalled-download": stalled_download,
    "bad-preface": bad_preface,
    "not-settings-first": not_settings_first,
}


class Upstream:
    """A scriptable h2c server: one thread per connection, h2's state machine."""

    def __init__(self, mode):
        self.mode, _, arg = mode.partition(":")
        self.arg = int(arg) if arg else 0
        self.lock = threading.Lock()
        self.requests = 0
        self.processed = 0
        self.connections = 0
        self.refused = 0
        self.concurrent = 0
        self.most_concurrent = 0

    def serve(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        print(f"READY {listener.getsockname()[1]}", flush=True)
        while True:
            sock, _ = listener.accept()
            with self.lock:
                self.connections += 1
            threading.Thread(target=self.connection, args=(sock,), daemon=True).start()

    def stats(self):
        with self.lock:
            return json.dumps(
                {
                    "requests": self.requests,
                    "processed": self.processed,
                    "connections": self.connections,
                    "refused": self.refused,
                    "most_concurrent": self.most_concurrent,
                }
            ).encode()

    def connection(self, sock):
        config = h2.config.H2Configuration(client_side=False)
        conn = h2.connection.H2Connection(config=config)
        conn.initiate_connection()
        if self.mode == "one-stream":
            # Announced beside h2's state machine, which would end the whole connection with
            # PROTOCOL_ERROR for a stream past the limit that was sent before the client read
            # it; this server refuses such a stream instead (RST_STREAM REFUSED_STREAM), as
            # RFC 9113 §5.1.2 lets a client retry it.
            sock.sendall(conn.data_to_send() + SettingsFrame(0, settings={0x3: 1}).serialize())
        out_lock = threading.Lock()

        def flush():
            with out_lock:
                data = conn.data_to_send()
                if data:
                    try:
                        sock.sendall(data)
                    except OSError:
                        pass

        flush()
        state = {"goaway": None, "open": set(), "sock": sock}
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            with out_lock:
                events = conn.receive_data(data)
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    self.request(conn, event, state, flush, out_lock)
            flush()
            if state["goaway"] is not None and not state["open"]:
                sock.close()
                return

    def request(self, conn, event, state, flush, out_lock):
        headers = dict((k.decode(), v.decode()) for k, v in event.headers)
        stream = event.stream_id
        if headers.get(":path") == "/__stats":
            with out_lock:
                body = self.stats()
                conn.send_headers(stream, [(":status", "200"), ("content-length", str(len(body)))])
                conn.send_data(stream, body, end_stream=True)
            return
        with self.lock:
            self.requests += 1
        if state["goaway"] is not None and stream > state["goaway"]:
            return
        if self.mode == "one-stream" and state["open"]:
            with out_lock:
                conn.reset_stream(stream, error_code=7)
            with self.lock:
                self.refused += 1
            return
        if self.mode == "silent":
            return
        if self.mode == "answer-early" and not event.stream_ended:
            # As nginx's `return` does: the whole answer before the body, which is never read
            # (no WINDOW_UPDATE), then RST_STREAM NO_ERROR (RFC 9113 §8.1).
            with out_lock:
                conn.send_headers(stream, [(":status", "200"), ("content-length", "5")])
                conn.send_data(stream, b"early", end_stream=True)
                conn.reset_stream(stream, error_code=0)
            with self.lock:
                self.processed += 1
            return
        if self.mode == "refuse-first" and self.refused == 0:
            with out_lock:
                conn.reset_stream(stream, error_code=7)
            with self.lock:
                self.refused += 1
            return
        with self.lock:
            self.processed += 1
            processed = self.processed
        if self.mode == "goaway-after" and processed == self.arg and state["goaway"] is None:
            # Written beside h2's state machine, which would refuse to answer the streams
            # still open once it has said GOAWAY itself.
            state["goaway"] = stream
            goaway = GoAwayFrame(0, last_stream_id=stream, error_code=0)
            with out_lock:
                state["sock"].sendall(conn.data_to_send() + goaway.serialize())
        state["open"].add(stream)
        delay = self.arg / 1000 if self.mode == "one-stream" else 0.02

        def answer():
            with self.lock:
                self.concurrent += 1
                self.most_concurrent = max(self.most_concurrent, self.concurrent)
            time.sleep(delay)
            with self.lock:
                self.concurrent -= 1
            body = json.dumps({"stream": stream, "path": headers.get(":path")}).encode()
            with out_lock:
                try:
                    conn.send_headers(
                        stream, [(":status", "200"), ("content-type", "application/json"), ("content-length", str(len(body)))]
                    )
                    conn.send_data(stream, body, end_stream=True)
                except Exception:
                    pass
            state["open"].discard(stream)
            flush()

        threading.Thread(target=answer, daemon=True).start()


def main():
    if sys.argv[1] == "attack":
        observer = ATTACKS[sys.argv[3]](sys.argv[2])
        print(json.dumps(observer.outcome()), flush=True)
    elif sys.argv[1] == "upstream":
        Upstream(sys.argv[2]).serve()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
