"""A SMART standalone launch by the PyPI package `fhirclient`, against a running Hearth.

The FHIR client discovers the authorization endpoints from the server's
CapabilityStatement, builds the authorize URL (with PKCE, S256), and after the user's
sign-in and consent redeems the code and reads the chart with its own FHIR models (which
refuse any element R4 does not define). The sign-in and consent pages are driven with
plain HTTP form posts, as a browser without JavaScript would send them.

Environment: HEARTH_FHIR_BASE, HEARTH_CLIENT_ID, HEARTH_REDIRECT, HEARTH_SCOPE,
HEARTH_LOGIN (JSON: user_role, username, password, email), HEARTH_EXPECT (JSON: the
patient's id and, per resource type, how many resources its search finds).

Prints one line per step and ends with `HEARTH-RESULT {"passed": [...], "failed": [...]}`;
exits non-zero when a step failed.
"""

import html
import json
import os
import re
import sys
import traceback
import urllib.parse

import requests
from fhirclient import client
from fhirclient.models.allergyintolerance import AllergyIntolerance
from fhirclient.models.condition import Condition
from fhirclient.models.encounter import Encounter
from fhirclient.models.observation import Observation

COOKIE = "hearth_authz"

passed = []
failed = []


def step(name, fn):
    try:
        fn()
        passed.append(name)
        print(f"PASS {name}", flush=True)
    except Exception:  # noqa: BLE001 - every failure is reported, the run goes on
        failed.append(name)
        print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)


class Browser:
    """Keeps the authorization session cookie and never follows redirects."""

    def __init__(self):
        self.http = requests.Session()
        self.cookie = None

    def _keep(self, response):
        for header in response.raw.headers.getlist("set-cookie"):
            pair = header.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if name == COOKIE:
                self.cookie = value or None
        return response

    def _headers(self):
        return {"cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {}

    def get(self, url):
        return self._keep(self.http.get(url, headers=self._headers(), allow_redirects=False))

    def post(self, url, pairs):
        return self._keep(
            self.http.post(url, data=pairs, headers=self._headers(), allow_redirects=False)
        )


def field(page, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} field in {page[:500]}"
    return html.unescape(match.group(1))


def main():
    base = os.environ["HEARTH_FHIR_BASE"]
    redirect = os.environ["HEARTH_REDIRECT"]
    login = json.loads(os.environ["HEARTH_LOGIN"])
    expect = json.loads(os.environ["HEARTH_EXPECT"])
    smart = client.FHIRClient(
        settings={
            "app_id": os.environ["HEARTH_CLIENT_ID"],
            "api_base": base,
            "redirect_uri": redirect,
            "scope": os.environ["HEARTH_SCOPE"],
        }
    )
    state = {}

    def discover():
        url = smart.authorize_url
        assert url, "the CapabilityStatement names the authorize endpoint"
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert query["code_challenge_method"] == "S256", query
        assert query["aud"].rstrip("/") == base.rstrip("/"), query
        assert "launch/patient" in query["scope"].split(), query
        state["authorize"] = url

    def sign_in_and_consent():
        browser = Browser()
        page = browser.get(state["authorize"])
        assert page.status_code == 200, page.text
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(state["authorize"]))
        login_url = state["authorize"].split("?", 1)[0].rsplit("/", 1)[0] + "/login"
        reply = browser.post(
            login_url,
            {"csrf_token": field(page.text, "csrf_token"), **login},
        )
        assert reply.status_code == 303, reply.text
        consent_url = urllib.parse.urljoin(origin, reply.headers["location"])
        assert consent_url.endswith("/consent"), consent_url
        page = browser.get(consent_url)
        assert page.status_code == 200, page.text
        offered = [html.unescape(s) for s in re.findall(r'name="scope" value="([^"]*)"', page.text)]
        assert offered, page.text
        pairs = [("csrf_token", field(page.text, "csrf_token")), ("action", "allow")]
        pairs += [("scope", s) for s in offered]
        reply = browser.post(consent_url, pairs)
        assert reply.status_code == 303, reply.text
        state["callback"] = reply.headers["location"]
        assert state["callback"].startswith(redirect), state["callback"]

    def redeem():
        smart.handle_callback(state["callback"])
        assert smart.ready, "an access token"
        assert smart.patient_id == expect["patient"], smart.patient_id

    def read_patient():
        patient = smart.patient
        assert patient is not None and patient.id == expect["patient"], patient
        assert patient.name[0].family == expect["family"], patient.name[0].family

    def search(resource, name):
        def run():
            found = list(
                resource.where(struct={"patient": smart.patient_id, "_count": "5"})
                .perform_resources_iter(smart.server)
            )
            assert len(found) == expect[name], f"{name}: {len(found)} found"
            for item in found:
                assert item.resource_type == name, item.resource_type
                subject = getattr(item, "subject", None) or getattr(item, "patient", None)
                assert subject.reference == f"Patient/{smart.patient_id}", subject.reference
            state[name] = found

        return run

    def vital_signs_have_values():
        codes = {o.code.coding[0].code: o for o in state["Observation"]}
        assert codes["85354-9"].component[0].valueQuantity.value == 120, "systolic"
        assert codes["29463-7"].valueQuantity.code == "[lb_av]"
        assert codes["72166-2"].valueCodeableConcept.coding[0].system == "http://snomed.info/sct"

    step("discovery from the CapabilityStatement; authorize URL with PKCE (S256)", discover)
    step("sign-in and consent on the authorization pages, redirect with the code", sign_in_and_consent)
    step("the code redeems with the PKCE verifier for a token and the patient", redeem)
    step("Patient: the launch patient reads", read_patient)
    step("Observation: the patient's vital signs and smoking status, page by page", search(Observation, "Observation"))
    step("Observation: values, units and codes parse into fhirclient's models", vital_signs_have_values)
    step("Condition: problems and encounter diagnoses", search(Condition, "Condition"))
    step("AllergyIntolerance: the patient's allergies", search(AllergyIntolerance, "AllergyIntolerance"))
    step("Encounter: the patient's encounters", search(Encounter, "Encounter"))
    print("HEARTH-RESULT " + json.dumps({"passed": passed, "failed": failed}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
