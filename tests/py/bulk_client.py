"""A Bulk Data Access IG 2.0 client, step by step, against a running Hearth.

No client package made for Bulk Data installs from the registries this project may use
offline, so this script follows the IG's export flow itself with `requests`: kick-off with
the IG's headers, status polls that honour Retry-After, the complete-status manifest,
downloads of every output file (gzip, as clients usually ask), and the DELETE of the job.
Every ndjson line is validated with the PyPI package `fhir.resources` (R4B models): it
must parse as its resourceType and dump back to the same JSON.

Environment: HEARTH_FHIR_BASE, HEARTH_TOKEN (a backend-services access token),
HEARTH_EXPECT (JSON: per resource type, how many resources FHIR searches find).

Prints one line per step and ends with `HEARTH-RESULT {"passed": [...], "failed": [...]}`;
exits non-zero when a step failed.
"""

import json
import os
import sys
import time
import traceback

import requests
from fhir.resources.R4B import get_fhir_model_class

passed = []
failed = []
state = {}


def step(name, fn):
    try:
        fn()
        passed.append(name)
        print(f"PASS {name}", flush=True)
    except Exception:  # noqa: BLE001 - every failure is reported, the run goes on
        failed.append(name)
        print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)


BASE = os.environ["HEARTH_FHIR_BASE"].rstrip("/")
TOKEN = os.environ["HEARTH_TOKEN"]
EXPECT = json.loads(os.environ["HEARTH_EXPECT"])
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def kick_off():
    url = f"{BASE}/$export?_type={','.join(sorted(EXPECT))}"
    reply = requests.get(
        url,
        headers={**AUTH, "Accept": "application/fhir+json", "Prefer": "respond-async"},
        timeout=30,
    )
    assert reply.status_code == 202, (reply.status_code, reply.text)
    location = reply.headers["Content-Location"]
    assert location.startswith("http"), location
    state["status"] = location
    state["request"] = url


def poll():
    polls = 0
    while True:
        polls += 1
        assert polls < 600, "the export did not finish"
        reply = requests.get(state["status"], headers=AUTH, timeout=30)
        if reply.status_code == 200:
            assert reply.headers["Content-Type"].startswith("application/json")
            state["manifest"] = reply.json()
            return
        assert reply.status_code in (202, 429), (reply.status_code, reply.text)
        if reply.status_code == 202:
            assert len(reply.headers.get("X-Progress", "")) < 100
        time.sleep(int(reply.headers["Retry-After"]))


def manifest():
    m = state["manifest"]
    assert m["request"] == state["request"], m["request"]
    assert m["requiresAccessToken"] is True
    assert m["transactionTime"].endswith("Z")
    assert m["error"] == [], m["error"]
    for item in m["output"]:
        assert item["type"] in EXPECT, item
        assert item["url"].startswith("http"), item


def download_and_validate():
    counts = {}
    failures = []
    for item in state["manifest"]["output"]:
        reply = requests.get(
            item["url"],
            headers={**AUTH, "Accept": "application/fhir+ndjson", "Accept-Encoding": "gzip"},
            timeout=60,
        )
        assert reply.status_code == 200, (reply.status_code, reply.text)
        assert reply.headers["Content-Type"] == "application/fhir+ndjson"
        assert reply.headers.get("Content-Encoding") == "gzip"
        lines = [line for line in reply.text.split("\n") if line]
        assert len(lines) == item["count"], (item, len(lines))
        for i, line in enumerate(lines):
            resource = json.loads(line)
            kind = resource["resourceType"]
            assert kind == item["type"], (kind, item)
            try:
                model = get_fhir_model_class(kind).model_validate(resource)
                back = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
                if back != resource:
                    failures.append(f"{item['url']} line {i}: does not round-trip")
            except Exception as error:  # noqa: BLE001 - the model's message names the field
                failures.append(f"{item['url']} line {i} ({kind}): {error}")
        counts[item["type"]] = counts.get(item["type"], 0) + len(lines)
    assert not failures, "\n".join(failures[:20])
    expected = {k: v for k, v in EXPECT.items() if v > 0}
    assert counts == expected, (counts, expected)


def delete():
    reply = requests.delete(state["status"], headers=AUTH, timeout=30)
    assert reply.status_code == 202, (reply.status_code, reply.text)
    time.sleep(int(os.environ.get("HEARTH_RETRY_AFTER", "1")))
    gone = requests.get(state["status"], headers=AUTH, timeout=30)
    assert gone.status_code == 404, (gone.status_code, gone.text)
    assert gone.json()["resourceType"] == "OperationOutcome"


step("kick-off", kick_off)
if "status" in state:
    step("poll until complete", poll)
if "manifest" in state:
    step("manifest", manifest)
    step("download and validate every line", download_and_validate)
    step("delete", delete)

print("HEARTH-RESULT " + json.dumps({"passed": passed, "failed": failed}))
sys.exit(1 if failed else 0)
