"""Judges exchanges against an OpenAPI document with PyPI's openapi-core, as a second opinion
on statuscope's contract rules (tests/e2e/contract.rs compares the two).

Usage: openapi_verdicts.py DOCUMENT EXCHANGES.json
EXCHANGES.json is a list of {method, url, status, headers: {name: value}, content_type, body}.
Prints a JSON list with one verdict per exchange: "ok", or the statuscope rule id the
openapi-core error corresponds to.
"""

import json
import sys

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

# openapi-core reads `application/json` bodies as JSON and leaves other types as bytes;
# `+json` types are JSON too (RFC 6839), as statuscope reads them.
JSON_SUFFIXED = {"application/problem+json": json.loads}

# openapi-core's error classes (by name, anywhere in the exception's class hierarchy or its
# chain of causes) and the statuscope rule each corresponds to, most specific first.
VERDICTS = [
    ("ServerNotFound", "undeclared-route"),
    ("PathNotFound", "undeclared-route"),
    ("OperationNotFound", "undeclared-operation"),
    ("ResponseNotFound", "undeclared-status"),
    ("MediaTypeNotFound", "undeclared-content-type"),
    ("MissingRequiredHeader", "missing-declared-header"),
    ("MissingHeader", "missing-declared-header"),
]


def names(error):
    seen = []
    while error is not None:
        seen.extend(cls.__name__ for cls in type(error).__mro__)
        error = error.__cause__ or error.__context__
    return seen


def verdict(openapi, exchange):
    url = exchange["url"]
    host, _, path = url.partition("://")[2].partition("/")
    request = MockRequest("http://" + host, exchange["method"].lower(), "/" + path)
    response = MockResponse(
        exchange["body"].encode(),
        status_code=exchange["status"],
        headers=exchange["headers"],
        content_type=exchange["content_type"],
    )
    try:
        openapi.validate_response(request, response)
    except Exception as error:  # every openapi-core error is a verdict
        found = names(error)
        for name, rule in VERDICTS:
            if name in found:
                return rule
        return "body-schema-mismatch"
    return "ok"


def main():
    document, exchanges = sys.argv[1], sys.argv[2]
    config = Config(extra_media_type_deserializers=JSON_SUFFIXED)
    openapi = OpenAPI.from_file_path(document, config=config)
    with open(exchanges) as f:
        print(json.dumps([verdict(openapi, exchange) for exchange in json.load(f)]))


if __name__ == "__main__":
    main()
