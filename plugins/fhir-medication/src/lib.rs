//! FHIR R4 drugs and their dispensing over OpenEMR's formulary, the rows `/api/drug`
//! serves:
//!
//! - `Medication` (US Core 3.1.1 and 7.0.0): one per `drugs` row, coded in RxNorm
//!   (`drug_code`) and NDC (`ndc_number`); outside any patient's compartment, as in
//!   OpenEMR (a formulary is not patient data);
//! - `MedicationDispense` (US Core 7.0.0): one per sale of a drug to a patient
//!   (`drug_sales` with `trans_type` 1), `completed`, a first fill or a refill of its
//!   prescription, with the lot's manufacturer and the quantity handed over.

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Medication and MedicationDispense resources.
pub struct FhirMedication;

impl Resource for FhirMedication {
    const NAME: &'static str = "fhir-medication";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Medication and MedicationDispense (US Core) over OpenEMR drugs and drug_sales";
    const READS: &'static [&'static str] = &[
        "drugs",
        "drug_inventory",
        "drug_sales",
        "prescriptions",
        "patient_data",
        "users",
        "form_encounter",
        "list_options",
        "facility",
    ];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        MEDICATION, map_medication, type = "Medication", acl = "patients/med",
        nouns = "medications", one = "a medication", schema = MEDICATION_SCHEMA;
        DISPENSE, map_dispense, type = "MedicationDispense", acl = "patients/med",
        nouns = "medication dispenses", one = "a medication dispense", schema = DISPENSE_SCHEMA
    );

    const WORDS: &'static [Words] = &[
        Words::new(
            "Medication",
            "Medications (FHIR)",
            "the drug formulary (FHIR Medication)",
        ),
        Words::new(
            "MedicationDispense",
            "Medication dispenses (FHIR)",
            "drugs dispensed to patients (FHIR MedicationDispense)",
        ),
    ];

    fn fhir_types() -> Vec<FhirType> {
        vec![MEDICATION.declaration(), DISPENSE.declaration()]
    }
}

hearth_sdk::export!(FhirMedication);

const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const NDC: &str = "http://hl7.org/fhir/sid/ndc";

/// A Medication as the routes answer it.
const MEDICATION_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Medication"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("code", CODEABLE_CONCEPT).required(),
        Prop::new("status", Schema::Enum(&["active", "inactive"])),
        Prop::new("form", CODEABLE_CONCEPT),
    ])
};

/// A MedicationDispense as the routes answer it.
const DISPENSE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["MedicationDispense"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::String).required(),
        Prop::new("medicationCodeableConcept", CODEABLE_CONCEPT).required(),
        Prop::new("subject", REFERENCE).required(),
        Prop::new("context", REFERENCE),
        Prop::new(
            "performer",
            Schema::Array(&Schema::Object(&[Prop::new("actor", REFERENCE).required()])),
        ),
        Prop::new("authorizingPrescription", Schema::Array(&REFERENCE)),
        Prop::new("type", CODEABLE_CONCEPT),
        Prop::new("quantity", QUANTITY),
        Prop::new("whenHandedOver", Schema::String),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

const MEDICATION: TypeDef = TypeDef {
    resource_type: "Medication",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medication",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medication|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medication|7.0.0",
    ],
    columns: "d.name, d.drug_code, d.ndc_number, d.active, f.title AS form_title",
    from: "drugs d LEFT JOIN list_options f ON f.list_id = 'drug_form' AND f.option_id = d.form",
    id: "d.uuid",
    key: "d.drug_id",
    last_updated: "COALESCE(d.last_updated, d.date_created)",
    patient: None,
    only: None,
    params: &[Param::new(
        "code",
        "Medication.code",
        Target::Token(&[
            TokenColumn::new("d.drug_code", Some(RXNORM)),
            TokenColumn::new("d.ndc_number", Some(NDC)),
        ]),
    )],
};

/// A dispense is a first fill unless an earlier sale filled the same prescription.
const FILL_TYPE: &str = "CASE WHEN ds.prescription_id > 0 AND (SELECT COUNT(*) FROM drug_sales e \
    WHERE e.prescription_id = ds.prescription_id AND e.trans_type = 1 \
    AND e.sales_id < ds.sales_id) > 0 THEN 'RF' ELSE 'FF' END";

const DISPENSE: TypeDef = TypeDef {
    resource_type: "MedicationDispense",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationdispense",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationdispense|7.0.0",
    ],
    columns: "ds.sale_date, ds.quantity, ds.notes, d.name, d.drug_code, d.ndc_number, \
              lu.title AS unit_title, p.uuid AS patient_uuid, fe.uuid AS encounter_uuid, \
              u.uuid AS performer_uuid, u.fname AS performer_fname, u.lname AS performer_lname, \
              CAST(rx.uuid AS TEXT) AS prescription_uuid, \
              CASE WHEN ds.prescription_id > 0 AND (SELECT COUNT(*) FROM drug_sales e \
              WHERE e.prescription_id = ds.prescription_id AND e.trans_type = 1 \
              AND e.sales_id < ds.sales_id) > 0 THEN 'RF' ELSE 'FF' END AS fill_type",
    from: "drug_sales ds JOIN patient_data p ON p.pid = ds.pid \
           LEFT JOIN drugs d ON d.drug_id = ds.drug_id \
           LEFT JOIN list_options lu ON lu.list_id = 'drug_units' AND lu.option_id = d.unit \
           LEFT JOIN prescriptions rx ON rx.id = ds.prescription_id \
           LEFT JOIN form_encounter fe ON fe.pid = ds.pid AND fe.encounter = ds.encounter \
           LEFT JOIN users u ON u.username = ds.\"user\" AND u.npi <> ''",
    id: "ds.uuid",
    key: "ds.sales_id",
    last_updated: "COALESCE(ds.last_updated, ds.sale_date)",
    patient: Some("p.uuid"),
    only: Some("ds.trans_type = 1"),
    params: &[
        Param::new(
            "patient",
            "MedicationDispense.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "status",
            "MedicationDispense.status",
            Target::Token(&[TokenColumn::new(
                "'completed'",
                Some("http://terminology.hl7.org/CodeSystem/medicationdispense-status"),
            )]),
        ),
        Param::new(
            "type",
            "MedicationDispense.type",
            Target::Token(&[TokenColumn::new(
                FILL_TYPE,
                Some("http://terminology.hl7.org/CodeSystem/v3-ActCode"),
            )]),
        ),
        Param::new(
            "whenhandedover",
            "MedicationDispense.whenHandedOver",
            Target::DateTime("ds.sale_date"),
        ),
        Param::new(
            "prescription",
            "MedicationDispense.authorizingPrescription",
            Target::Reference {
                column: "rx.uuid",
                target: "MedicationRequest",
            },
        ),
    ],
};

/// A drug's code: RxNorm and NDC codings when it has them, its name as the text.
fn drug_code(row: &Row<'_>) -> Json {
    let name = row.text("name").map(str::trim).filter(|n| !n.is_empty());
    let mut codings = Vec::new();
    if let Some(code) = row
        .text("drug_code")
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        codings.push(coding(RXNORM, code, name));
    }
    if let Some(ndc) = row
        .text("ndc_number")
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        codings.push(coding(NDC, ndc, name));
    }
    let mut out = Fields::new();
    out.list("coding", codings)
        .text("text", name.or(Some("Unnamed drug")));
    out.end()
}

/// A `drugs` row as a US Core Medication.
fn map_medication(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("code", drug_code(row));
    out.set(
        "status",
        if row.int("active").unwrap_or(1) == 0 {
            "inactive"
        } else {
            "active"
        },
    );
    if let Some(form) = row.text("form_title").filter(|f| !f.trim().is_empty()) {
        let mut text = Fields::new();
        text.set("text", form.trim());
        out.set("form", text.end());
    }
}

/// A sale of a drug to a patient as a US Core MedicationDispense.
fn map_dispense(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("status", "completed");
    out.set("medicationCodeableConcept", drug_code(row));
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("context", reference("Encounter", encounter, None));
    }
    if let Some(uuid) = row.text("performer_uuid") {
        let who = [row.text("performer_fname"), row.text("performer_lname")]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let mut performer = Fields::new();
        performer.set(
            "actor",
            reference(
                "Practitioner",
                uuid,
                (!who.is_empty()).then_some(who.as_str()),
            ),
        );
        out.list("performer", vec![performer.end()]);
    }
    if let Some(prescription) = row.text("prescription_uuid") {
        out.list(
            "authorizingPrescription",
            vec![reference("MedicationRequest", prescription, None)],
        );
    }
    let (code, display) = match row.text("fill_type") {
        Some("RF") => ("RF", "Refill"),
        _ => ("FF", "First Fill"),
    };
    out.set(
        "type",
        concept(
            coding(
                "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                code,
                Some(display),
            ),
            None,
        ),
    );
    if let Some(quantity) = row.int("quantity").filter(|q| *q > 0) {
        let mut amount = Fields::new();
        amount.set("value", quantity);
        amount.text("unit", row.text("unit_title"));
        out.set("quantity", amount.end());
    }
    if let Some(at) = row.text("sale_date").and_then(hearth_fhir::date::instant) {
        out.set("whenHandedOver", at.as_str());
    }
    if let Some(notes) = row.text("notes").filter(|n| !n.trim().is_empty()) {
        let mut note = Fields::new();
        note.set("text", notes.trim());
        out.list("note", vec![note.end()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const ID: &str = "90cde167-0000-4000-8000-0000000000f7";

    #[test]
    fn a_drug_is_a_medication_coded_in_rxnorm_and_ndc() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "name",
                "drug_code",
                "ndc_number",
                "active",
            ],
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                1.into(),
                "Lisinopril 10 MG Oral Tablet".into(),
                "314076".into(),
                "68180-0513-01".into(),
                1.into(),
            ]],
        );
        let mut host = MockHost::new().on_query("WHERE d.uuid = $1", rows);
        let response =
            host.call::<FhirMedication>(TestRequest::get(&format!("/fhir/Medication/{ID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let m = response.body_json();
        assert_eq!(m["code"]["coding"][0]["system"], RXNORM);
        assert_eq!(m["code"]["coding"][1]["code"], "68180-0513-01");
        assert_eq!(m["status"], "active");
    }
}
