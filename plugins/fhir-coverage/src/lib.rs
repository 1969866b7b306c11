//! FHIR R4 `Coverage` (US Core 7.0.0) over OpenEMR's `insurance_data`, the policies
//! `/api/patient/:puuid/insurance` serves: read and search, in the patient's compartment,
//! with a Provenance each. The payor is the insurance company (an Organization), the type
//! the company's claim type in the Source of Payment Typology, the member id the policy
//! number; a policy with an end date is `cancelled`.

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Coverage resource.
pub struct FhirCoverage;

impl Resource for FhirCoverage {
    const NAME: &'static str = "fhir-coverage";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Coverage (US Core) over OpenEMR insurance_data";
    const READS: &'static [&'static str] = &[
        "insurance_data",
        "insurance_companies",
        "insurance_type_codes",
        "patient_data",
        "list_options",
        // The author organization of the Provenance `_revinclude` adds.
        "facility",
    ];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        COVERAGE, map, type = "Coverage", acl = "admin/super", nouns = "coverages",
        one = "a coverage", schema = COVERAGE_SCHEMA
    );
    const WORDS: &'static [Words] = &[Words::new(
        "Coverage",
        "Insurance coverage (FHIR)",
        "insurance policies (FHIR Coverage)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![COVERAGE.declaration()]
    }
}

hearth_sdk::export!(FhirCoverage);

/// A Coverage as the routes answer it.
const COVERAGE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Coverage"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("identifier", Schema::Array(&IDENTIFIER)),
        Prop::new("status", Schema::Enum(&["active", "cancelled"])).required(),
        Prop::new("type", CODEABLE_CONCEPT),
        Prop::new("subscriber", REFERENCE),
        Prop::new("subscriberId", Schema::String),
        Prop::new("beneficiary", REFERENCE).required(),
        Prop::new("relationship", CODEABLE_CONCEPT),
        Prop::new("period", PERIOD),
        Prop::new("payor", Schema::Array(&REFERENCE)).required(),
        Prop::new(
            "class",
            Schema::Array(&Schema::Object(&[
                Prop::new("type", CODEABLE_CONCEPT).required(),
                Prop::new("value", Schema::String).required(),
                Prop::new("name", Schema::String),
            ])),
        ),
        Prop::new("order", Schema::Integer),
    ])
};

const SOP: &str = "urn:oid:2.16.840.1.113883.3.221.5";
const RELATIONSHIP: &str = "http://terminology.hl7.org/CodeSystem/subscriber-relationship";
const CLASS: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";
const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// A policy with an end date has ended (or will): `cancelled`; else `active`.
const STATUS: &str = "CASE WHEN d.date_end IS NULL THEN 'active' ELSE 'cancelled' END";

const COVERAGE: TypeDef = TypeDef {
    resource_type: "Coverage",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage|7.0.0",
    ],
    columns: "d.type, d.plan_name, d.policy_number, d.group_number, \
              d.subscriber_relationship, CAST(d.date AS TEXT) AS start_date, \
              CAST(d.date_end AS TEXT) AS end_date, \
              CASE WHEN d.date_end IS NULL THEN 'active' ELSE 'cancelled' END AS status, \
              c.uuid AS payor_uuid, c.name AS payor_name, t.sop_code, t.sop_display, \
              sr.title AS relationship_title, p.uuid AS patient_uuid, \
              p.fname AS patient_fname, p.lname AS patient_lname",
    from: "insurance_data d JOIN patient_data p ON p.pid = d.pid \
           LEFT JOIN insurance_companies c ON c.id = d.provider \
           LEFT JOIN insurance_type_codes t ON t.id = c.ins_type_code \
           LEFT JOIN list_options sr ON sr.list_id = 'sub_relation' \
           AND sr.option_id = d.subscriber_relationship",
    id: "d.uuid",
    key: "d.id",
    last_updated: "COALESCE(d.last_updated, d.date)",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "Coverage.beneficiary",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "payor",
            "Coverage.payor",
            Target::Reference {
                column: "c.uuid",
                target: "Organization",
            },
        ),
        Param::new(
            "type",
            "Coverage.type",
            Target::Token(&[TokenColumn::new("t.sop_code", Some(SOP)).text("t.sop_display")]),
        ),
        Param::new(
            "status",
            "Coverage.status",
            Target::Token(&[TokenColumn::new(STATUS, None)]),
        ),
    ],
};

fn display(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn filled(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// A `coverage-class` entry: its type, value and name.
fn class(kind: &str, title: &str, value: &str) -> Json {
    let mut out = Fields::new();
    out.set("type", concept(coding(CLASS, kind, Some(title)), None))
        .set("value", value)
        .set("name", value);
    out.end()
}

/// An `insurance_data` row as a US Core Coverage.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    if let Some(number) = filled(row.text("policy_number")) {
        let mut id = Fields::new();
        id.set(
            "type",
            concept(coding(IDENTIFIER_TYPE, "MB", Some("Member Number")), None),
        )
        .set("value", number);
        out.list("identifier", vec![id.end()]);
    }
    out.set("status", row.text("status").unwrap_or("active"));
    if let Some(code) = filled(row.text("sop_code")) {
        let title = row.text("sop_display");
        out.set("type", concept(coding(SOP, code, title), title));
    }
    let patient = row.text("patient_uuid").unwrap_or_default();
    let name = display(row.text("patient_fname"), row.text("patient_lname"));
    let relationship = filled(row.text("subscriber_relationship"));
    if relationship == Some("self") {
        out.set(
            "subscriber",
            reference("Patient", patient, Some(name.as_str())),
        );
    }
    out.text("subscriberId", row.text("policy_number"));
    out.set(
        "beneficiary",
        reference("Patient", patient, Some(name.as_str())),
    );
    if let Some(code) = relationship {
        let known = matches!(code, "self" | "spouse" | "child" | "other");
        let code = if known { code } else { "other" };
        let title = row.text("relationship_title");
        out.set(
            "relationship",
            concept(coding(RELATIONSHIP, code, title), title),
        );
    }
    let mut period = Fields::new();
    period
        .text(
            "start",
            row.text("start_date").map(|d| d.get(..10).unwrap_or(d)),
        )
        .text(
            "end",
            row.text("end_date").map(|d| d.get(..10).unwrap_or(d)),
        );
    out.object("period", period.end());
    let payor = match row.text("payor_uuid") {
        Some(uuid) => reference("Organization", uuid, row.text("payor_name")),
        None => {
            let mut unknown = Fields::new();
            unknown.set("display", "Unknown payor");
            unknown.end()
        }
    };
    out.list("payor", vec![payor]);
    let mut classes = Vec::new();
    if let Some(group) = filled(row.text("group_number")) {
        classes.push(class("group", "Group", group));
    }
    if let Some(plan) = filled(row.text("plan_name")) {
        classes.push(class("plan", "Plan", plan));
    }
    out.list("class", classes);
    let order = match row.text("type") {
        Some("primary") => 1,
        Some("secondary") => 2,
        _ => 3,
    };
    out.set("order", order);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-0000000000c1";
    const PATIENT: &str = "90cde167-0000-4000-8000-000000000001";
    const PAYOR: &str = "90cde167-0000-4000-8000-0000000000c9";

    fn rows(relationship: &str, end: Value) -> Rows {
        Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "type",
                "policy_number",
                "group_number",
                "plan_name",
                "subscriber_relationship",
                "relationship_title",
                "start_date",
                "end_date",
                "status",
                "payor_uuid",
                "payor_name",
                "sop_code",
                "sop_display",
                "patient_uuid",
            ],
            vec![vec![
                UUID.into(),
                "2024-05-01 07:08:09".into(),
                1.into(),
                "secondary".into(),
                "XJ-1".into(),
                "G-7".into(),
                "Gold".into(),
                relationship.into(),
                "Spouse".into(),
                "2024-01-01".into(),
                end.clone(),
                if end == Value::Null {
                    "active"
                } else {
                    "cancelled"
                }
                .into(),
                PAYOR.into(),
                "Acme Health".into(),
                "512".into(),
                "Commercial Managed Care - PPO".into(),
                PATIENT.into(),
            ]],
        )
    }

    #[test]
    fn a_policy_is_a_coverage_of_its_payor_with_member_id_and_classes() {
        let mut host = MockHost::new().on_query("WHERE d.uuid = $1", rows("spouse", Value::Null));
        let response =
            host.call::<FhirCoverage>(TestRequest::get(&format!("/fhir/Coverage/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let c = response.body_json();
        assert_eq!(c["status"], "active");
        assert_eq!(c["identifier"][0]["type"]["coding"][0]["code"], "MB");
        assert_eq!(c["payor"][0]["reference"], format!("Organization/{PAYOR}"));
        assert_eq!(c["relationship"]["coding"][0]["code"], "spouse");
        assert_eq!(c["type"]["coding"][0]["code"], "512");
        assert_eq!(c["class"][0]["value"], "G-7");
        assert_eq!(c["order"], 2);
        assert!(
            c.get("subscriber").is_none(),
            "the subscriber is not the patient"
        );
    }

    #[test]
    fn an_ended_policy_is_cancelled() {
        let mut host =
            MockHost::new().on_query("WHERE d.uuid = $1", rows("self", "2024-06-30".into()));
        let response =
            host.call::<FhirCoverage>(TestRequest::get(&format!("/fhir/Coverage/{UUID}")));
        let c = response.body_json();
        assert_eq!(c["status"], "cancelled");
        assert_eq!(c["period"]["end"], "2024-06-30");
        assert_eq!(c["subscriber"]["reference"], format!("Patient/{PATIENT}"));
    }
}
