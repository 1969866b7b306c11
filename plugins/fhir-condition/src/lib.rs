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

use hearth_fhir::write::{self, Problems};
use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, codes, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;
use serde_json::{Map, Value as JsonValue};

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
    const WRITES: &'static [&'static str] = &["lists"];
    // Search and read serve the union of problems and encounter diagnoses; writes serve
    // the problem-list items (`PROBLEM`); vread and history serve both (`PROBLEM`, and
    // `DIAGNOSIS` for an id with the diagnosis digit), each with its table's versions.
    const ROUTES: &'static [Route] = &[
        Route::get("/fhir/Condition", "Condition.s", |r| {
            hearth_fhir::search_branches(r, &CONDITION, &BRANCHES, map)
        })
        .acl("patients/med")
        .summary("Search conditions")
        .answers(Schema::Bundle(&CONDITION_SCHEMA)),
        Route::post("/fhir/Condition/_search", "Condition.s", |r| {
            hearth_fhir::search_branches(r, &CONDITION, &BRANCHES, map)
        })
        .acl("patients/med")
        .summary("Search conditions (form body)")
        .answers(Schema::Bundle(&CONDITION_SCHEMA)),
        Route::get("/fhir/Condition/:id", "Condition.r", |r| {
            hearth_fhir::read_branches(r, &CONDITION, &BRANCHES, r.param("id")?, map)
        })
        .acl("patients/med")
        .summary("Read a condition")
        .answers(CONDITION_SCHEMA),
        Route::post("/fhir/Condition", "Condition.c", create)
            .acl("patients/med:write")
            .summary("Create a condition (a problem-list item)")
            .accepts(CONDITION_SCHEMA)
            .answers(CONDITION_SCHEMA),
        Route::put("/fhir/Condition/:id", "Condition.u", update)
            .acl("patients/med:write")
            .summary("Update a condition (a problem-list item; If-Match: W/\"version\")")
            .accepts(CONDITION_SCHEMA)
            .answers(CONDITION_SCHEMA),
        Route::get("/fhir/Condition/:id/_history", "Condition.r", |r| {
            let id = r.param("id")?;
            hearth_fhir::history::history(r, versioned(id), id, map)
        })
        .acl("patients/med")
        .summary("The versions of a condition (a problem-list item or an encounter diagnosis), newest first")
        .answers(Schema::Json(
            r#"{"type":"object","description":"A Bundle of type history"}"#,
        )),
        Route::get("/fhir/Condition/:id/_history/:vid", "Condition.r", |r| {
            let id = r.param("id")?;
            hearth_fhir::history::vread(r, versioned(id), id, r.param("vid")?, map)
        })
        .acl("patients/med")
        .summary("Read a version of a condition (a problem-list item or an encounter diagnosis)")
        .answers(CONDITION_SCHEMA),
    ];

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

/// [`CONDITION`]'s derived table branch by branch: a search pushes its conditions into
/// each branch (see [`hearth_fhir::branches`]), and the category, a constant per branch,
/// leaves the branch it cannot match out of the SQL.
static BRANCHES: std::sync::LazyLock<hearth_fhir::branches::Branches> =
    std::sync::LazyLock::new(hearth_fhir::tables::condition_branches);

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

/// The problem-list items alone, straight from `lists`: the rows Condition writes, and
/// whose versions vread and history read (the history table standing in for `lists`).
const PROBLEM: TypeDef = TypeDef {
    resource_type: "Condition",
    profiles: CONDITION.profiles,
    columns: hearth_fhir::tables::PROBLEM_COLUMNS,
    from: "lists l JOIN patient_data p ON p.pid = l.pid",
    id: "CAST(l.uuid AS TEXT)",
    key: "l.id",
    last_updated: "COALESCE(l.modifydate, l.date)",
    patient: Some("p.uuid"),
    only: Some("l.type = 'medical_problem'"),
    params: &[
        Param::new(
            "patient",
            "Condition.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "category",
            "Condition.category",
            Target::Token(&[TokenColumn::new("'problem-list-item'", Some(CATEGORY))]),
        ),
    ],
};

/// The encounter diagnoses alone, from `issue_encounter` (a problem's link to an
/// encounter) and the problem it links: whose versions (those of the `issue_encounter`
/// row, migration 0462) vread and history read, the history table standing in for
/// `issue_encounter`. The problem's own fields read as they are now.
const DIAGNOSIS: TypeDef = TypeDef {
    resource_type: "Condition",
    profiles: CONDITION.profiles,
    columns: hearth_fhir::tables::DIAGNOSIS_COLUMNS,
    from: hearth_fhir::tables::DIAGNOSIS_FROM,
    id: hearth_fhir::tables::DIAGNOSIS_ID,
    key: "ie.id * 2 + 1",
    last_updated: "COALESCE(l.modifydate, l.date)",
    patient: Some("p.uuid"),
    only: Some("l.type = 'medical_problem'"),
    params: &[
        Param::new(
            "patient",
            "Condition.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "category",
            "Condition.category",
            Target::Token(&[TokenColumn::new("'encounter-diagnosis'", Some(CATEGORY))]),
        ),
    ],
};

/// The versioned rows an id names: an encounter diagnosis (version digit `e`) or a
/// problem-list item.
fn versioned(id: &str) -> &'static TypeDef {
    if id
        .as_bytes()
        .get(14)
        .is_some_and(|d| d.eq_ignore_ascii_case(&b'e'))
    {
        &DIAGNOSIS
    } else {
        &PROBLEM
    }
}

/// `POST /fhir/Condition`: a new problem-list item of the patient the resource names (a
/// `lists` row of type `medical_problem`, as `POST /api/patient/:puuid/medical_problem`
/// makes).
fn create(req: &Request) -> Result<Response> {
    write::writer(req, &CONDITION)?;
    let body = write::body(req, &CONDITION, None)?;
    let (pid, columns) = columns(&body, None)?;
    let uuid = write::insert_list_item(req, "medical_problem", pid, columns)?;
    write::answer(req, &PROBLEM, &uuid, 201, map)
}

/// `PUT /fhir/Condition/:id`: replaces what a problem-list item maps to (see
/// [`columns`]). An encounter diagnosis (a link of a problem to an encounter) is not
/// updated: a 404 names the problem to update instead.
fn update(req: &Request) -> Result<Response> {
    write::writer(req, &CONDITION)?;
    let id = req.param("id")?.to_ascii_lowercase();
    let body = write::body(req, &CONDITION, Some(&id))?;
    let current = if hearth_sdk::request::is_uuid(&id) {
        store::query_one(
            "SELECT pid, enddate FROM lists WHERE uuid = $1 AND type = 'medical_problem'",
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
                "Condition/{id} is not a problem-list item (an update cannot create a \
                 resource, and an encounter diagnosis is updated through its problem)"
            ),
        ));
    };
    let from = write::before_update(req, &PROBLEM, &id)?;
    let (_, columns) = columns(
        &body,
        Some((current.int("pid").unwrap_or(0), current.text("enddate"))),
    )?;
    write::update_list_item("medical_problem", &id, columns)?;
    write::after_update(req, &PROBLEM, &id, from)?;
    write::answer(req, &PROBLEM, &id, 200, map)
}

/// The patient's `pid` and the `lists` columns a problem-list Condition sets, with
/// OpenEMR's ConditionValidator rules as a 422 (a title of 2 to 255 characters). `current`
/// is the problem's patient and end date on update (the patient cannot change).
///
/// - `category`: absent or `problem-list-item` (Hearth writes problems; an encounter
///   diagnosis is a problem linked to an encounter, a health concern is not recorded);
/// - `subject` → `pid` (required); `code` → `title` (text, else first display) and
///   `diagnosis` (ICD-10, SNOMED CT and other known codings as OpenEMR's code list);
/// - `clinicalStatus` (`active`, `inactive`, `resolved`; FHIR's others are refused):
///   `active` clears `enddate`; the others set it from `abatementDateTime`, else keep it,
///   else now, with `outcome` 1 for `resolved`; an abatement with `active` is a 422;
/// - `verificationStatus` → `verification`; `onsetDateTime` → `begdate`; `note[0]` →
///   `comments`.
///
/// Every mapped column is set, an absent element clearing it.
fn columns(
    body: &Map<String, JsonValue>,
    current: Option<(i64, Option<&str>)>,
) -> Result<(i64, Vec<(&'static str, Value)>)> {
    let mut problems = Problems::new();
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let nullable = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_owned()));

    for (i, category) in write::items(body.get("category"), "Condition.category", &mut problems)
        .iter()
        .enumerate()
    {
        let codes: Vec<&str> = category
            .get("coding")
            .and_then(JsonValue::as_array)
            .map(|c| {
                c.iter()
                    .filter(|c| c.get("system").and_then(JsonValue::as_str) == Some(CATEGORY))
                    .filter_map(|c| c.get("code").and_then(JsonValue::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if codes.iter().any(|c| *c != "problem-list-item") {
            problems.add(
                &format!("Condition.category[{i}]"),
                "Hearth writes problem-list items only (an encounter diagnosis is a problem \
                 linked to an encounter; health concerns are not recorded)",
            );
        }
    }

    let patient = write::patient(
        body.get("subject"),
        "Condition.subject",
        true,
        &mut problems,
    )?;
    let pid = match (patient, current) {
        (Some((pid, _)), Some((own, _))) if pid != own => {
            problems.add(
                "Condition.subject",
                "a condition cannot move to another patient",
            );
            own
        }
        (Some((pid, _)), _) => pid,
        (None, _) => 0,
    };

    let (diagnosis, title) = write::code_list(body.get("code"), "Condition.code", &mut problems);
    match title.as_deref() {
        None => problems.add(
            "Condition.code",
            "a code with text or a display is required (OpenEMR's title)",
        ),
        Some(t) if !(2..=255).contains(&t.chars().count()) => {
            problems.add("Condition.code.text", "must be 2 to 255 characters")
        }
        Some(_) => {}
    }
    out.push(("title", Value::Text(title.unwrap_or_default())));
    out.push(("diagnosis", Value::Text(diagnosis)));

    let status = |key: &str, system: &str, problems: &mut Problems| -> Option<String> {
        write::items(
            body.get(key).and_then(|c| c.get("coding")),
            &format!("Condition.{key}.coding"),
            problems,
        )
        .iter()
        .filter(|c| c.get("system").and_then(JsonValue::as_str) == Some(system))
        .find_map(|c| c.get("code").and_then(JsonValue::as_str))
        .map(str::to_owned)
    };
    let abatement = write::datetime(
        body.get("abatementDateTime"),
        "Condition.abatementDateTime",
        &mut problems,
    );
    let now = hearth_sdk::time::now().datetime();
    match status("clinicalStatus", CLINICAL, &mut problems).as_deref() {
        None | Some("active") => {
            if abatement.is_some() {
                problems.add(
                    "Condition.abatementDateTime",
                    "an abated condition is inactive or resolved, not active",
                );
            }
            out.push(("enddate", Value::Null));
            out.push(("outcome", Value::Integer(0)));
        }
        Some(code @ ("inactive" | "resolved")) => {
            let end = abatement
                .clone()
                .or_else(|| current.and_then(|(_, end)| end).map(str::to_owned))
                .unwrap_or(now);
            out.push(("enddate", Value::Text(end)));
            out.push(("outcome", Value::Integer(i64::from(code == "resolved"))));
        }
        Some(_) => problems.add(
            "Condition.clinicalStatus",
            "must be active, inactive or resolved (OpenEMR records no recurrence, relapse \
             or remission)",
        ),
    }
    match status("verificationStatus", VERIFICATION, &mut problems) {
        None => out.push(("verification", Value::Text(String::new()))),
        Some(code) if VERIFICATIONS.iter().any(|(c, _)| *c == code) => {
            out.push(("verification", Value::Text(code)))
        }
        Some(_) => problems.add(
            "Condition.verificationStatus",
            "is not a condition-ver-status code",
        ),
    }
    let onset = write::datetime(
        body.get("onsetDateTime"),
        "Condition.onsetDateTime",
        &mut problems,
    );
    out.push(("begdate", nullable(onset.as_deref())));
    let notes = write::items(body.get("note"), "Condition.note", &mut problems);
    let note = write::string(
        notes.first().and_then(|n| n.get("text")),
        "Condition.note[0].text",
        &mut problems,
    );
    out.push(("comments", nullable(note)));
    problems.finish()?;
    Ok((pid, out))
}

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
        let mut host = MockHost::new().on_query("c.cid AS fhir_id", rows);
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
