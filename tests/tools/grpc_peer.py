"""A real gRPC server or client (grpcio) for the end-to-end tests of tests/e2e/grpc.rs.

    grpc_peer.py server            serves tests/grpc/shop.proto on 127.0.0.1 and prints
                                   `READY <port>` once it accepts calls
    grpc_peer.py client TARGET SCENARIO [ARG]
                                   runs one scenario against TARGET (host:port) and prints its
                                   outcome as one JSON object

The stubs are generated from the .proto by grpcio-tools into a temporary directory at start,
so nothing generated is committed.
"""

import asyncio
import json
import os
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "grpc")


def stubs():
    out = tempfile.mkdtemp(prefix="statuscope-grpc-")
    status = protoc.main(
        ["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}", "shop.proto"]
    )
    if status != 0:
        sys.exit(f"protoc failed ({status})")
    sys.path.insert(0, out)
    import shop_pb2
    import shop_pb2_grpc

    return shop_pb2, shop_pb2_grpc


pb, rpc = stubs()


class Shop(rpc.ShopServicer):
    async def GetItem(self, request, context):
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        if request.id == 404:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.id}")
        if request.id == 500:
            await context.abort(grpc.StatusCode.INTERNAL, "the index is closed")
        return pb.Item(id=request.id, name=f"item {request.id}")

    async def ListItems(self, request, context):
        for n in range(request.count):
            yield pb.Item(id=n, name=f"item {n}")
        if request.fail:
            await context.abort(grpc.StatusCode.INTERNAL, "the listing broke off")

    async def Upload(self, request_iterator, context):
        count = 0
        async for _ in request_iterator:
            count += 1
        return pb.Summary(count=count)

    async def Chat(self, request_iterator, context):
        async for item in request_iterator:
            yield item


async def serve():
    server = grpc.aio.server()
    rpc.add_ShopServicer_to_server(Shop(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"READY {port}", flush=True)
    await server.wait_for_termination()


def code_of(error):
    return error.code().name if isinstance(error, grpc.RpcError) else type(error).__name__


async def scenario(target, name, arg):
    async with grpc.aio.insecure_channel(target) as channel:
        # Connected before any call starts, so a deadline counts the call, not the connection.
        await channel.channel_ready()
        shop = rpc.ShopStub(channel)
        if name == "unary":
            # One call per id: {"<id>": [code, details]}.
            outcome = {}
            for id in [int(i) for i in arg.split(",")]:
                try:
                    item = await shop.GetItem(pb.ItemRequest(id=id))
                    outcome[str(id)] = ["OK", item.name]
                except grpc.RpcError as error:
                    outcome[str(id)] = [error.code().name, error.details()]
            return outcome
        if name == "stream":
            # ARG: `ok` or `fail`; 100 items either way.
            received = 0
            try:
                async for _ in shop.ListItems(pb.ListRequest(count=100, fail=arg == "fail")):
                    received += 1
                return {"code": "OK", "received": received}
            except grpc.RpcError as error:
                return {"code": error.code().name, "received": received}
        if name == "upload":
            items = (pb.Item(id=n) for n in range(int(arg)))
            summary = await shop.Upload(items)
            return {"code": "OK", "count": summary.count}
        if name == "chat":
            call = shop.Chat()
            echoed = 0
            for n in range(int(arg)):
                await call.write(pb.Item(id=n))
                await call.read()
                echoed += 1
            await call.done_writing()
            while await call.read() != grpc.aio.EOF:
                echoed += 1
            return {"code": (await call.code()).name, "echoed": echoed}
        if name == "cancel":
            # A call the server answers after ARG ms, cancelled when a line arrives on stdin
            # (the test sends it once statuscope holds the call in flight).
            call = shop.GetItem(pb.ItemRequest(id=1, delay_ms=int(arg)))
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            call.cancel()
            try:
                await call
                return {"code": "OK"}
            except asyncio.CancelledError:
                return {"code": "CANCELLED"}
            except grpc.RpcError as error:
                return {"code": error.code().name}
        if name == "deadline":
            # ARG: "<delay ms>,<deadline ms>".
            delay, deadline = (int(v) for v in arg.split(","))
            try:
                await shop.GetItem(pb.ItemRequest(id=1, delay_ms=delay), timeout=deadline / 1000)
                return {"code": "OK"}
            except grpc.RpcError as error:
                return {"code": error.code().name, "details": error.details()}
        if name == "load":
            # ARG: "<calls>,<concurrency>", over this one channel (one HTTP/2 connection):
            # ids cycle so a known share are NOT_FOUND and INTERNAL; counts by code.
            calls, concurrency = (int(v) for v in arg.split(","))
            counts = {}
            next_call = iter(range(calls))

            async def worker():
                for n in next_call:
                    id = 404 if n % 10 == 3 else 500 if n % 10 == 7 else 1_000_000 + n
                    try:
                        await shop.GetItem(pb.ItemRequest(id=id))
                        code = "OK"
                    except grpc.RpcError as error:
                        code = error.code().name
                    counts[code] = counts.get(code, 0) + 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return {"counts": counts, "seconds": time.monotonic() - started}
        sys.exit(f"unknown scenario {name}")


def main():
    if sys.argv[1] == "server":
        asyncio.run(serve())
    elif sys.argv[1] == "client":
        target, name = sys.argv[2], sys.argv[3]
        arg = sys.argv[4] if len(sys.argv) > 4 else ""
        print(json.dumps(asyncio.run(scenario(target, name, arg))), flush=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
