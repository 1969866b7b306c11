//! FHIR R4 `Immunization` (US Core 3.1.1 and 7.0.0) over OpenEMR's `immunizations`, the
//! rows `/api/immunization` serves: read and search, in the patient's compartment, with
//! a Provenance each. The vaccine is its CVX code; a refused or not administered dose is
//! `not-done` with its reason; one recorded in error is `entered-in-error`.

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Immunization resource.
pub struct FhirImmunization;

impl Resource for FhirImmunization {
    const NAME: &'static str = "fhir-immunization";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Immunization (US Core) over OpenEMR immunizations";
    const READS: &'static [&'static str] = &[
        "immunizations",
        "patient_data",
        "users",
        "codes",
        "list_options",
        "form_encounter",
        "facility",
    ];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        IMMUNIZATION, map, type = "Immunization", acl = "patients/med", nouns = "immunizations",
        one = "an immunization", schema = IMMUNIZATION_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "Immunization",
        "Immunizations (FHIR)",
        "vaccinations (FHIR Immunization)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![IMMUNIZATION.declaration()]
    }
}

/// An Immunization as the routes answer it.
const IMMUNIZATION_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Immunization"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new(
            "status",
            Schema::Enum(&["completed", "not-done", "entered-in-error"]),
        )
        .required(),
        Prop::new("statusReason", CODEABLE_CONCEPT),
        Prop::new("vaccineCode", CODEABLE_CONCEPT).required(),
        Prop::new("patient", REFERENCE).required(),
        Prop::new("encounter", REFERENCE),
        Prop::new("occurrenceDateTime", Schema::String),
        Prop::new("recorded", Schema::String),
        Prop::new("primarySource", Schema::Boolean),
        Prop::new("manufacturer", REFERENCE),
        Prop::new("lotNumber", Schema::String),
        Prop::new("expirationDate", Schema::String),
        Prop::new("site", CODEABLE_CONCEPT),
        Prop::new("route", CODEABLE_CONCEPT),
        Prop::new("doseQuantity", QUANTITY),
        Prop::new(
            "performer",
            Schema::Array(&Schema::Object(&[
                Prop::new("function", CODEABLE_CONCEPT),
                Prop::new("actor", REFERENCE).required(),
            ])),
        ),
        Prop::new("note", Schema::Array(&ANNOTATION)),
        Prop::new("reasonCode", Schema::Array(&CODEABLE_CONCEPT)),
    ])
};

hearth_sdk::export!(FhirImmunization);

const CVX: &str = "http://hl7.org/fhir/sid/cvx";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const ACT_SITE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActSite";
const ROUTE: &str = "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration";
const PERFORMER_FUNCTION: &str = "http://terminology.hl7.org/CodeSystem/v2-0443";
const DATA_ABSENT: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
const UCUM: &str = "http://unitsofmeasure.org";

/// The last change of an immunization row.
const UPDATED: &str = "COALESCE(i.update_date, i.create_date)";

const IMMUNIZATION: TypeDef = TypeDef {
    resource_type: "Immunization",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-immunization",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-immunization|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-immunization|7.0.0",
    ],
    columns: "i.cvx_code, i.administered_date, i.create_date, i.manufacturer, i.lot_number, \
              CAST(i.expiration_date AS TEXT) AS expiration_date, i.note, i.amount_administered, \
              i.amount_administered_unit, i.added_erroneously, i.completion_status, \
              i.information_source, i.refusal_reason, i.reason_description, \
              cvx.code_text AS cvx_text, r.title AS route_title, r.notes AS route_code, \
              s.title AS site_title, s.notes AS site_code, rr.title AS refusal_title, \
              rr.notes AS refusal_code, p.uuid AS patient_uuid, p.fname AS patient_fname, \
              p.lname AS patient_lname, u.uuid AS performer_uuid, u.fname AS performer_fname, \
              u.lname AS performer_lname, fe.uuid AS encounter_uuid",
    from: "immunizations i JOIN patient_data p ON p.pid = i.patient_id \
           LEFT JOIN codes cvx ON cvx.code_type = 100 AND cvx.code = i.cvx_code \
           LEFT JOIN users u ON u.id = i.administered_by_id AND u.npi <> '' \
           LEFT JOIN list_options r ON r.list_id = 'drug_route' AND r.option_id = i.route \
           LEFT JOIN list_options s ON s.list_id = 'immunization_administered_site' \
           AND s.option_id = i.administration_site \
           LEFT JOIN list_options rr ON rr.list_id = 'immunization_refusal_reason' \
           AND rr.option_id = i.refusal_reason \
           LEFT JOIN form_encounter fe ON fe.encounter = i.encounter_id AND fe.pid = i.patient_id",
    id: "i.uuid",
    key: "i.id",
    last_updated: UPDATED,
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "Immunization.patient",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "date",
            "Immunization.occurrence",
            Target::DateTime("i.administered_date"),
        ),
        Param::new(
            "vaccine-code",
            "Immunization.vaccineCode",
            Target::Token(&[TokenColumn::new("i.cvx_code", Some(CVX)).text("cvx.code_text")]),
        ),
        Param::new(
            "lot-number",
            "Immunization.lotNumber",
            Target::Text(&["i.lot_number"]),
        ),
        Param::new(
            "performer",
            "Immunization.performer.actor",
            Target::Reference {
                column: "u.uuid",
                target: "Practitioner",
            },
        ),
    ],
};

/// The Immunization status of a row: `entered-in-error` when recorded in error,
/// `not-done` when refused or not administered, else `completed` (partially administered
/// doses were given).
pub fn status(erroneous: bool, completion: &str, refusal: &str) -> &'static str {
    if erroneous {
        "entered-in-error"
    } else if !refusal.trim().is_empty() || matches!(completion, "Refused" | "Not_Administered") {
        "not-done"
    } else {
        "completed"
    }
}

/// A coded concept from a list option: its HL7 code (`notes`) in `system`, its title.
fn option(system: &str, code: Option<&str>, title: Option<&str>) -> Option<Json> {
    let code = code.map(str::trim).filter(|c| !c.is_empty())?;
    Some(concept(coding(system, code, title), title))
}

fn display(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An `immunizations` row as a US Core Immunization.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let status = status(
        row.int("added_erroneously").unwrap_or(0) != 0,
        row.text("completion_status").unwrap_or(""),
        row.text("refusal_reason").unwrap_or(""),
    );
    out.set("status", status);
    if status == "not-done" {
        let reason = option(
            ACT_REASON,
            row.text("refusal_code"),
            row.text("refusal_title"),
        )
        .unwrap_or_else(|| concept(coding(DATA_ABSENT, "unknown", Some("Unknown")), None));
        out.set("statusReason", reason);
    }
    let vaccine = match row
        .text("cvx_code")
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(code) => concept(
            coding(CVX, code, row.text("cvx_text")),
            row.text("cvx_text"),
        ),
        None => concept(coding(DATA_ABSENT, "unknown", Some("Unknown")), None),
    };
    out.set("vaccineCode", vaccine);
    if let Some(patient) = row.text("patient_uuid") {
        let name = display(row.text("patient_fname"), row.text("patient_lname"));
        out.set(
            "patient",
            reference("Patient", patient, Some(name.as_str())),
        );
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    // occurrence[x] is required: the administration time, else when it was recorded.
    let occurred = row
        .text("administered_date")
        .or_else(|| row.text("create_date"))
        .and_then(hearth_fhir::date::instant);
    match occurred {
        Some(at) => out.set("occurrenceDateTime", at.as_str()),
        None => out.set("occurrenceString", "unknown"),
    };
    let recorded = row.text("create_date").and_then(hearth_fhir::date::instant);
    out.text("recorded", recorded.as_deref());
    // OpenEMR records where a dose reported by others came from; its own are primary.
    let source = row.text("information_source").unwrap_or("").trim();
    out.set(
        "primarySource",
        source.is_empty() || source == "new_immunization_record",
    );
    if let Some(maker) = row.text("manufacturer").filter(|m| !m.trim().is_empty()) {
        let mut by = Fields::new();
        by.text("display", Some(maker));
        out.set("manufacturer", by.end());
    }
    out.text("lotNumber", row.text("lot_number"))
        .text("expirationDate", row.text("expiration_date"));
    if let Some(site) = option(ACT_SITE, row.text("site_code"), row.text("site_title")) {
        out.set("site", site);
    }
    if let Some(route) = option(ROUTE, row.text("route_code"), row.text("route_title")) {
        out.set("route", route);
    }
    if let Some(amount) = row.real("amount_administered").filter(|a| *a > 0.0) {
        let unit = row.text("amount_administered_unit").unwrap_or("").trim();
        let mut dose = Fields::new();
        dose.set("value", amount);
        if !unit.is_empty() {
            dose.set("unit", unit);
            if unit.eq_ignore_ascii_case("ml") {
                dose.set("system", UCUM).set("code", "mL");
            }
        }
        out.set("doseQuantity", dose.end());
    }
    if let Some(performer) = row.text("performer_uuid") {
        let name = display(row.text("performer_fname"), row.text("performer_lname"));
        let mut who = Fields::new();
        who.set(
            "function",
            concept(
                coding(PERFORMER_FUNCTION, "AP", Some("Administering Provider")),
                None,
            ),
        )
        .set(
            "actor",
            reference("Practitioner", performer, Some(name.as_str())),
        );
        out.list("performer", vec![who.end()]);
    }
    if let Some(note) = row.text("note").filter(|n| !n.trim().is_empty()) {
        let mut text = Fields::new();
        text.text("text", Some(note));
        out.list("note", vec![text.end()]);
    }
    if let Some(reason) = row
        .text("reason_description")
        .filter(|r| !r.trim().is_empty())
    {
        let mut why = Fields::new();
        why.text("text", Some(reason));
        out.list("reasonCode", vec![why.end()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-0000000000b1";
    const PATIENT: &str = "90cde167-0000-4000-8000-000000000001";

    fn rows(completion: &str, refusal: &str, refusal_code: &str) -> Rows {
        Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "cvx_code",
                "cvx_text",
                "administered_date",
                "lot_number",
                "amount_administered",
                "amount_administered_unit",
                "added_erroneously",
                "completion_status",
                "refusal_reason",
                "refusal_code",
                "refusal_title",
                "route_code",
                "route_title",
                "patient_uuid",
            ],
            vec![vec![
                UUID.into(),
                "2024-05-01 07:08:09".into(),
                1.into(),
                "140".into(),
                "Influenza, seasonal, injectable".into(),
                "2024-04-30 10:00:00".into(),
                "LOT1".into(),
                Value::Real(0.5),
                "ml".into(),
                0.into(),
                completion.into(),
                refusal.into(),
                refusal_code.into(),
                "Patient objection".into(),
                "IM".into(),
                "Intramuscular".into(),
                PATIENT.into(),
            ]],
        )
    }

    #[test]
    fn a_given_dose_is_completed_with_its_cvx_code() {
        let mut host = MockHost::new().on_query("WHERE i.uuid = $1", rows("Completed", "", ""));
        let response =
            host.call::<FhirImmunization>(TestRequest::get(&format!("/fhir/Immunization/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let i = response.body_json();
        assert_eq!(i["status"], "completed");
        assert_eq!(i["vaccineCode"]["coding"][0]["system"], CVX);
        assert_eq!(i["vaccineCode"]["coding"][0]["code"], "140");
        assert_eq!(i["occurrenceDateTime"], "2024-04-30T10:00:00Z");
        assert_eq!(i["primarySource"], true);
        assert_eq!(i["route"]["coding"][0]["code"], "IM");
        assert_eq!(i["doseQuantity"]["code"], "mL");
        assert_eq!(i["patient"]["reference"], format!("Patient/{PATIENT}"));
        assert!(i.get("statusReason").is_none());
    }

    #[test]
    fn a_refused_dose_is_not_done_with_its_reason() {
        let mut host = MockHost::new().on_query(
            "WHERE i.uuid = $1",
            rows("Refused", "patient_objection", "PATOBJ"),
        );
        let response =
            host.call::<FhirImmunization>(TestRequest::get(&format!("/fhir/Immunization/{UUID}")));
        let i = response.body_json();
        assert_eq!(i["status"], "not-done");
        assert_eq!(i["statusReason"]["coding"][0]["code"], "PATOBJ");
        assert_eq!(status(true, "Completed", ""), "entered-in-error");
        assert_eq!(status(false, "Not_Administered", ""), "not-done");
        assert_eq!(status(false, "Partially_Administered", ""), "completed");
    }
}
