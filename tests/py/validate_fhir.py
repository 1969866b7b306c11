"""Validates FHIR R4B JSON with fhir.resources: reads a JSON array of documents on stdin.

Each document (a resource, or a Bundle whose entries are validated one by one too) must
parse as its resourceType's model and dump back to the same JSON: a member the model does
not know, or a value it would have to change, fails. Prints one line per failure and
exits 1 if any failed.
"""

import json
import sys

from fhir.resources.R4B import get_fhir_model_class


def check(doc, where, failures):
    kind = doc.get("resourceType") if isinstance(doc, dict) else None
    if not kind:
        failures.append(f"{where}: no resourceType")
        return
    try:
        model = get_fhir_model_class(kind).model_validate(doc)
    except Exception as error:  # the model's own message names the field
        failures.append(f"{where} ({kind}): {error}")
        return
    back = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    if back != doc:
        failures.append(f"{where} ({kind}): does not round-trip: {diff(doc, back)}")
    if kind == "Bundle":
        for i, entry in enumerate(doc.get("entry", [])):
            if "resource" in entry:
                check(entry["resource"], f"{where}.entry[{i}]", failures)


def diff(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return diff(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return diff(x, y, f"{path}[{i}]")
    return f"{path}: sent {json.dumps(a)}, the model has {json.dumps(b)}"


def main():
    docs = json.load(sys.stdin)
    failures = []
    for i, doc in enumerate(docs):
        check(doc, f"document {i}", failures)
    for failure in failures:
        print(failure)
    print(f"{len(docs)} documents, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
