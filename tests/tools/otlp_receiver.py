"""An OTLP/HTTP metrics receiver for the e2e tests: decodes each POST to /v1/metrics with the
OpenTelemetry project's own protobuf classes (PyPI `opentelemetry-proto`) and keeps it.

    otlp_receiver.py [PORT]     serve on 127.0.0.1:PORT (0: any), print `READY <port>`

GET  /exports              every export taken, as JSON: {"headers": {...}, "request": {...}}
                           (the request as protobuf's own JSON mapping)
POST /answers              a JSON list of answers for the next exports, each
                           {"status": 503, "retry_after": "1"}, or {"hang": SECONDS} for none
                           at all (the connection held, then closed); once used up, 200
GET  /attempts             how many POSTs arrived, answered or not
GET  /conventions          the semantic conventions' own names, from PyPI
                           `opentelemetry-semantic-conventions`: every attribute name, the schema
                           URLs, and the values of the enumerated attributes statuscope sets
"""

import gzip
import inspect
import json
import pkgutil
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

LOCK = threading.Lock()
EXPORTS = []
ANSWERS = []
ATTEMPTS = [0]


def conventions():
    """Every attribute name the conventions define, stable and incubating, their schema URLs
    and the allowed values of the enums statuscope's attributes use."""
    import opentelemetry.semconv._incubating.attributes as incubating
    import opentelemetry.semconv.attributes as stable
    from opentelemetry.semconv._incubating.attributes.rpc_attributes import RpcSystemNameValues
    from opentelemetry.semconv._incubating.metrics import rpc_metrics
    from opentelemetry.semconv.attributes.error_attributes import ErrorTypeValues
    from opentelemetry.semconv.attributes.http_attributes import HttpRequestMethodValues
    from opentelemetry.semconv.metrics import http_metrics
    from opentelemetry.semconv.schemas import Schemas

    names = set()
    for package in (stable, incubating):
        for module in pkgutil.iter_modules(package.__path__):
            loaded = __import__(f"{package.__name__}.{module.name}", fromlist=["_"])
            for key, value in vars(loaded).items():
                if key.isupper() and isinstance(value, str) and not key.startswith("_"):
                    names.add(value)
    return {
        "attributes": sorted(names),
        "schema_urls": [schema.value for schema in Schemas],
        "metrics": {
            "http_server_request_duration": http_metrics.HTTP_SERVER_REQUEST_DURATION,
            "rpc_server_call_duration": rpc_metrics.RPC_SERVER_CALL_DURATION,
        },
        "values": {
            "http.request.method": [v.value for v in HttpRequestMethodValues],
            "rpc.system.name": [v.value for v in RpcSystemNameValues],
            "error.type": [v.value for v in ErrorTypeValues],
        },
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with LOCK:
            if self.path == "/exports":
                body = json.dumps(EXPORTS)
            elif self.path == "/attempts":
                body = json.dumps(ATTEMPTS[0])
            elif self.path == "/conventions":
                body = json.dumps(conventions())
            else:
                return self.reply(404)
        self.reply(200, body.encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/answers":
            with LOCK:
                ANSWERS.extend(json.loads(body))
            return self.reply(204)
        if self.path != "/v1/metrics":
            return self.reply(404)
        with LOCK:
            ATTEMPTS[0] += 1
            answer = ANSWERS.pop(0) if ANSWERS else {"status": 200}
        if "hang" in answer:
            time.sleep(answer["hang"])
            self.close_connection = True
            return
        if answer["status"] != 200:
            extra = [("Retry-After", answer["retry_after"])] if "retry_after" in answer else []
            return self.reply(answer["status"], b"{}", extra=extra)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.headers.get("Content-Type") != "application/x-protobuf":
            return self.reply(415)
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        with LOCK:
            EXPORTS.append(
                {
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "request": MessageToDict(request, preserving_proto_field_name=True),
                }
            )
        self.reply(
            200,
            ExportMetricsServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
