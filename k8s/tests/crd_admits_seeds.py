#!/usr/bin/env python3
"""The deployment guides' OrbitCluster examples against the generated CRD, with
a real JSON-schema validator (the jsonschema package kubernetes-validate uses).

The CRD's openAPIV3Schema is turned into JSON Schema the way the API server reads
it: `nullable` allows null, `x-kubernetes-int-or-string` is an integer or a
string, and an object with `properties` (and no `additionalProperties` or
`x-kubernetes-preserve-unknown-fields`) gets `additionalProperties: false`, so a
field the API server would prune fails here. A broken copy of each example must
fail, so the check can fail.

Usage: crd_admits_seeds.py CRD.yaml EXAMPLE.yaml...
"""

import copy
import sys

import jsonschema
import yaml


def to_json_schema(s):
    if not isinstance(s, dict):
        return s
    s = {k: to_json_schema(v) if isinstance(v, dict) else v for k, v in s.items()}
    if "properties" in s:
        s["properties"] = {k: to_json_schema(v) for k, v in s["properties"].items()}
    if "items" in s:
        s["items"] = to_json_schema(s["items"])
    s.pop("x-kubernetes-validations", None)
    preserve = s.pop("x-kubernetes-preserve-unknown-fields", False)
    if s.pop("x-kubernetes-int-or-string", False):
        s["type"] = ["integer", "string"]
    if s.get("type") == "object" and "properties" in s and "additionalProperties" not in s and not preserve:
        s["additionalProperties"] = False
    if s.pop("nullable", False) and "type" in s:
        s["type"] = (s["type"] if isinstance(s["type"], list) else [s["type"]]) + ["null"]
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if s.get(flag) is True:
            s[flag] = s.pop(bound)
        elif s.get(flag) is False:
            s.pop(flag)
    return s


def main() -> int:
    crd = yaml.safe_load(open(sys.argv[1]))
    schema = to_json_schema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    spec_schema = schema["properties"]["spec"]
    failed = 0
    for path in sys.argv[2:]:
        doc = yaml.safe_load(open(path))
        errors = list(jsonschema.Draft7Validator(spec_schema).iter_errors(doc["spec"]))
        if errors:
            failed += 1
            print(f"FAIL {path}: " + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors))
        else:
            print(f"PASS {path} admitted with no field pruned")
        broken = copy.deepcopy(doc)
        broken["spec"]["persistence"]["not_a_field"] = 1
        if not list(jsonschema.Draft7Validator(spec_schema).iter_errors(broken["spec"])):
            failed += 1
            print(f"FAIL {path}: an unknown field was not caught")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
