//! FHIR R4 `MedicationRequest` (US Core 3.1.1 and 7.0.0) over both of OpenEMR's sources,
//! merged as OpenEMR merges them (`hearth_fhir::tables::MEDICATION_REQUESTS`, one
//! derived table, so a search counts, sorts and pages across both with one `total`):
//!
//! - the medication list (`lists` rows of type `medication`, `/api/patient/:pid/medication`):
//!   intent `plan` (a medication the patient takes, not an order), status `active` until
//!   an end date, then `completed`;
//! - prescriptions (`prescriptions`, `/api/prescription`): intent `order`, status `active`,
//!   `completed` once it has an end date, `stopped` once deleted (OpenEMR's soft delete
//!   sets `active = 0`), with the dose, form, route and interval as the dosage
//!   instruction, the quantity and refills as the dispense request.

use hearth_fhir::{
    Fields, Param, Target, TokenColumn, TypeDef, codes, coding, concept, reference, tables,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR MedicationRequest resource.
pub struct FhirMedicationRequest;

impl Resource for FhirMedicationRequest {
    const NAME: &'static str = "fhir-medication-request";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR MedicationRequest (US Core) over the medication list";
    const READS: &'static [&'static str] = &[
        "lists",
        "prescriptions",
        "patient_data",
        "users",
        "form_encounter",
        "list_options",
        "facility",
    ];
    const ROUTES: &'static [Route] = &[
        Route::get("/fhir/MedicationRequest", "MedicationRequest.s", search)
            .acl("patients/med")
            .summary("Search medication requests")
            .answers(Schema::Bundle(&MEDICATION_REQUEST_SCHEMA)),
        Route::post(
            "/fhir/MedicationRequest/_search",
            "MedicationRequest.s",
            search,
        )
        .acl("patients/med")
        .summary("Search medication requests (form body)")
        .answers(Schema::Bundle(&MEDICATION_REQUEST_SCHEMA)),
        Route::get("/fhir/MedicationRequest/:id", "MedicationRequest.r", |r| {
            hearth_fhir::read_branches(r, &MEDICATION_REQUEST, &BRANCHES, r.param("id")?, map)
        })
        .acl("patients/med")
        .summary("Read a medication request")
        .answers(MEDICATION_REQUEST_SCHEMA),
    ];

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
        Prop::new("reportedBoolean", Schema::Boolean),
        Prop::new("encounter", REFERENCE),
        Prop::new("authoredOn", Schema::String),
        Prop::new("requester", REFERENCE),
        Prop::new(
            "dosageInstruction",
            Schema::Array(&Schema::Object(&[
                Prop::new("text", Schema::String),
                Prop::new("route", CODEABLE_CONCEPT),
            ])),
        ),
        Prop::new(
            "dispenseRequest",
            Schema::Object(&[
                Prop::new("validityPeriod", PERIOD),
                Prop::new("numberOfRepeatsAllowed", Schema::Integer),
                Prop::new("quantity", QUANTITY),
            ]),
        ),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

hearth_sdk::export!(FhirMedicationRequest);

const CODES: &[TokenColumn] = &[
    TokenColumn::listed(
        "m.codes",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "RXNORM:",
    ),
    TokenColumn::listed(
        "m.codes",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "RXCUI:",
    ),
];

const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/medicationrequest-category";

const MEDICATION_REQUEST: TypeDef = TypeDef {
    resource_type: "MedicationRequest",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest|7.0.0",
    ],
    columns: "m.*",
    from: tables::MEDICATION_REQUESTS,
    id: "m.mid",
    key: "m.mkey",
    last_updated: "m.updated",
    patient: Some("m.patient_uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "MedicationRequest.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "m.patient_uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "status",
            "MedicationRequest.status",
            Target::Token(&[TokenColumn::new(
                "m.status",
                Some("http://hl7.org/fhir/CodeSystem/medicationrequest-status"),
            )]),
        ),
        Param::new(
            "intent",
            "MedicationRequest.intent",
            Target::Token(&[TokenColumn::new(
                "m.intent",
                Some("http://hl7.org/fhir/CodeSystem/medicationrequest-intent"),
            )]),
        ),
        Param::new(
            "category",
            "MedicationRequest.category",
            Target::Token(&[TokenColumn::new("m.category", Some(CATEGORY))]),
        ),
        Param::new(
            "encounter",
            "MedicationRequest.encounter",
            Target::Reference {
                column: "m.encounter_uuid",
                target: "Encounter",
            },
        ),
        Param::new(
            "requester",
            "MedicationRequest.requester",
            Target::Reference {
                column: "m.requester_uuid",
                target: "Practitioner",
            },
        ),
        Param::new("code", "MedicationRequest.medication", Target::Token(CODES)),
        Param::new(
            "authoredon",
            "MedicationRequest.authoredOn",
            Target::DateTime("m.authored"),
        ),
    ],
};

/// [`MEDICATION_REQUEST`]'s derived table branch by branch (see
/// [`hearth_fhir::branches`]): a search pushes its conditions into each branch, and the
/// intent, a constant per branch (`plan` every listed medication, `order` every
/// prescription), leaves the branch it cannot match out of the SQL.
static BRANCHES: std::sync::LazyLock<hearth_fhir::branches::Branches> =
    std::sync::LazyLock::new(tables::medication_request_branches);

/// `GET /fhir/MedicationRequest` and `POST /fhir/MedicationRequest/_search`.
fn search(req: &Request) -> Result<Response> {
    hearth_fhir::search_branches(req, &MEDICATION_REQUEST, &BRANCHES, map)
}

/// A row of the medication list or a prescription as a US Core MedicationRequest.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let intent = row.text("intent").unwrap_or("plan");
    out.set("status", row.text("status").unwrap_or("active"))
        .set("intent", intent);
    if let Some(category) = row.text("category") {
        let display = match category {
            "inpatient" => "Inpatient",
            "outpatient" => "Outpatient",
            "discharge" => "Discharge",
            _ => "Community",
        };
        out.list(
            "category",
            vec![concept(coding(CATEGORY, category, Some(display)), None)],
        );
    }
    // A listed medication is what the patient reports taking.
    if intent == "plan" {
        out.set("reportedBoolean", true);
    }
    out.set(
        "medicationCodeableConcept",
        codes::concept(row.text("codes"), row.text("title")),
    );
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    let instant = |column: &str| row.text(column).and_then(hearth_fhir::date::instant);
    if let Some(authored) = instant("authored") {
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
    if let Some(dosage) = dosage(row) {
        out.list("dosageInstruction", vec![dosage]);
    }
    let (start, end) = (instant("start_date"), instant("end_date"));
    let mut dispense = Fields::new();
    if start.is_some() || end.is_some() {
        let mut period = Fields::new();
        period
            .text("start", start.as_deref())
            .text("end", end.as_deref());
        dispense.set("validityPeriod", period.end());
    }
    if let Some(refills) = row.int("refills").filter(|r| *r > 0) {
        dispense.set("numberOfRepeatsAllowed", refills);
    }
    let quantity = row
        .text("quantity")
        .and_then(|q| q.trim().parse::<f64>().ok())
        .filter(|q| q.is_finite() && *q > 0.0);
    if let Some(quantity) = quantity {
        let mut amount = Fields::new();
        amount.set("value", quantity);
        dispense.set("quantity", amount.end());
    }
    out.object("dispenseRequest", dispense.end());
    if let Some(note) = row.text("note").filter(|c| !c.trim().is_empty()) {
        let mut text = Fields::new();
        text.set("text", note.trim());
        out.list("note", vec![text.end()]);
    }
}

/// A prescription's dosage instruction: its dose, form, route and interval as text (as
/// OpenEMR's prescription screen writes them, e.g. "1 tablet Per Oris b.i.d."), the
/// prescriber's instructions after them, and the route coded in HL7 v3.
fn dosage(row: &Row<'_>) -> Option<Json> {
    let text: Vec<&str> = [
        row.text("dosage"),
        row.text("form_title"),
        row.text("route_title"),
        row.text("interval_title"),
        row.text("instructions"),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|t| !t.is_empty())
    .collect();
    if text.is_empty() {
        return None;
    }
    let mut out = Fields::new();
    out.set("text", text.join(" "));
    if let Some(code) = row.text("route_code").filter(|c| !c.trim().is_empty()) {
        out.set(
            "route",
            concept(
                coding(
                    "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
                    code,
                    row.text("route_title"),
                ),
                row.text("route_title"),
            ),
        );
    }
    Some(out.end())
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
                "intent",
                "title",
                "codes",
                "authored",
                "start_date",
            ],
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                2.into(),
                "90cde167-0000-4000-8000-0000000000aa".into(),
                "active".into(),
                "plan".into(),
                "Lisinopril 10 mg".into(),
                "RXNORM:314076".into(),
                "2024-05-06 07:08:09".into(),
                "2024-05-01 00:00:00".into(),
            ]],
        );
        let mut host = MockHost::new().on_query("m.mid AS fhir_id", rows);
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
