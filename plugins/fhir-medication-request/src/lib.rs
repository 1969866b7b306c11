//! FHIR R4 `MedicationRequest` (US Core 3.1.1 and 7.0.0) over OpenEMR's medication list:
//! the `lists` rows of type `medication` that `/api/patient/:pid/medication` reads and
//! writes. OpenEMR answers these with intent `plan` (a medication the patient takes, on
//! the chart's list, not an order) and status `active` until an end date, then
//! `completed`. Hearth has no `prescriptions` table yet, so e-prescribed orders (intent
//! `order`) are not served.

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, codes, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR MedicationRequest resource.
pub struct FhirMedicationRequest;

impl Resource for FhirMedicationRequest {
    const NAME: &'static str = "fhir-medication-request";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR MedicationRequest (US Core) over the medication list";
    const READS: &'static [&'static str] = &["lists", "patient_data", "users", "facility"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        MEDICATION_REQUEST, map, type = "MedicationRequest", acl = "patients/med",
        nouns = "medication requests", one = "a medication request", schema = MEDICATION_REQUEST_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "MedicationRequest",
        "Medication requests (FHIR)",
        "medications and prescriptions (FHIR MedicationRequest)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![MEDICATION_REQUEST.declaration()]
    }
}

/// A MedicationRequest as the routes answer it.
const MEDICATION_REQUEST_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["MedicationRequest"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::String),
        Prop::new("intent", Schema::String),
        Prop::new("category", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("medicationCodeableConcept", CODEABLE_CONCEPT),
        Prop::new("subject", REFERENCE),
        Prop::new("authoredOn", Schema::String),
        Prop::new("requester", REFERENCE),
        Prop::new("dosageInstruction", Schema::Array(&ANNOTATION)),
        Prop::new(
            "dispenseRequest",
            Schema::Object(&[Prop::new("validityPeriod", PERIOD)]),
        ),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

hearth_sdk::export!(FhirMedicationRequest);

const STATUS: &str = "CASE WHEN l.enddate IS NULL THEN 'active' ELSE 'completed' END";

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
];

const MEDICATION_REQUEST: TypeDef = TypeDef {
    resource_type: "MedicationRequest",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest|7.0.0",
    ],
    columns: "l.*, p.uuid AS patient_uuid, u.uuid AS requester_uuid, u.fname AS requester_fname, \
              u.lname AS requester_lname, \
              CASE WHEN l.enddate IS NULL THEN 'active' ELSE 'completed' END AS status",
    from: "lists l JOIN patient_data p ON p.pid = l.pid \
           LEFT JOIN users u ON u.username = l.\"user\" AND u.npi <> ''",
    id: "l.uuid",
    key: "l.id",
    last_updated: "COALESCE(l.modifydate, l.date)",
    patient: Some("p.uuid"),
    only: Some("l.type = 'medication'"),
    params: &[
        Param::new(
            "patient",
            "MedicationRequest.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "status",
            "MedicationRequest.status",
            Target::Token(&[TokenColumn::new(
                STATUS,
                Some("http://hl7.org/fhir/CodeSystem/medicationrequest-status"),
            )]),
        ),
        Param::new(
            "intent",
            "MedicationRequest.intent",
            Target::Token(&[TokenColumn::new(
                "'plan'",
                Some("http://hl7.org/fhir/CodeSystem/medicationrequest-intent"),
            )]),
        ),
        Param::new("code", "MedicationRequest.medication", Target::Token(CODES)),
        Param::new(
            "authoredon",
            "MedicationRequest.authoredOn",
            Target::DateTime("l.date"),
        ),
    ],
};

/// A row of the medication list as a US Core MedicationRequest.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("status", row.text("status").unwrap_or("active"))
        .set("intent", "plan");
    out.set(
        "medicationCodeableConcept",
        codes::concept(row.text("diagnosis"), row.text("title")),
    );
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    let instant = |column: &str| row.text(column).and_then(hearth_fhir::date::instant);
    if let Some(authored) = instant("date") {
        out.set("authoredOn", authored.as_str());
    }
    if let Some(uuid) = row.text("requester_uuid") {
        let name = [row.text("requester_fname"), row.text("requester_lname")]
            .into_iter()
            .flatten()
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        out.set(
            "requester",
            reference(
                "Practitioner",
                uuid,
                (!name.is_empty()).then_some(name.as_str()),
            ),
        );
    }
    let (start, end) = (instant("begdate"), instant("enddate"));
    if start.is_some() || end.is_some() {
        let mut period = Fields::new();
        period
            .text("start", start.as_deref())
            .text("end", end.as_deref());
        let mut dispense = Fields::new();
        dispense.set("validityPeriod", period.end());
        out.set("dispenseRequest", dispense.end());
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

    #[test]
    fn a_listed_medication_is_a_plan() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "patient_uuid",
                "status",
                "title",
                "diagnosis",
                "date",
                "begdate",
            ],
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                2.into(),
                "90cde167-0000-4000-8000-0000000000aa".into(),
                "active".into(),
                "Lisinopril 10 mg".into(),
                "RXNORM:314076".into(),
                "2024-05-06 07:08:09".into(),
                "2024-05-01 00:00:00".into(),
            ]],
        );
        let mut host = MockHost::new().on_query("WHERE l.uuid = $1", rows);
        let response = host.call::<FhirMedicationRequest>(TestRequest::get(&format!(
            "/fhir/MedicationRequest/{ID}"
        )));
        assert_eq!(response.status, 200, "{}", response.text());
        let m = response.body_json();
        assert_eq!(m["intent"], "plan");
        assert_eq!(m["status"], "active");
        assert_eq!(
            m["medicationCodeableConcept"]["coding"][0]["code"],
            "314076"
        );
        assert_eq!(m["authoredOn"], "2024-05-06T07:08:09Z");
        assert_eq!(
            m["dispenseRequest"]["validityPeriod"]["start"],
            "2024-05-01T00:00:00Z"
        );
        assert!(m.get("requester").is_none());
    }
}
