//! FHIR R4 `AllergyIntolerance` (US Core 3.1.1 and 7.0.0) over OpenEMR's allergies: the
//! `lists` rows of type `allergy` that `/api/patient/:puuid/allergy` reads and writes,
//! mapped as OpenEMR maps them (status from the end date and outcome, verification from
//! the `allergyintolerance-verification` list, the reaction from the `reaction` list).

use hearth_fhir::write::{self, Problems};
use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, codes, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;
use serde_json::{Map, Value as JsonValue};

/// The FHIR AllergyIntolerance resource.
pub struct FhirAllergy;

impl Resource for FhirAllergy {
    const NAME: &'static str = "fhir-allergy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR AllergyIntolerance (US Core) over OpenEMR allergies";
    const READS: &'static [&'static str] = &["lists", "patient_data", "list_options", "facility"];
    const WRITES: &'static [&'static str] = &["lists"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_write_routes!(
        ALLERGY, map, create = create, update = update, type = "AllergyIntolerance",
        acl = "patients/med", write_acl = "patients/med:write", nouns = "allergies",
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

/// `POST /fhir/AllergyIntolerance`: a new allergy of the patient the resource names (a
/// `lists` row of type `allergy`, as `POST /api/patient/:puuid/allergy` makes).
fn create(req: &Request) -> Result<Response> {
    write::writer(req, &ALLERGY)?;
    let body = write::body(req, &ALLERGY, None)?;
    let (pid, columns) = columns(&body, None)?;
    let uuid = write::insert_list_item(req, "allergy", pid, columns)?;
    write::answer(req, &ALLERGY, &uuid, 201, map)
}

/// `PUT /fhir/AllergyIntolerance/:id`: replaces what the resource maps to (see
/// [`columns`]); the allergy stays its patient's.
fn update(req: &Request) -> Result<Response> {
    write::writer(req, &ALLERGY)?;
    let id = req.param("id")?.to_ascii_lowercase();
    let body = write::body(req, &ALLERGY, Some(&id))?;
    let current = if hearth_sdk::request::is_uuid(&id) {
        store::query_one(
            "SELECT pid, enddate FROM lists WHERE uuid = $1 AND type = 'allergy'",
            params![id.as_str()],
        )?
    } else {
        None
    };
    let Some(current) = current else {
        return Err(hearth_fhir::error(
            404,
            "not-found",
            &format!(
                "AllergyIntolerance/{id} is not known (an update cannot create a resource: use POST)"
            ),
        ));
    };
    let from = write::before_update(req, &ALLERGY, &id)?;
    let (_, columns) = columns(
        &body,
        Some((current.int("pid").unwrap_or(0), current.text("enddate"))),
    )?;
    write::update_list_item("allergy", &id, columns)?;
    write::after_update(req, &ALLERGY, &id, from)?;
    write::answer(req, &ALLERGY, &id, 200, map)
}

/// The patient's `pid` and the `lists` columns an AllergyIntolerance sets, with OpenEMR's
/// AllergyIntoleranceValidator rules as a 422 (a title of 2 to 255 characters: the
/// code's text or first display; dates that are dates). `current` is the allergy's
/// patient and end date on update: the patient cannot change.
///
/// - `code` → `title` and `diagnosis` (RxNorm and SNOMED CT codings as OpenEMR's code
///   list); `patient` → `pid` (required);
/// - `clinicalStatus`: `active` clears `enddate`; `inactive` and `resolved` set it (kept
///   when already set, else today) with `outcome` 0 or 1;
/// - `verificationStatus` → `verification`; `onsetDateTime` → `begdate`;
/// - `reaction[0].manifestation[0]` → `reaction`, an option of OpenEMR's `reaction` list
///   found by SNOMED CT code or title (another is a 422); `reaction[0].severity` →
///   `severity_al`; `note[0].text` → `comments`.
///
/// Every mapped column is set, an absent element clearing it.
fn columns(
    body: &Map<String, JsonValue>,
    current: Option<(i64, Option<&str>)>,
) -> Result<(i64, Vec<(&'static str, Value)>)> {
    let mut problems = Problems::new();
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let nullable = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_owned()));

    let patient = write::patient(
        body.get("patient"),
        "AllergyIntolerance.patient",
        true,
        &mut problems,
    )?;
    let pid = match (patient, current) {
        (Some((pid, _)), Some((own, _))) if pid != own => {
            problems.add(
                "AllergyIntolerance.patient",
                "an allergy cannot move to another patient",
            );
            own
        }
        (Some((pid, _)), _) => pid,
        (None, _) => 0,
    };

    let (diagnosis, title) =
        write::code_list(body.get("code"), "AllergyIntolerance.code", &mut problems);
    match title.as_deref() {
        None => problems.add(
            "AllergyIntolerance.code",
            "a code with text or a display is required (OpenEMR's title)",
        ),
        Some(t) if !(2..=255).contains(&t.chars().count()) => problems.add(
            "AllergyIntolerance.code.text",
            "must be 2 to 255 characters",
        ),
        Some(_) => {}
    }
    out.push(("title", nullable(title.as_deref())));
    out.push(("diagnosis", Value::Text(diagnosis)));

    let status = |key: &str, system: &str, problems: &mut Problems| -> Option<String> {
        let at = format!("AllergyIntolerance.{key}");
        let codings = write::items(
            body.get(key).and_then(|c| c.get("coding")),
            &format!("{at}.coding"),
            problems,
        );
        codings
            .iter()
            .filter(|c| c.get("system").and_then(JsonValue::as_str) == Some(system))
            .find_map(|c| c.get("code").and_then(JsonValue::as_str))
            .map(str::to_owned)
    };
    let today = hearth_sdk::time::now().datetime();
    match status("clinicalStatus", CLINICAL, &mut problems).as_deref() {
        None | Some("active") => {
            out.push(("enddate", Value::Null));
            out.push(("outcome", Value::Integer(0)));
        }
        Some(code @ ("inactive" | "resolved")) => {
            let end = current.and_then(|(_, end)| end).unwrap_or(today.as_str());
            out.push(("enddate", Value::Text(end.to_owned())));
            out.push(("outcome", Value::Integer(i64::from(code == "resolved"))));
        }
        Some(_) => problems.add(
            "AllergyIntolerance.clinicalStatus",
            "must be active, inactive or resolved",
        ),
    }
    match status("verificationStatus", VERIFICATION, &mut problems) {
        None => out.push(("verification", Value::Text(String::new()))),
        Some(code) if VERIFICATIONS.iter().any(|(c, _)| *c == code) => {
            out.push(("verification", Value::Text(code)))
        }
        Some(_) => problems.add(
            "AllergyIntolerance.verificationStatus",
            "must be unconfirmed, confirmed, refuted or entered-in-error",
        ),
    }
    let onset = write::datetime(
        body.get("onsetDateTime"),
        "AllergyIntolerance.onsetDateTime",
        &mut problems,
    );
    out.push(("begdate", nullable(onset.as_deref())));

    let reactions = write::items(
        body.get("reaction"),
        "AllergyIntolerance.reaction",
        &mut problems,
    );
    let reaction = reactions.first();
    let manifestation = write::items(
        reaction.and_then(|r| r.get("manifestation")),
        "AllergyIntolerance.reaction[0].manifestation",
        &mut problems,
    )
    .first();
    let (codes, text) = write::code_list(
        manifestation,
        "AllergyIntolerance.reaction[0].manifestation[0]",
        &mut problems,
    );
    let option = if manifestation.is_some() {
        let snomed = codes
            .split(';')
            .find_map(|c| c.strip_prefix("SNOMED-CT:"))
            .unwrap_or_default()
            .to_owned();
        let found = store::query_one(
            "SELECT option_id FROM list_options WHERE list_id = 'reaction'              AND ((codes <> '' AND codes = $1) OR LOWER(title) = LOWER($2)) ORDER BY seq LIMIT 1",
            params![
                format!("SNOMED-CT:{snomed}"),
                text.clone().unwrap_or_default()
            ],
        )?
        .and_then(|r| r.text("option_id").map(str::to_owned));
        if found.is_none() {
            problems.add(
                "AllergyIntolerance.reaction[0].manifestation[0]",
                "is not a reaction of OpenEMR's reaction list (by SNOMED CT code or title)",
            );
        }
        found
    } else {
        None
    };
    out.push(("reaction", Value::Text(option.unwrap_or_default())));
    match write::string(
        reaction.and_then(|r| r.get("severity")),
        "AllergyIntolerance.reaction[0].severity",
        &mut problems,
    ) {
        None => out.push(("severity_al", Value::Text(String::new()))),
        Some(s @ ("mild" | "moderate" | "severe")) => {
            out.push(("severity_al", Value::Text(s.to_owned())))
        }
        Some(_) => problems.add(
            "AllergyIntolerance.reaction[0].severity",
            "must be mild, moderate or severe",
        ),
    }
    let notes = write::items(body.get("note"), "AllergyIntolerance.note", &mut problems);
    let note = write::string(
        notes.first().and_then(|n| n.get("text")),
        "AllergyIntolerance.note[0].text",
        &mut problems,
    );
    out.push(("comments", nullable(note)));
    problems.finish()?;
    Ok((pid, out))
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
