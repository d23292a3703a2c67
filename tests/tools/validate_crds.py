#!/usr/bin/env python3
"""Validate Prometheus Operator objects against their CustomResourceDefinition schemas.

usage: validate_crds.py SCHEMA_DIR FILE...

Every document whose apiVersion belongs to a CRD in SCHEMA_DIR is validated against that
CRD's openAPIV3Schema, strictly: an object schema that lists properties rejects any other
(as `kubectl apply --validate=strict` does), so a misspelt field fails instead of being
silently pruned by the API server. A document of the monitoring.coreos.com group without a
schema fails too. Exit status 1 on any failure.
"""
import glob
import os
import sys

import jsonschema
import yaml


def strict(schema):
    if isinstance(schema, dict):
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main():
    schema_dir, files = sys.argv[1], sys.argv[2:]
    schemas = {}
    for path in glob.glob(os.path.join(schema_dir, "*.yaml")):
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = strict(version["schema"]["openAPIV3Schema"])
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    failures, validated = 0, 0
    for path in files:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc:
                    continue
                key = (doc.get("apiVersion", ""), doc.get("kind", ""))
                name = f"{path}: {key[1]}/{doc.get('metadata', {}).get('name', '?')}"
                if key not in schemas:
                    if key[0].startswith("monitoring.coreos.com/"):
                        print(f"FAIL {name}: no schema for {key}")
                        failures += 1
                    continue
                errors = sorted(
                    jsonschema.Draft7Validator(schemas[key]).iter_errors(doc), key=lambda e: list(e.path)
                )
                for error in errors:
                    where = "/".join(str(p) for p in error.path)
                    print(f"FAIL {name}: {where}: {error.message}")
                failures += len(errors)
                validated += 1
                if not errors:
                    print(f"ok   {name}")
    print(f"{validated} objects validated, {failures} failures")
    sys.exit(1 if failures or not validated else 0)


if __name__ == "__main__":
    main()
