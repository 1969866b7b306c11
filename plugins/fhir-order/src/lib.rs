//! FHIR R4 laboratory orders and their outcome over OpenEMR's procedure tables, the rows
//! `/api/procedure` serves:
//!
//! - `ServiceRequest` (US Core 7.0.0): one per `procedure_order`, coded by its first
//!   ordered test (`procedure_order_code`), categorised by the order type (SNOMED CT
//!   laboratory procedure, imaging, surgical procedure);
//! - `DiagnosticReport` (US Core 3.1.1 and 7.0.0 laboratory report): one per
//!   `procedure_report`, category `LAB`, based on its order, its `result`s the report's
//!   `procedure_result` rows (served as laboratory Observations by `fhir-observation`);
//! - `Specimen` (US Core 7.0.0): one per `procedure_specimen` row, requested by its
//!   order; a deleted specimen is `unavailable`.
//!
//! Each has a Provenance (`_revinclude=Provenance:target`) and lives in the patient's
//! compartment.

use hearth_fhir::linked::Linked;
use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, codes, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR ServiceRequest, DiagnosticReport and Specimen resources.
pub struct FhirOrder;

impl Resource for FhirOrder {
    const NAME: &'static str = "fhir-order";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR ServiceRequest, DiagnosticReport and Specimen (US Core) over OpenEMR procedure orders";
    const READS: &'static [&'static str] = &[
        "procedure_order",
        "procedure_order_code",
        "procedure_report",
        "procedure_result",
        "procedure_specimen",
        "patient_data",
        "users",
        "form_encounter",
        "facility",
    ];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        SERVICE_REQUEST, map_order, type = "ServiceRequest", acl = "patients/med",
        nouns = "service requests", one = "a service request", schema = SERVICE_REQUEST_SCHEMA;
        DIAGNOSTIC_REPORT, map_report, type = "DiagnosticReport", acl = "admin/super",
        nouns = "diagnostic reports", one = "a diagnostic report", schema = DIAGNOSTIC_REPORT_SCHEMA;
        SPECIMEN, map_specimen, type = "Specimen", acl = "admin/super",
        nouns = "specimens", one = "a specimen", schema = SPECIMEN_SCHEMA
    );

    const WORDS: &'static [Words] = &[
        Words::new(
            "ServiceRequest",
            "Service requests (FHIR)",
            "laboratory and other orders (FHIR ServiceRequest)",
        )
        .categories(&[
            ("108252007", "laboratory orders"),
            ("363679005", "imaging orders"),
            ("387713003", "procedure orders"),
        ]),
        Words::new(
            "DiagnosticReport",
            "Diagnostic reports (FHIR)",
            "laboratory reports (FHIR DiagnosticReport)",
        )
        .categories(&[("LAB", "laboratory reports")]),
        Words::new(
            "Specimen",
            "Specimens (FHIR)",
            "specimens collected for orders (FHIR Specimen)",
        ),
    ];

    fn fhir_types() -> Vec<FhirType> {
        vec![
            SERVICE_REQUEST.declaration(),
            DIAGNOSTIC_REPORT.declaration(),
            SPECIMEN.declaration(),
        ]
    }
}

hearth_sdk::export!(FhirOrder);

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const V2_0074: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// A ServiceRequest as the routes answer it.
const SERVICE_REQUEST_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["ServiceRequest"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::String).required(),
        Prop::new("intent", Schema::String).required(),
        Prop::new("category", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("priority", Schema::String),
        Prop::new("code", CODEABLE_CONCEPT).required(),
        Prop::new("subject", REFERENCE).required(),
        Prop::new("encounter", REFERENCE),
        Prop::new("occurrenceDateTime", Schema::String),
        Prop::new("authoredOn", Schema::String),
        Prop::new("requester", REFERENCE),
        Prop::new("reasonCode", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("note", Schema::Array(&ANNOTATION)),
        Prop::new("patientInstruction", Schema::String),
    ])
};

/// A DiagnosticReport as the routes answer it.
const DIAGNOSTIC_REPORT_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["DiagnosticReport"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("basedOn", Schema::Array(&REFERENCE)),
        Prop::new("status", Schema::String).required(),
        Prop::new("category", Schema::Array(&CODEABLE_CONCEPT)).required(),
        Prop::new("code", CODEABLE_CONCEPT).required(),
        Prop::new("subject", REFERENCE).required(),
        Prop::new("encounter", REFERENCE),
        Prop::new("effectiveDateTime", Schema::String),
        Prop::new("issued", Schema::String),
        Prop::new("performer", Schema::Array(&REFERENCE)),
        Prop::new("specimen", Schema::Array(&REFERENCE)),
        Prop::new("result", Schema::Array(&REFERENCE)),
        Prop::new("conclusion", Schema::String),
    ])
};

/// A Specimen as the routes answer it.
const SPECIMEN_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Specimen"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("identifier", Schema::Array(&IDENTIFIER)),
        Prop::new("accessionIdentifier", IDENTIFIER),
        Prop::new("status", Schema::String),
        Prop::new("type", CODEABLE_CONCEPT).required(),
        Prop::new("subject", REFERENCE),
        Prop::new("request", Schema::Array(&REFERENCE)),
        Prop::new(
            "collection",
            Schema::Object(&[
                Prop::new("collectedDateTime", Schema::String),
                Prop::new("collectedPeriod", PERIOD),
                Prop::new("method", CODEABLE_CONCEPT),
                Prop::new("bodySite", CODEABLE_CONCEPT),
            ]),
        ),
        Prop::new("condition", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

/// OpenEMR's order status (`ord_status`) as a request status.
const ORDER_STATUS: &str = "CASE WHEN po.activity = 0 THEN 'revoked' \
    WHEN po.order_status = 'complete' THEN 'completed' \
    WHEN po.order_status = 'canceled' THEN 'revoked' ELSE 'active' END";

const SERVICE_REQUEST: TypeDef = TypeDef {
    resource_type: "ServiceRequest",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest|7.0.0",
    ],
    columns: "po.date_ordered, po.date_collected, po.order_priority, po.order_diagnosis, \
              po.patient_instructions, po.clinical_hx, poc.procedure_code, poc.procedure_name, \
              p.uuid AS patient_uuid, fe.uuid AS encounter_uuid, u.uuid AS requester_uuid, \
              u.fname AS requester_fname, u.lname AS requester_lname, \
              CASE WHEN po.activity = 0 THEN 'revoked' \
              WHEN po.order_status = 'complete' THEN 'completed' \
              WHEN po.order_status = 'canceled' THEN 'revoked' ELSE 'active' END AS status, \
              CASE po.procedure_order_type WHEN 'imaging' THEN '363679005' \
              WHEN 'procedure' THEN '387713003' WHEN 'intervention' THEN '387713003' \
              ELSE '108252007' END AS category",
    from: "procedure_order po JOIN patient_data p ON p.pid = po.patient_id \
           LEFT JOIN procedure_order_code poc ON poc.procedure_order_id = po.procedure_order_id \
           AND poc.procedure_order_seq = (SELECT MIN(c.procedure_order_seq) \
           FROM procedure_order_code c WHERE c.procedure_order_id = po.procedure_order_id) \
           LEFT JOIN form_encounter fe ON fe.pid = po.patient_id AND fe.encounter = po.encounter_id \
           LEFT JOIN users u ON u.id = po.provider_id AND u.npi <> ''",
    id: "po.uuid",
    key: "po.procedure_order_id",
    last_updated: "COALESCE(po.date_transmitted, po.date_ordered)",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "ServiceRequest.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "category",
            "ServiceRequest.category",
            Target::Token(&[TokenColumn::new(
                hearth_fhir::tables::ORDER_CATEGORY,
                Some(SNOMED),
            )]),
        ),
        Param::new(
            "code",
            "ServiceRequest.code",
            Target::Token(&[TokenColumn::new("poc.procedure_code", Some(LOINC))]),
        ),
        Param::new(
            "authored",
            "ServiceRequest.authoredOn",
            Target::DateTime("po.date_ordered"),
        ),
        Param::new(
            "status",
            "ServiceRequest.status",
            Target::Token(&[TokenColumn::new(
                ORDER_STATUS,
                Some("http://hl7.org/fhir/request-status"),
            )]),
        ),
        Param::new(
            "intent",
            "ServiceRequest.intent",
            Target::Token(&[TokenColumn::new(
                "'order'",
                Some("http://hl7.org/fhir/request-intent"),
            )]),
        ),
    ],
};

/// OpenEMR's report status as a DiagnosticReport status.
const REPORT_STATUS: &str = "CASE pr.report_status WHEN 'final' THEN 'final' \
    WHEN 'prelim' THEN 'preliminary' WHEN 'correct' THEN 'corrected' \
    WHEN 'error' THEN 'entered-in-error' WHEN 'cancel' THEN 'cancelled' \
    WHEN 'review' THEN 'final' ELSE 'unknown' END";

const DIAGNOSTIC_REPORT: TypeDef = TypeDef {
    resource_type: "DiagnosticReport",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab|7.0.0",
    ],
    columns: "pr.procedure_report_id, pr.date_collected, pr.date_report, pr.report_notes, \
              po.date_collected AS order_collected, CAST(po.uuid AS TEXT) AS order_uuid, \
              po.procedure_order_id, poc.procedure_code, poc.procedure_name, \
              p.uuid AS patient_uuid, fe.uuid AS encounter_uuid, u.uuid AS performer_uuid, \
              u.fname AS performer_fname, u.lname AS performer_lname, \
              CASE pr.report_status WHEN 'final' THEN 'final' \
              WHEN 'prelim' THEN 'preliminary' WHEN 'correct' THEN 'corrected' \
              WHEN 'error' THEN 'entered-in-error' WHEN 'cancel' THEN 'cancelled' \
              WHEN 'review' THEN 'final' ELSE 'unknown' END AS status",
    from: "procedure_report pr \
           JOIN procedure_order po ON po.procedure_order_id = pr.procedure_order_id \
           JOIN patient_data p ON p.pid = po.patient_id \
           LEFT JOIN procedure_order_code poc ON poc.procedure_order_id = pr.procedure_order_id \
           AND poc.procedure_order_seq = pr.procedure_order_seq \
           LEFT JOIN form_encounter fe ON fe.pid = po.patient_id AND fe.encounter = po.encounter_id \
           LEFT JOIN users u ON u.id = po.provider_id AND u.npi <> ''",
    id: "pr.uuid",
    key: "pr.procedure_report_id",
    last_updated: "COALESCE(pr.date_report, pr.date_collected, po.date_ordered)",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "DiagnosticReport.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "code",
            "DiagnosticReport.code",
            Target::Token(&[TokenColumn::new("poc.procedure_code", Some(LOINC))]),
        ),
        Param::new(
            "category",
            "DiagnosticReport.category",
            Target::Token(&[TokenColumn::new("'LAB'", Some(V2_0074))]),
        ),
        Param::new(
            "date",
            "DiagnosticReport.effective",
            Target::DateTime("COALESCE(pr.date_collected, po.date_collected)"),
        ),
        Param::new(
            "status",
            "DiagnosticReport.status",
            Target::Token(&[TokenColumn::new(
                REPORT_STATUS,
                Some("http://hl7.org/fhir/diagnostic-report-status"),
            )]),
        ),
        Param::new(
            "based-on",
            "DiagnosticReport.basedOn",
            Target::Reference {
                column: "po.uuid",
                target: "ServiceRequest",
            },
        ),
    ],
};

const SPECIMEN_STATUS: &str = "CASE WHEN ps.deleted = 0 THEN 'available' ELSE 'unavailable' END";

const SPECIMEN: TypeDef = TypeDef {
    resource_type: "Specimen",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-specimen",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-specimen|7.0.0",
    ],
    columns: "ps.*, CAST(po.uuid AS TEXT) AS order_uuid, p.uuid AS patient_uuid, \
              CASE WHEN ps.deleted = 0 THEN 'available' ELSE 'unavailable' END AS status",
    from: "procedure_specimen ps \
           JOIN procedure_order po ON po.procedure_order_id = ps.procedure_order_id \
           JOIN patient_data p ON p.pid = po.patient_id",
    id: "ps.uuid",
    key: "ps.procedure_specimen_id",
    last_updated: "COALESCE(ps.updated_at, ps.created_at, ps.collected_date)",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "Specimen.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "identifier",
            "Specimen.identifier",
            Target::Token(&[TokenColumn::new("ps.specimen_identifier", None)]),
        ),
        Param::new(
            "accession",
            "Specimen.accessionIdentifier",
            Target::Token(&[TokenColumn::new("ps.accession_identifier", None)]),
        ),
        Param::new(
            "type",
            "Specimen.type",
            Target::Token(&[TokenColumn::new("ps.specimen_type_code", Some(SNOMED))]),
        ),
        Param::new(
            "collected",
            "Specimen.collection.collected",
            Target::DateTime("COALESCE(ps.collected_date, ps.collection_date_low)"),
        ),
        Param::new(
            "status",
            "Specimen.status",
            Target::Token(&[TokenColumn::new(
                SPECIMEN_STATUS,
                Some("http://hl7.org/fhir/specimen-status"),
            )]),
        ),
    ],
};

/// Whether `code` has LOINC's form: digits, a dash, one check digit.
pub fn is_loinc(code: &str) -> bool {
    let Some((digits, check)) = code.trim().split_once('-') else {
        return false;
    };
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && check.len() == 1
        && check.bytes().all(|b| b.is_ascii_digit())
}

/// An ordered test as a concept: LOINC-coded when the code is LOINC's, else the lab's
/// own code stays out and the test's name is the text.
fn test_concept(code: Option<&str>, name: Option<&str>) -> Json {
    match code.map(str::trim).filter(|c| is_loinc(c)) {
        Some(code) => concept(coding(LOINC, code, name), name),
        None => {
            let mut out = Fields::new();
            out.text("text", name.or(code).or(Some("Unnamed order")));
            out.end()
        }
    }
}

fn name(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn note(text: Option<&str>) -> Option<Json> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    let mut out = Fields::new();
    out.set("text", text);
    Some(out.end())
}

/// A `procedure_order` row as a US Core ServiceRequest.
fn map_order(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("status", row.text("status").unwrap_or("active"))
        .set("intent", "order");
    let category = row.text("category").unwrap_or("108252007");
    let display = match category {
        "363679005" => "Imaging",
        "387713003" => "Surgical procedure",
        _ => "Laboratory procedure",
    };
    out.list(
        "category",
        vec![concept(coding(SNOMED, category, Some(display)), None)],
    );
    let priority = match row.text("order_priority").unwrap_or("").trim() {
        "high" | "urgent" => Some("urgent"),
        "stat" => Some("stat"),
        "asap" => Some("asap"),
        "normal" | "routine" => Some("routine"),
        _ => None,
    };
    out.text("priority", priority);
    out.set(
        "code",
        test_concept(row.text("procedure_code"), row.text("procedure_name")),
    );
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    let instant = |column: &str| row.text(column).and_then(hearth_fhir::date::instant);
    out.text("occurrenceDateTime", instant("date_collected").as_deref())
        .text("authoredOn", instant("date_ordered").as_deref());
    if let Some(uuid) = row.text("requester_uuid") {
        let who = name(row.text("requester_fname"), row.text("requester_lname"));
        out.set(
            "requester",
            reference(
                "Practitioner",
                uuid,
                (!who.is_empty()).then_some(who.as_str()),
            ),
        );
    }
    let reasons = codes::codings(row.text("order_diagnosis"), None);
    if !reasons.is_empty() {
        let mut reason = Fields::new();
        reason.list("coding", reasons);
        out.list("reasonCode", vec![reason.end()]);
    }
    out.list("note", note(row.text("clinical_hx")).into_iter().collect());
    out.text("patientInstruction", row.text("patient_instructions"));
}

/// A `procedure_report` row as a US Core laboratory DiagnosticReport, its results read
/// with the report's id.
fn map_report(row: &Row<'_>, _: &Request, out: &mut Fields) {
    if let Some(order) = row.text("order_uuid") {
        out.list("basedOn", vec![reference("ServiceRequest", order, None)]);
    }
    out.set("status", row.text("status").unwrap_or("unknown"));
    out.list(
        "category",
        vec![concept(coding(V2_0074, "LAB", Some("Laboratory")), None)],
    );
    out.set(
        "code",
        test_concept(row.text("procedure_code"), row.text("procedure_name")),
    );
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    let instant = |column: &str| row.text(column).and_then(hearth_fhir::date::instant);
    out.text(
        "effectiveDateTime",
        instant("date_collected")
            .or_else(|| instant("order_collected"))
            .as_deref(),
    )
    .text("issued", instant("date_report").as_deref());
    if let Some(uuid) = row.text("performer_uuid") {
        let who = name(row.text("performer_fname"), row.text("performer_lname"));
        out.list(
            "performer",
            vec![reference(
                "Practitioner",
                uuid,
                (!who.is_empty()).then_some(who.as_str()),
            )],
        );
    }
    let (specimens, results) = match row.int("procedure_report_id") {
        Some(_) => linked(row),
        None => (Vec::new(), Vec::new()),
    };
    out.list("specimen", specimens);
    out.list("result", results);
    out.text("conclusion", row.text("report_notes"));
}

/// The specimens of the report's order and the report's results (the reportable ones,
/// as the Observation type serves them), as references; read for the page's reports at
/// once ([`hearth_fhir::linked`]).
fn linked(row: &Row<'_>) -> (Vec<Json>, Vec<Json>) {
    static SPECIMENS: Linked = Linked::new(
        "SELECT procedure_order_id AS fhir_parent, CAST(uuid AS TEXT) AS id \
         FROM procedure_specimen WHERE procedure_order_id IN ({keys}) \
         ORDER BY procedure_specimen_id",
        "procedure_order_id",
    );
    static RESULTS: Linked = Linked::new(
        "SELECT procedure_report_id AS fhir_parent, CAST(uuid AS TEXT) AS id \
         FROM procedure_result WHERE procedure_report_id IN ({keys}) \
         AND result NOT IN ('DNR', 'TNP') ORDER BY procedure_result_id",
        "procedure_report_id",
    );
    let mut specimens = Vec::new();
    SPECIMENS.each(row, |r| {
        if let Some(id) = r.text("id") {
            specimens.push(reference("Specimen", id, None));
        }
    });
    let mut results = Vec::new();
    RESULTS.each(row, |r| {
        if let Some(id) = r.text("id") {
            results.push(reference("Observation", id, None));
        }
    });
    (specimens, results)
}

/// A coded field of a specimen: the SNOMED CT code and its text.
fn snomed(code: Option<&str>, text: Option<&str>) -> Option<Json> {
    let code = code.map(str::trim).filter(|c| !c.is_empty());
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    match (code, text) {
        (Some(code), text) => Some(concept(coding(SNOMED, code, text), text)),
        (None, Some(text)) => {
            let mut out = Fields::new();
            out.set("text", text);
            Some(out.end())
        }
        (None, None) => None,
    }
}

/// A `procedure_specimen` row as a US Core Specimen.
fn map_specimen(row: &Row<'_>, _: &Request, out: &mut Fields) {
    if let Some(id) = row
        .text("specimen_identifier")
        .filter(|i| !i.trim().is_empty())
    {
        let mut identifier = Fields::new();
        identifier.set("value", id.trim());
        out.list("identifier", vec![identifier.end()]);
    }
    if let Some(accession) = row
        .text("accession_identifier")
        .filter(|a| !a.trim().is_empty())
    {
        let mut identifier = Fields::new();
        identifier
            .set(
                "type",
                concept(coding(V2_0203, "ACSN", Some("Accession ID")), None),
            )
            .set("value", accession.trim());
        out.set("accessionIdentifier", identifier.end());
    }
    out.set("status", row.text("status").unwrap_or("available"));
    let kind =
        snomed(row.text("specimen_type_code"), row.text("specimen_type")).unwrap_or_else(|| {
            concept(
                coding(
                    "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "unknown",
                    Some("Unknown"),
                ),
                None,
            )
        });
    out.set("type", kind);
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    if let Some(order) = row.text("order_uuid") {
        out.list("request", vec![reference("ServiceRequest", order, None)]);
    }
    let instant = |column: &str| row.text(column).and_then(hearth_fhir::date::instant);
    let mut collection = Fields::new();
    match (
        instant("collected_date"),
        instant("collection_date_low"),
        instant("collection_date_high"),
    ) {
        (Some(at), _, _) => {
            collection.set("collectedDateTime", at.as_str());
        }
        (None, low, high) if low.is_some() || high.is_some() => {
            let mut period = Fields::new();
            period
                .text("start", low.as_deref())
                .text("end", high.as_deref());
            collection.set("collectedPeriod", period.end());
        }
        _ => {}
    }
    if let Some(method) = snomed(
        row.text("collection_method_code"),
        row.text("collection_method"),
    ) {
        collection.set("method", method);
    }
    if let Some(site) = snomed(
        row.text("specimen_location_code"),
        row.text("specimen_location"),
    ) {
        collection.set("bodySite", site);
    }
    out.object("collection", collection.end());
    if let Some(condition) = snomed(row.text("condition_code"), row.text("specimen_condition")) {
        out.list("condition", vec![condition]);
    }
    out.list("note", note(row.text("comments")).into_iter().collect());
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const ID: &str = "90cde167-0000-4000-8000-0000000000e1";

    #[test]
    fn an_order_is_a_laboratory_service_request_coded_in_loinc() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "status",
                "category",
                "procedure_code",
                "procedure_name",
                "order_priority",
                "date_ordered",
                "order_diagnosis",
                "patient_uuid",
            ],
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                1.into(),
                "active".into(),
                "108252007".into(),
                "57698-3".into(),
                "Lipid panel".into(),
                "high".into(),
                "2024-05-06 07:08:09".into(),
                "ICD10:E78.5".into(),
                "90cde167-0000-4000-8000-0000000000aa".into(),
            ]],
        );
        let mut host = MockHost::new().on_query("WHERE po.uuid = $1", rows);
        let response =
            host.call::<FhirOrder>(TestRequest::get(&format!("/fhir/ServiceRequest/{ID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let sr = response.body_json();
        assert_eq!(sr["intent"], "order");
        assert_eq!(sr["priority"], "urgent");
        assert_eq!(sr["code"]["coding"][0]["system"], LOINC);
        assert_eq!(sr["category"][0]["coding"][0]["code"], "108252007");
        assert_eq!(sr["reasonCode"][0]["coding"][0]["code"], "E78.5");
        assert!(is_loinc("2093-3") && !is_loinc("CBC") && !is_loinc("12-34"));
    }
}
