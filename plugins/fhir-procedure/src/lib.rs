//! FHIR R4 `Procedure` (US Core 3.1.1 and 7.0.0) over OpenEMR's surgery list: the
//! `lists` rows of type `surgery` that `/api/patient/:pid/surgery` reads and writes. A
//! surgery on the list was performed: status `completed` with `performedDateTime` its
//! start date. A surgery recorded without a date is `unknown`: US Core requires the
//! performed time of a completed procedure, and Hearth does not invent one.

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, codes, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Procedure resource.
pub struct FhirProcedure;

impl Resource for FhirProcedure {
    const NAME: &'static str = "fhir-procedure";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Procedure (US Core) over the surgery list";
    const READS: &'static [&'static str] = &["lists", "patient_data", "facility"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        PROCEDURE, map, type = "Procedure", acl = "patients/med", nouns = "procedures",
        one = "a procedure", schema = PROCEDURE_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "Procedure",
        "Procedures (FHIR)",
        "procedures and surgeries (FHIR Procedure)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![PROCEDURE.declaration()]
    }
}

/// A Procedure as the routes answer it.
const PROCEDURE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Procedure"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::String),
        Prop::new("code", CODEABLE_CONCEPT),
        Prop::new("subject", REFERENCE),
        Prop::new("performedDateTime", Schema::String),
        Prop::new("performedPeriod", PERIOD),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

hearth_sdk::export!(FhirProcedure);

const STATUS: &str = "CASE WHEN l.begdate IS NULL THEN 'unknown' ELSE 'completed' END";

const CODES: &[TokenColumn] = &[
    TokenColumn::listed("l.diagnosis", "http://www.ama-assn.org/go/cpt", "CPT4:"),
    TokenColumn::listed("l.diagnosis", "http://snomed.info/sct", "SNOMED-CT:"),
    TokenColumn::listed("l.diagnosis", "http://snomed.info/sct", "SNOMED:"),
    TokenColumn::listed("l.diagnosis", "http://hl7.org/fhir/sid/icd-10-cm", "ICD10:"),
];

const PROCEDURE: TypeDef = TypeDef {
    resource_type: "Procedure",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure|7.0.0",
    ],
    columns: "l.*, p.uuid AS patient_uuid, \
              CASE WHEN l.begdate IS NULL THEN 'unknown' ELSE 'completed' END AS status",
    from: "lists l JOIN patient_data p ON p.pid = l.pid",
    id: "l.uuid",
    key: "l.id",
    last_updated: "COALESCE(l.modifydate, l.date)",
    patient: Some("p.uuid"),
    only: Some("l.type = 'surgery'"),
    params: &[
        Param::new(
            "patient",
            "Procedure.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "date",
            "Procedure.performed",
            Target::Period {
                start: "l.begdate",
                end: "l.enddate",
            },
        ),
        Param::new("code", "Procedure.code", Target::Token(CODES)),
        Param::new(
            "status",
            "Procedure.status",
            Target::Token(&[TokenColumn::new(
                STATUS,
                Some("http://hl7.org/fhir/event-status"),
            )]),
        ),
    ],
};

/// A row of the surgery list as a US Core Procedure.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("status", row.text("status").unwrap_or("unknown"));
    out.set(
        "code",
        codes::concept(row.text("diagnosis"), row.text("title")),
    );
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    let instant = |column: &str| row.text(column).and_then(hearth_fhir::date::instant);
    match (instant("begdate"), instant("enddate")) {
        (Some(start), Some(end)) if end > start => {
            let mut period = Fields::new();
            period.set("start", start.as_str()).set("end", end.as_str());
            out.set("performedPeriod", period.end());
        }
        (Some(start), _) => {
            out.set("performedDateTime", start.as_str());
        }
        _ => {}
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
    fn a_surgery_is_a_completed_procedure() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "patient_uuid",
                "status",
                "title",
                "diagnosis",
                "begdate",
            ],
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                2.into(),
                "90cde167-0000-4000-8000-0000000000aa".into(),
                "completed".into(),
                "Appendectomy".into(),
                "CPT4:44950".into(),
                "2010-03-04 00:00:00".into(),
            ]],
        );
        let mut host = MockHost::new().on_query("WHERE l.uuid = $1", rows);
        let response =
            host.call::<FhirProcedure>(TestRequest::get(&format!("/fhir/Procedure/{ID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let p = response.body_json();
        assert_eq!(p["status"], "completed");
        assert_eq!(
            p["code"]["coding"][0]["system"],
            "http://www.ama-assn.org/go/cpt"
        );
        assert_eq!(p["performedDateTime"], "2010-03-04T00:00:00Z");
    }
}
