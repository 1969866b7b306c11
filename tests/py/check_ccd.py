"""Checks a C-CDA R2.1 CCD read from standard input with lxml: the document must be
well-formed XML in the HL7 v3 namespace, carry the US Realm Header and CCD template ids
(with their 2015-08-01 extensions), and each section named on the command line
(`problems allergies ...`) must be present with its "entries required" template id.
Prints a JSON summary (patient name, sections found, entries per section) and exits
non-zero, saying why, on any failure. No CDA schema package installs from PyPI or npm, so
the document is checked for well-formedness and its template ids, not against the XSD."""

import json
import sys

from lxml import etree

NS = {"v3": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
R21 = "2015-08-01"
SECTIONS = {
    "allergies": "2.16.840.1.113883.10.20.22.2.6.1",
    "medications": "2.16.840.1.113883.10.20.22.2.1.1",
    "problems": "2.16.840.1.113883.10.20.22.2.5.1",
    "immunizations": "2.16.840.1.113883.10.20.22.2.2.1",
    "vitals": "2.16.840.1.113883.10.20.22.2.4.1",
    "encounters": "2.16.840.1.113883.10.20.22.2.22.1",
}


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def main():
    raw = sys.stdin.buffer.read()
    try:
        root = etree.fromstring(raw)
    except etree.XMLSyntaxError as error:
        fail(f"not well-formed XML: {error}")
    if root.tag != "{urn:hl7-org:v3}ClinicalDocument":
        fail(f"the root is {root.tag}, not an HL7 v3 ClinicalDocument")
    templates = {(t.get("root"), t.get("extension")) for t in root.findall("v3:templateId", NS)}
    for needed in [
        ("2.16.840.1.113883.10.20.22.1.1", R21),
        ("2.16.840.1.113883.10.20.22.1.2", R21),
    ]:
        if needed not in templates:
            fail(f"the document lacks templateId {needed}")
    type_id = root.find("v3:typeId", NS)
    if type_id is None or type_id.get("extension") != "POCD_HD000040":
        fail("typeId POCD_HD000040 is missing")
    code = root.find("v3:code", NS)
    if code is None or code.get("code") != "34133-9":
        fail("the document code is not LOINC 34133-9")
    for part in ["recordTarget", "author", "custodian", "documentationOf"]:
        if root.find(f"v3:{part}", NS) is None:
            fail(f"the header lacks {part}")
    found = {}
    for section in root.iterfind(".//v3:structuredBody/v3:component/v3:section", NS):
        roots = {(t.get("root"), t.get("extension")) for t in section.findall("v3:templateId", NS)}
        for name, template in SECTIONS.items():
            if (template, R21) in roots or (template, "2014-06-09") in roots:
                found[name] = len(section.findall("v3:entry", NS))
    for name in sys.argv[1:]:
        if name not in found:
            fail(f"the {name} section is missing")
    patient = root.find("v3:recordTarget/v3:patientRole/v3:patient/v3:name", NS)
    given = [g.text for g in patient.findall("v3:given", NS)]
    family = patient.findtext("v3:family", namespaces=NS)
    print(json.dumps({"given": given, "family": family, "sections": found}))


main()
