"""A Bulk Data Access IG 2.0 client, step by step, against a running Hearth.

No client package made for Bulk Data installs from the registries this project may use
offline, so this script follows the IG's export flow itself with `requests`: kick-off with
the IG's headers, status polls that honour Retry-After, the complete-status manifest,
downloads of every output file (gzip, as clients usually ask), and the DELETE of the job.
Every ndjson line is validated with the PyPI package `fhir.resources` (R4B models): it
must parse as its resourceType and dump back to the same JSON.

It first gets its own access token as the SMART Backend Services profile says: it reads
`token_endpoint` from the server's `.well-known/smart-configuration`, signs a client
assertion (JWT, RS384, PKCS#1 v1.5 over SHA-384, done here with Python's integers, as no
JOSE package is in the lock file) with its private key, and asks for the read scopes of
the exported types (HEARTH_SCOPE) with the `client_credentials` grant.

Environment: HEARTH_FHIR_BASE; HEARTH_CLIENT_ID, HEARTH_KEY_KID and HEARTH_KEY_DER (the
registered client, and its RSA private key as base64 PKCS#8 DER, whose public JWK the
client registered); HEARTH_EXPECT (JSON: per resource type, how many resources FHIR
searches find); HEARTH_SCOPE (the scopes to ask for).

Prints one line per step and ends with `HEARTH-RESULT {"passed": [...], "failed": [...]}`;
exits non-zero when a step failed.
"""

import base64
import hashlib
import json
import os
import sys
import time
import traceback
import uuid

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
EXPECT = json.loads(os.environ["HEARTH_EXPECT"])
AUTH = {}


def der_items(data):
    """The (tag, content) items of a DER sequence's content."""
    items = []
    i = 0
    while i < len(data):
        tag = data[i]
        length = data[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        items.append((tag, data[i : i + length]))
        i += length
    return items


def rsa_private_key(pkcs8):
    """(n, d) of an RSA private key in PKCS#8 DER (RFC 5208 holding RFC 8017's key)."""
    [(_, info)] = der_items(pkcs8)
    octets = [content for tag, content in der_items(info) if tag == 0x04][0]
    [(_, key)] = der_items(octets)
    numbers = [int.from_bytes(content, "big") for tag, content in der_items(key)]
    # version, n, e, d, p, q, dp, dq, qinv
    return numbers[1], numbers[3]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rs384(message, n, d):
    """RSASSA-PKCS1-v1_5 with SHA-384 (RFC 8017 8.2.1, EMSA-PKCS1-v1_5)."""
    digest_info = bytes.fromhex("3041300d060960864801650304020205000430")
    t = digest_info + hashlib.sha384(message).digest()
    k = (n.bit_length() + 7) // 8
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


def discover():
    reply = requests.get(f"{BASE}/.well-known/smart-configuration", timeout=30)
    assert reply.status_code == 200, (reply.status_code, reply.text)
    config = reply.json()
    assert "client_credentials" in config["grant_types_supported"], config
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"], config
    state["token_endpoint"] = config["token_endpoint"]


def authorize():
    client_id = os.environ["HEARTH_CLIENT_ID"]
    n, d = rsa_private_key(base64.b64decode(os.environ["HEARTH_KEY_DER"]))
    header = {"alg": "RS384", "typ": "JWT", "kid": os.environ["HEARTH_KEY_KID"]}
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": state["token_endpoint"],
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    )
    assertion = signing_input + "." + b64url(rs384(signing_input.encode(), n, d))
    reply = requests.post(
        state["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": os.environ["HEARTH_SCOPE"],
        },
        timeout=30,
    )
    assert reply.status_code == 200, (reply.status_code, reply.text)
    token = reply.json()
    assert token["token_type"].lower() == "bearer", token
    assert set(token["scope"].split()) == set(os.environ["HEARTH_SCOPE"].split()), token
    AUTH["Authorization"] = f"Bearer {token['access_token']}"


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


step("discover the token endpoint", discover)
if "token_endpoint" in state:
    step("client_credentials with a private_key_jwt assertion", authorize)
if AUTH:
    step("kick-off", kick_off)
if "status" in state:
    step("poll until complete", poll)
if "manifest" in state:
    step("manifest", manifest)
    step("download and validate every line", download_and_validate)
    step("delete", delete)

print("HEARTH-RESULT " + json.dumps({"passed": passed, "failed": failed}))
sys.exit(1 if failed else 0)
