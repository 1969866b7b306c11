//! FHIR R4 `AllergyIntolerance` (US Core 3.1.1 and 7.0.0) over OpenEMR's allergies: the
//! `lists` rows of type `allergy` that `/api/patient/:puuid/allergy` reads and writes,
//! mapped as OpenEMR maps them (status from the end date and outcome, verification from
//! the `allergyintolerance-verification` list, the reaction from the `reaction` list).

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, codes, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR AllergyIntolerance resource.
pub struct FhirAllergy;

impl Resource for FhirAllergy {
    const NAME: &'static str = "fhir-allergy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR AllergyIntolerance (US Core) over OpenEMR allergies";
    const READS: &'static [&'static str] = &["lists", "patient_data", "list_options", "facility"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        ALLERGY, map, type = "AllergyIntolerance", acl = "patients/med", nouns = "allergies",
        one = "an allergy", schema = ALLERGY_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "AllergyIntolerance",
        "Allergies (FHIR)",
        "allergies and intolerances (FHIR AllergyIntolerance)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![ALLERGY.declaration()]
    }
}

/// An AllergyIntolerance as the routes answer it.
const ALLERGY_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["AllergyIntolerance"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("clinicalStatus", CODEABLE_CONCEPT),
        Prop::new("verificationStatus", CODEABLE_CONCEPT),
        Prop::new("code", CODEABLE_CONCEPT),
        Prop::new("patient", REFERENCE),
        Prop::new("onsetDateTime", Schema::String),
        Prop::new("recordedDate", Schema::String),
        Prop::new(
            "reaction",
            Schema::Array(&Schema::Object(&[
                Prop::new("manifestation", Schema::Array(&CODEABLE_CONCEPT)),
                Prop::new("severity", Schema::Enum(&["mild", "moderate", "severe"])),
            ])),
        ),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

hearth_sdk::export!(FhirAllergy);

const CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";

/// Active until an end date; then resolved when the outcome says so, else inactive.
const CLINICAL_STATUS: &str = "CASE WHEN l.enddate IS NULL THEN 'active' \
    WHEN l.outcome = 1 THEN 'resolved' ELSE 'inactive' END";

const CODES: &[TokenColumn] = &[
    TokenColumn::listed(
        "l.diagnosis",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "RXNORM:",
    ),
    TokenColumn::listed(
        "l.diagnosis",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "RXCUI:",
    ),
    TokenColumn::listed("l.diagnosis", "http://snomed.info/sct", "SNOMED-CT:"),
    TokenColumn::listed("l.diagnosis", "http://snomed.info/sct", "SNOMED:"),
];

const ALLERGY: TypeDef = TypeDef {
    resource_type: "AllergyIntolerance",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance|7.0.0",
    ],
    columns: "l.*, p.uuid AS patient_uuid, r.title AS reaction_title, r.codes AS reaction_codes, \
              CASE WHEN l.enddate IS NULL THEN 'active' WHEN l.outcome = 1 THEN 'resolved' \
              ELSE 'inactive' END AS clinical_status",
    from: "lists l JOIN patient_data p ON p.pid = l.pid \
           LEFT JOIN list_options r ON r.list_id = 'reaction' AND r.option_id = l.reaction",
    id: "l.uuid",
    key: "l.id",
    last_updated: "COALESCE(l.modifydate, l.date)",
    patient: Some("p.uuid"),
    only: Some("l.type = 'allergy'"),
    params: &[
        Param::new(
            "patient",
            "AllergyIntolerance.patient",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "clinical-status",
            "AllergyIntolerance.clinicalStatus",
            Target::Token(&[TokenColumn::new(CLINICAL_STATUS, Some(CLINICAL))]),
        ),
        Param::new(
            "verification-status",
            "AllergyIntolerance.verificationStatus",
            Target::Token(&[TokenColumn::new("l.verification", Some(VERIFICATION))]),
        ),
        Param::new("code", "AllergyIntolerance.code", Target::Token(CODES)),
        Param::new(
            "onset",
            "AllergyIntolerance.onset",
            Target::DateTime("l.begdate"),
        ),
        Param::new(
            "date",
            "AllergyIntolerance.recordedDate",
            Target::DateTime("l.date"),
        ),
    ],
};

/// OpenEMR's `allergyintolerance-verification` options, FHIR's codes.
const VERIFICATIONS: &[(&str, &str)] = &[
    ("unconfirmed", "Unconfirmed"),
    ("confirmed", "Confirmed"),
    ("refuted", "Refuted"),
    ("entered-in-error", "Entered in Error"),
];

/// A row of `lists` as a US Core AllergyIntolerance.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let clinical = row.text("clinical_status").unwrap_or("active");
    let display = match clinical {
        "active" => "Active",
        "resolved" => "Resolved",
        _ => "Inactive",
    };
    out.set(
        "clinicalStatus",
        concept(coding(CLINICAL, clinical, Some(display)), None),
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
    out.set(
        "code",
        codes::concept(row.text("diagnosis"), row.text("title")),
    );
    if let Some(patient) = row.text("patient_uuid") {
        out.set("patient", reference("Patient", patient, None));
    }
    let instant = |column: &str| row.text(column).and_then(hearth_fhir::date::instant);
    if let Some(onset) = instant("begdate") {
        out.set("onsetDateTime", onset.as_str());
    }
    if let Some(recorded) = instant("date") {
        out.set("recordedDate", recorded.as_str());
    }
    // The reaction: a `reaction` list option (its SNOMED CT codes and title), and the
    // severity when it is one of FHIR's three.
    let reaction_title = row.text("reaction_title").filter(|t| !t.trim().is_empty());
    if let Some(title) = reaction_title.filter(|_| row.text("reaction") != Some("unassessed")) {
        let mut reaction = Fields::new();
        reaction.list(
            "manifestation",
            vec![codes::concept(row.text("reaction_codes"), Some(title))],
        );
        if let Some(severity) = row
            .text("severity_al")
            .map(str::trim)
            .filter(|s| matches!(*s, "mild" | "moderate" | "severe"))
        {
            reaction.set("severity", severity);
        }
        out.list("reaction", vec![reaction.end()]);
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

    #[test]
    fn an_allergy_reads_as_us_core() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "patient_uuid",
                "clinical_status",
                "verification",
                "title",
                "diagnosis",
                "reaction",
                "reaction_title",
                "reaction_codes",
                "severity_al",
                "date",
            ],
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                2.into(),
                PUUID.into(),
                "inactive".into(),
                "confirmed".into(),
                "Penicillin".into(),
                "RXNORM:7980".into(),
                "hives".into(),
                "Hives".into(),
                "SNOMED-CT:247472004".into(),
                "severe".into(),
                "2024-05-06 07:08:09".into(),
            ]],
        );
        let mut host = MockHost::new().on_query("WHERE l.uuid = $1", rows);
        let response =
            host.call::<FhirAllergy>(TestRequest::get(&format!("/fhir/AllergyIntolerance/{ID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let a = response.body_json();
        assert_eq!(a["clinicalStatus"]["coding"][0]["code"], "inactive");
        assert_eq!(a["verificationStatus"]["coding"][0]["code"], "confirmed");
        assert_eq!(a["code"]["coding"][0]["code"], "7980");
        assert_eq!(a["code"]["text"], "Penicillin");
        assert_eq!(a["patient"]["reference"], format!("Patient/{PUUID}"));
        assert_eq!(
            a["reaction"][0]["manifestation"][0]["coding"][0]["code"],
            "247472004"
        );
        assert_eq!(a["reaction"][0]["severity"], "severe");
        let (sql, _) = &host.queries()[0];
        assert!(sql.contains("l.type = 'allergy'"), "{sql}");
    }
}
