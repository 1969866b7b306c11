//! FHIR R4 `Condition` (US Core 3.1.1 and 7.0.0) over OpenEMR's medical problems, as
//! OpenEMR maps them:
//!
//! - every `lists` row of type `medical_problem` (what `/api/patient/:puuid/medical_problem`
//!   reads and writes) is a problem-list item (category `problem-list-item`), id the row's
//!   uuid;
//! - every link of a problem to an encounter (`issue_encounter`, written when a problem
//!   is addressed in a visit) is an encounter diagnosis (category `encounter-diagnosis`)
//!   referencing the encounter. Its id is the problem's uuid with the version digit set to
//!   `e` and the last twelve digits replaced by the link's row number, so it is stable,
//!   unique, and visibly belongs to its problem.
//!
//! One `UNION ALL` derived table serves both, so searches count and page across them.

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, codes, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Condition resource.
pub struct FhirCondition;

impl Resource for FhirCondition {
    const NAME: &'static str = "fhir-condition";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Condition (US Core problems and encounter diagnoses) over lists and issue_encounter";
    const READS: &'static [&'static str] = &[
        "lists",
        "issue_encounter",
        "form_encounter",
        "patient_data",
        "facility",
    ];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        CONDITION, map, type = "Condition", acl = "patients/med", nouns = "conditions",
        one = "a condition", schema = CONDITION_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "Condition",
        "Conditions (FHIR)",
        "problems and diagnoses (FHIR Condition)",
    )
    .categories(&[
        ("problem-list-item", "problem list items"),
        ("encounter-diagnosis", "encounter diagnoses"),
        ("health-concern", "health concerns"),
    ])];

    fn fhir_types() -> Vec<FhirType> {
        vec![CONDITION.declaration()]
    }
}

/// A Condition as the routes answer it.
const CONDITION_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Condition"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("clinicalStatus", CODEABLE_CONCEPT),
        Prop::new("verificationStatus", CODEABLE_CONCEPT),
        Prop::new("category", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("code", CODEABLE_CONCEPT),
        Prop::new("subject", REFERENCE),
        Prop::new("encounter", REFERENCE),
        Prop::new("onsetDateTime", Schema::String),
        Prop::new("abatementDateTime", Schema::String),
        Prop::new("recordedDate", Schema::String),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

hearth_sdk::export!(FhirCondition);

const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";

/// `lists.diagnosis` holds OpenEMR code lists; a code searches the items of its system.
const CODES: &[TokenColumn] = &[
    TokenColumn::listed("c.diagnosis", "http://hl7.org/fhir/sid/icd-10-cm", "ICD10:"),
    TokenColumn::listed("c.diagnosis", "http://hl7.org/fhir/sid/icd-9-cm", "ICD9:"),
    TokenColumn::listed("c.diagnosis", "http://snomed.info/sct", "SNOMED-CT:"),
    TokenColumn::listed("c.diagnosis", "http://snomed.info/sct", "SNOMED:"),
];

const CONDITION: TypeDef = TypeDef {
    resource_type: "Condition",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis",
    ],
    columns: "c.*",
    from: hearth_fhir::tables::CONDITIONS,
    id: "c.cid",
    key: "c.ckey",
    last_updated: "c.updated",
    patient: Some("c.patient_uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "Condition.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "c.patient_uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "subject",
            "Condition.subject",
            Target::Reference {
                column: "c.patient_uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "category",
            "Condition.category",
            Target::Token(&[TokenColumn::new("c.category", Some(CATEGORY))]),
        ),
        Param::new("code", "Condition.code", Target::Token(CODES)),
        Param::new(
            "clinical-status",
            "Condition.clinicalStatus",
            Target::Token(&[TokenColumn::new("c.clinical_status", Some(CLINICAL))]),
        ),
        Param::new(
            "verification-status",
            "Condition.verificationStatus",
            Target::Token(&[TokenColumn::new("c.verification", Some(VERIFICATION))]),
        ),
        Param::new(
            "onset-date",
            "Condition.onset.as(dateTime)",
            Target::DateTime("c.begdate"),
        ),
        Param::new(
            "abatement-date",
            "Condition.abatement.as(dateTime)",
            Target::DateTime("c.enddate"),
        ),
        Param::new(
            "recorded-date",
            "Condition.recordedDate",
            Target::DateTime("c.recorded"),
        ),
        Param::new(
            "encounter",
            "Condition.encounter",
            Target::Reference {
                column: "c.encounter_uuid",
                target: "Encounter",
            },
        ),
    ],
};

/// The `condition-clinical` codes and displays.
fn clinical_display(code: &str) -> &'static str {
    match code {
        "active" => "Active",
        "resolved" => "Resolved",
        _ => "Inactive",
    }
}

/// The `condition-ver-status` codes OpenEMR's `condition-verification` list holds.
const VERIFICATIONS: &[(&str, &str)] = &[
    ("unconfirmed", "Unconfirmed"),
    ("provisional", "Provisional"),
    ("differential", "Differential"),
    ("confirmed", "Confirmed"),
    ("refuted", "Refuted"),
    ("entered-in-error", "Entered in Error"),
];

/// A row of the derived table as a US Core Condition.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let clinical = row.text("clinical_status").unwrap_or("active");
    out.set(
        "clinicalStatus",
        concept(
            coding(CLINICAL, clinical, Some(clinical_display(clinical))),
            None,
        ),
    );
    if let Some((code, display)) = row
        .text("verification")
        .and_then(|v| VERIFICATIONS.iter().find(|(c, _)| *c == v.trim()))
    {
        out.set(
            "verificationStatus",
            concept(coding(VERIFICATION, code, Some(display)), None),
        );
    }
    let category = row.text("category").unwrap_or("problem-list-item");
    let display = if category == "encounter-diagnosis" {
        "Encounter Diagnosis"
    } else {
        "Problem List Item"
    };
    out.list(
        "category",
        vec![concept(coding(CATEGORY, category, Some(display)), None)],
    );
    out.set(
        "code",
        codes::concept(row.text("diagnosis"), row.text("title")),
    );
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    let instant = |column: &str| row.text(column).and_then(hearth_fhir::date::instant);
    if let Some(onset) = instant("begdate") {
        out.set("onsetDateTime", onset.as_str());
    }
    if let Some(abatement) = instant("enddate") {
        out.set("abatementDateTime", abatement.as_str());
    }
    if let Some(recorded) = instant("recorded") {
        out.set("recordedDate", recorded.as_str());
    }
    if let Some(comments) = row.text("comments").filter(|c| !c.trim().is_empty()) {
        let mut note = Fields::new();
        note.set("text", comments.trim());
        out.list("note", vec![note.end()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const ID: &str = "90cde167-0000-4000-8000-000000000001";
    const PUUID: &str = "90cde167-0000-4000-8000-0000000000aa";

    fn rows(category: &str, clinical: &str, verification: Value) -> Rows {
        Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "category",
                "patient_uuid",
                "clinical_status",
                "verification",
                "title",
                "diagnosis",
                "begdate",
                "enddate",
                "encounter_uuid",
            ],
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                2.into(),
                category.into(),
                PUUID.into(),
                clinical.into(),
                verification,
                "Hypertension".into(),
                "ICD10:I10;SNOMED-CT:38341003".into(),
                "2020-01-02 00:00:00".into(),
                Value::Null,
                if category == "encounter-diagnosis" {
                    "90cde167-0000-4000-8000-0000000000ee".into()
                } else {
                    Value::Null
                },
            ]],
        )
    }

    fn read(rows: Rows) -> serde_json::Value {
        let mut host = MockHost::new().on_query("WHERE c.cid = $1", rows);
        let response =
            host.call::<FhirCondition>(TestRequest::get(&format!("/fhir/Condition/{ID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        response.body_json()
    }

    #[test]
    fn a_problem_is_a_problem_list_item() {
        let c = read(rows("problem-list-item", "active", "confirmed".into()));
        assert_eq!(c["category"][0]["coding"][0]["code"], "problem-list-item");
        assert_eq!(c["clinicalStatus"]["coding"][0]["code"], "active");
        assert_eq!(c["verificationStatus"]["coding"][0]["code"], "confirmed");
        assert_eq!(
            c["code"]["coding"][0]["system"],
            "http://hl7.org/fhir/sid/icd-10-cm"
        );
        assert_eq!(c["code"]["coding"][1]["code"], "38341003");
        assert_eq!(c["code"]["text"], "Hypertension");
        assert_eq!(c["onsetDateTime"], "2020-01-02T00:00:00Z");
        assert!(c.get("encounter").is_none());
        assert!(c.get("abatementDateTime").is_none());
    }

    #[test]
    fn an_encounter_diagnosis_references_its_encounter() {
        let c = read(rows("encounter-diagnosis", "resolved", Value::Null));
        assert_eq!(c["category"][0]["coding"][0]["code"], "encounter-diagnosis");
        assert_eq!(c["clinicalStatus"]["coding"][0]["code"], "resolved");
        assert!(c.get("verificationStatus").is_none(), "none recorded");
        assert_eq!(
            c["encounter"]["reference"],
            "Encounter/90cde167-0000-4000-8000-0000000000ee"
        );
    }
}
