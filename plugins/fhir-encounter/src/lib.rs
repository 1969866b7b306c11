//! FHIR R4 `Encounter` (US Core 3.1.1 and 7.0.0) over OpenEMR's `form_encounter`, the
//! rows `/api/patient/:puuid/encounter` reads and writes: read and search, in the
//! patient's compartment. The encounter's provider is its participant (a Practitioner),
//! its facility both the service provider (an Organization) and the location.

use hearth_fhir::write::{self, Problems};
use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;
use serde_json::{Map, Value as JsonValue};

/// The FHIR Encounter resource.
pub struct FhirEncounter;

impl Resource for FhirEncounter {
    const NAME: &'static str = "fhir-encounter";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Encounter (US Core) over OpenEMR form_encounter";
    const READS: &'static [&'static str] = &[
        "form_encounter",
        "patient_data",
        "users",
        "facility",
        "list_options",
        "folded_text",
    ];
    const WRITES: &'static [&'static str] = &["form_encounter", "forms", "sequences"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_write_routes!(
        ENCOUNTER, map, create = create, update = update, type = "Encounter",
        acl = "encounters/auth_a", write_acl = "encounters/auth_a:write", nouns = "encounters",
        one = "an encounter", schema = ENCOUNTER_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "Encounter",
        "Encounters (FHIR)",
        "visits (FHIR Encounter)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![ENCOUNTER.declaration()]
    }
}

/// An Encounter as the routes answer it.
const ENCOUNTER_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Encounter"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("identifier", Schema::Array(&IDENTIFIER)),
        Prop::new("status", Schema::String),
        Prop::new("class", CODING),
        Prop::new("type", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("subject", REFERENCE),
        Prop::new(
            "participant",
            Schema::Array(&Schema::Object(&[
                Prop::new("type", Schema::Array(&CODEABLE_CONCEPT)),
                Prop::new("period", PERIOD),
                Prop::new("individual", REFERENCE),
            ])),
        ),
        Prop::new("period", PERIOD),
        Prop::new("reasonCode", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new(
            "hospitalization",
            Schema::Object(&[Prop::new("dischargeDisposition", CODEABLE_CONCEPT)]),
        ),
        Prop::new(
            "location",
            Schema::Array(&Schema::Object(&[Prop::new("location", REFERENCE)])),
        ),
        Prop::new("serviceProvider", REFERENCE),
    ])
};

hearth_sdk::export!(FhirEncounter);

const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const SNOMED: &str = "http://snomed.info/sct";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const DATA_ABSENT: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
const PRACTITIONER: Target = Target::Reference {
    column: "u.uuid",
    target: "Practitioner",
};

const ENCOUNTER: TypeDef = TypeDef {
    resource_type: "Encounter",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter|7.0.0",
    ],
    columns: "fe.encounter, fe.date, fe.date_end, fe.reason, fe.class_code, \
              fe.encounter_type_code, fe.encounter_type_description, fe.discharge_disposition, \
              cls.title AS class_title, p.uuid AS patient_uuid, p.fname AS patient_fname, \
              p.lname AS patient_lname, u.uuid AS provider_uuid, u.fname AS provider_fname, \
              u.lname AS provider_lname, f.uuid AS facility_uuid, f.name AS facility_name",
    // Only a provider with an NPI is a Practitioner a reference can name.
    from: "form_encounter fe JOIN patient_data p ON p.pid = fe.pid \
           LEFT JOIN users u ON u.id = fe.provider_id AND u.npi <> '' \
           LEFT JOIN facility f ON f.id = fe.facility_id \
           LEFT JOIN list_options cls ON cls.list_id = '_ActEncounterCode' \
           AND cls.option_id = fe.class_code",
    id: "fe.uuid",
    key: "fe.id",
    last_updated: "fe.last_update",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "Encounter.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "subject",
            "Encounter.subject",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "date",
            "Encounter.period",
            Target::Period {
                start: "fe.date",
                end: "fe.date_end",
            },
        ),
        Param::new(
            "class",
            "Encounter.class",
            Target::Token(&[TokenColumn::new("fe.class_code", Some(ACT_CODE)).text("cls.title")]),
        ),
        Param::new(
            "type",
            "Encounter.type",
            Target::Token(&[TokenColumn::new("fe.encounter_type_code", Some(SNOMED))
                .text("fe.encounter_type_description")]),
        ),
        Param::new(
            "practitioner",
            "Encounter.participant.individual.where(resolve() is Practitioner)",
            PRACTITIONER,
        ),
        Param::new(
            "participant",
            "Encounter.participant.individual",
            PRACTITIONER,
        ),
        Param::new(
            "service-provider",
            "Encounter.serviceProvider",
            Target::Reference {
                column: "f.uuid",
                target: "Organization",
            },
        ),
        Param::new(
            "location",
            "Encounter.location.location",
            Target::Reference {
                column: "f.uuid",
                target: "Location",
            },
        ),
    ],
};

/// Given name and family name, blanks left out.
fn display(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `CodeableConcept` of text alone.
fn text_concept(text: &str) -> Json {
    let mut out = Fields::new();
    out.text("text", Some(text));
    out.end()
}

/// `POST /fhir/Encounter`: a new encounter of the patient the resource names, numbered
/// from the site's sequence and registered in `forms`, as `POST
/// /api/patient/:puuid/encounter` makes one.
fn create(req: &Request) -> Result<Response> {
    write::writer(req, &ENCOUNTER)?;
    let body = write::body(req, &ENCOUNTER, None)?;
    let (pid, columns) = columns(&body, None)?;
    let number = store::query_one(
        "UPDATE sequences SET value = value + 1 WHERE name = 'encounter' RETURNING value",
        params![],
    )?
    .and_then(|row| row.int("value"))
    .ok_or_else(|| ApiError::Internal("the encounter sequence is missing".into()))?;
    let uuid = hearth_sdk::new_uuid();
    let now = hearth_sdk::time::now().datetime();
    let mut insert = Insert::into("form_encounter");
    insert
        .set("uuid", uuid.as_str())
        .set("pid", pid)
        .set("encounter", number)
        .set("last_update", now.as_str());
    let mut date = Value::Text(now.clone());
    for (column, value) in columns {
        if column == "date" {
            date = value.clone();
        }
        insert.set(column, value);
    }
    let id = insert.insert_id()?;
    Insert::into("forms")
        .set("uuid", hearth_sdk::new_uuid().as_str())
        .set("date", date)
        .set("encounter", number)
        .set("form_name", "New Patient Encounter")
        .set("form_id", id)
        .set("pid", pid)
        .set("user", req.caller().username.as_str())
        .set("groupname", "Default")
        .set("authorized", 1)
        .set("deleted", 0)
        .set("formdir", "newpatient")
        .run()?;
    write::answer(req, &ENCOUNTER, &uuid, 201, map)
}

/// `PUT /fhir/Encounter/:id`: replaces what the resource maps to (see [`columns`]); the
/// encounter keeps its number and patient.
fn update(req: &Request) -> Result<Response> {
    write::writer(req, &ENCOUNTER)?;
    let id = req.param("id")?.to_ascii_lowercase();
    let body = write::body(req, &ENCOUNTER, Some(&id))?;
    let from = write::before_update(req, &ENCOUNTER, &id)?;
    let pid = store::query_one(
        "SELECT pid FROM form_encounter WHERE uuid = $1",
        params![id.as_str()],
    )?
    .and_then(|row| row.int("pid"))
    .unwrap_or(0);
    let (_, columns) = columns(&body, Some(pid))?;
    let mut update = Update::table("form_encounter");
    for (column, value) in columns {
        update.set(column, value);
    }
    update
        .set("last_update", hearth_sdk::time::now().datetime())
        .filter("uuid", id.as_str());
    update.run()?;
    write::after_update(req, &ENCOUNTER, &id, from)?;
    write::answer(req, &ENCOUNTER, &id, 200, map)
}

/// The uuid a reference to `target` names (`{"reference": "Practitioner/<uuid>"}`);
/// `None` when absent, a rule failure when it names another type or no uuid.
fn referenced(
    value: Option<&JsonValue>,
    target: &str,
    expression: &str,
    problems: &mut Problems,
) -> Option<String> {
    let reference = write::string(
        value.and_then(|v| v.get("reference")),
        &format!("{expression}.reference"),
        problems,
    )?;
    let id = reference
        .rsplit_once(&format!("{target}/"))
        .map(|(_, id)| id.to_ascii_lowercase())
        .filter(|id| hearth_sdk::request::is_uuid(id));
    if id.is_none() {
        problems.add(
            expression,
            &format!("must reference a {target} ({target}/<id>)"),
        );
    }
    id
}

/// The patient's `pid` and the `form_encounter` columns an Encounter sets, each rule
/// failure a 422 issue. `pid` is the encounter's patient on update (it cannot change).
///
/// - `subject` → `pid` (required, a Patient of the site);
/// - `status`: OpenEMR records encounters that took place, read as `finished`; another
///   status is refused rather than lost;
/// - `class` (required) → `class_code`, a code of OpenEMR's `_ActEncounterCode` list;
/// - `type[0]`'s SNOMED CT coding → `encounter_type_code` and its display (else the
///   text) → `encounter_type_description`;
/// - `period.start` → `date` (now when absent), `period.end` → `date_end`;
/// - `reasonCode[0]` (its text, else the first display) → `reason`;
/// - `participant[0].individual` → `provider_id` (a Practitioner of the site);
/// - `serviceProvider` (an Organization), else `location[0].location` (a Location) →
///   `facility_id` and the facility's name in `facility`;
/// - `hospitalization.dischargeDisposition` (text, else display) → `discharge_disposition`.
///
/// Every mapped column is set, an absent element clearing it.
fn columns(
    body: &Map<String, JsonValue>,
    pid: Option<i64>,
) -> Result<(i64, Vec<(&'static str, Value)>)> {
    let mut problems = Problems::new();
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let text = |v: Option<&str>| Value::Text(v.unwrap_or_default().to_owned());

    let patient = write::patient(
        body.get("subject"),
        "Encounter.subject",
        true,
        &mut problems,
    )?;
    let pid = match (patient, pid) {
        (Some((given, _)), Some(own)) if given != own => {
            problems.add(
                "Encounter.subject",
                "an encounter cannot move to another patient",
            );
            own
        }
        (Some((given, _)), _) => given,
        (None, own) => own.unwrap_or(0),
    };
    match write::string(body.get("status"), "Encounter.status", &mut problems) {
        None | Some("finished") => {}
        Some(other) => problems.add(
            "Encounter.status",
            &format!(
                "OpenEMR records encounters that took place (finished); {other} cannot be kept"
            ),
        ),
    }

    let class = body.get("class");
    let class_code = write::string(
        class.and_then(|c| c.get("code")),
        "Encounter.class.code",
        &mut problems,
    );
    match class_code {
        None => problems.add("Encounter.class", "a class (v3 ActCode) is required"),
        Some(code) => {
            let known = store::query_one(
                "SELECT 1 AS found FROM list_options WHERE list_id = '_ActEncounterCode' \
                 AND option_id = $1",
                params![code],
            )?
            .is_some();
            if known {
                out.push(("class_code", text(Some(code))));
            } else {
                problems.add(
                    "Encounter.class.code",
                    &format!("{code} is not a code of OpenEMR's _ActEncounterCode list"),
                );
            }
        }
    }

    let types = write::items(body.get("type"), "Encounter.type", &mut problems);
    let kind = types.first();
    let mut type_code = None;
    let mut type_display = None;
    for (i, coding) in write::items(
        kind.and_then(|k| k.get("coding")),
        "Encounter.type[0].coding",
        &mut problems,
    )
    .iter()
    .enumerate()
    {
        let at = format!("Encounter.type[0].coding[{i}]");
        if coding.get("system").and_then(JsonValue::as_str) == Some(SNOMED) && type_code.is_none() {
            type_code = write::string(coding.get("code"), &format!("{at}.code"), &mut problems);
            type_display = write::string(
                coding.get("display"),
                &format!("{at}.display"),
                &mut problems,
            );
        }
    }
    let type_text = write::string(
        kind.and_then(|k| k.get("text")),
        "Encounter.type[0].text",
        &mut problems,
    );
    out.push(("encounter_type_code", text(type_code)));
    out.push((
        "encounter_type_description",
        text(type_display.or(type_text).filter(|_| type_code.is_some())),
    ));

    let period = body.get("period");
    let start = write::datetime(
        period.and_then(|p| p.get("start")),
        "Encounter.period.start",
        &mut problems,
    );
    let end = write::datetime(
        period.and_then(|p| p.get("end")),
        "Encounter.period.end",
        &mut problems,
    );
    if let (Some(start), Some(end)) = (&start, &end)
        && end < start
    {
        problems.add("Encounter.period.end", "is before the start");
    }
    out.push((
        "date",
        Value::Text(start.unwrap_or_else(|| hearth_sdk::time::now().datetime())),
    ));
    out.push(("date_end", end.map_or(Value::Null, Value::Text)));

    let reasons = write::items(
        body.get("reasonCode"),
        "Encounter.reasonCode",
        &mut problems,
    );
    let (_, reason) = write::code_list(reasons.first(), "Encounter.reasonCode[0]", &mut problems);
    out.push(("reason", text(reason.as_deref())));

    let participants = write::items(
        body.get("participant"),
        "Encounter.participant",
        &mut problems,
    );
    let provider = referenced(
        participants.first().and_then(|p| p.get("individual")),
        "Practitioner",
        "Encounter.participant[0].individual",
        &mut problems,
    );
    let provider_id = match provider {
        None => 0,
        Some(uuid) => {
            let row = store::query_one(
                "SELECT id FROM users WHERE uuid = $1 AND npi <> ''",
                params![uuid.as_str()],
            )?;
            match row.and_then(|r| r.int("id")) {
                Some(id) => id,
                None => {
                    problems.add(
                        "Encounter.participant[0].individual",
                        &format!("Practitioner/{uuid} is not known"),
                    );
                    0
                }
            }
        }
    };
    out.push(("provider_id", Value::Integer(provider_id)));

    let organization = referenced(
        body.get("serviceProvider"),
        "Organization",
        "Encounter.serviceProvider",
        &mut problems,
    );
    let locations = write::items(body.get("location"), "Encounter.location", &mut problems);
    let location = referenced(
        locations.first().and_then(|l| l.get("location")),
        "Location",
        "Encounter.location[0].location",
        &mut problems,
    );
    if let (Some(o), Some(l)) = (&organization, &location)
        && o != l
    {
        problems.add(
            "Encounter.location[0].location",
            "OpenEMR keeps one facility per encounter: the location must be the service \
             provider's facility",
        );
    }
    let (facility_id, facility_name) = match organization.or(location) {
        None => (0, String::new()),
        Some(uuid) => {
            let row = store::query_one(
                "SELECT id, name FROM facility WHERE uuid = $1",
                params![uuid.as_str()],
            )?;
            match row {
                Some(row) => (
                    row.int("id").unwrap_or(0),
                    row.text("name").unwrap_or_default().to_owned(),
                ),
                None => {
                    problems.add(
                        "Encounter.serviceProvider",
                        &format!("facility {uuid} is not known"),
                    );
                    (0, String::new())
                }
            }
        }
    };
    out.push(("facility_id", Value::Integer(facility_id)));
    out.push(("facility", Value::Text(facility_name)));

    let (_, disposition) = write::code_list(
        body.get("hospitalization")
            .and_then(|h| h.get("dischargeDisposition")),
        "Encounter.hospitalization.dischargeDisposition",
        &mut problems,
    );
    out.push(("discharge_disposition", text(disposition.as_deref())));
    problems.finish()?;
    Ok((pid, out))
}

/// A `form_encounter` row as a US Core Encounter.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    if let Some(number) = row.int("encounter") {
        let mut id = Fields::new();
        id.set("use", "official")
            .set("value", number.to_string().as_str());
        out.list("identifier", vec![id.end()]);
    }
    // OpenEMR keeps no encounter status; a recorded encounter has taken place.
    out.set("status", "finished");
    let class = row.text("class_code").filter(|c| !c.trim().is_empty());
    out.set(
        "class",
        match class {
            Some(code) => coding(ACT_CODE, code, row.text("class_title")),
            None => coding(DATA_ABSENT, "unknown", Some("Unknown")),
        },
    );
    let kind = match row
        .text("encounter_type_code")
        .filter(|c| !c.trim().is_empty())
    {
        Some(code) => concept(
            coding(SNOMED, code, row.text("encounter_type_description")),
            row.text("encounter_type_description"),
        ),
        None => concept(coding(DATA_ABSENT, "unknown", Some("Unknown")), None),
    };
    out.list("type", vec![kind]);
    if let Some(patient) = row.text("patient_uuid") {
        let name = display(row.text("patient_fname"), row.text("patient_lname"));
        out.set(
            "subject",
            reference("Patient", patient, Some(name.as_str())),
        );
    }
    let start = row.text("date").and_then(hearth_fhir::date::instant);
    let end = row.text("date_end").and_then(hearth_fhir::date::instant);
    let mut period = Fields::new();
    period
        .text("start", start.as_deref())
        .text("end", end.as_deref());
    let period = period.end();
    if let Some(provider) = row.text("provider_uuid") {
        let name = display(row.text("provider_fname"), row.text("provider_lname"));
        let mut participant = Fields::new();
        participant
            .list(
                "type",
                vec![concept(
                    coding(PARTICIPATION, "ATND", Some("attender")),
                    None,
                )],
            )
            .object("period", period.clone())
            .set(
                "individual",
                reference("Practitioner", provider, Some(name.as_str())),
            );
        out.list("participant", vec![participant.end()]);
    }
    out.object("period", period);
    if let Some(reason) = row.text("reason").filter(|r| !r.trim().is_empty()) {
        out.list("reasonCode", vec![text_concept(reason)]);
    }
    if let Some(disposition) = row
        .text("discharge_disposition")
        .filter(|d| !d.trim().is_empty())
    {
        let mut stay = Fields::new();
        stay.set("dischargeDisposition", text_concept(disposition));
        out.object("hospitalization", stay.end());
    }
    if let Some(facility) = row.text("facility_uuid") {
        let mut place = Fields::new();
        place.set(
            "location",
            reference("Location", facility, row.text("facility_name")),
        );
        out.list("location", vec![place.end()]);
        out.set(
            "serviceProvider",
            reference("Organization", facility, row.text("facility_name")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-000000000004";
    const PATIENT: &str = "90cde167-0000-4000-8000-000000000001";

    #[test]
    fn an_encounter_names_its_patient_provider_and_facility() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "encounter",
                "date",
                "reason",
                "class_code",
                "patient_uuid",
                "patient_fname",
                "patient_lname",
                "provider_uuid",
                "facility_uuid",
            ],
            vec![vec![
                UUID.into(),
                "2024-05-06 07:08:09".into(),
                1.into(),
                7.into(),
                "2024-05-06 09:00:00".into(),
                "Checkup".into(),
                "AMB".into(),
                PATIENT.into(),
                "Ann".into(),
                "Smith".into(),
                "90cde167-0000-4000-8000-000000000002".into(),
                "90cde167-0000-4000-8000-000000000003".into(),
            ]],
        );
        let mut host = MockHost::new().on_query("WHERE fe.uuid = $1", rows);
        let response =
            host.call::<FhirEncounter>(TestRequest::get(&format!("/fhir/Encounter/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let e = response.body_json();
        assert_eq!(e["class"]["code"], "AMB");
        assert_eq!(e["subject"]["reference"], format!("Patient/{PATIENT}"));
        assert_eq!(e["subject"]["display"], "Ann Smith");
        assert_eq!(e["period"]["start"], "2024-05-06T09:00:00Z");
        assert_eq!(e["reasonCode"][0]["text"], "Checkup");
        assert_eq!(e["identifier"][0]["value"], "7");
        assert!(
            e["participant"][0]["individual"]["reference"]
                .as_str()
                .unwrap()
                .starts_with("Practitioner/")
        );
        assert_eq!(e["type"][0]["coding"][0]["code"], "unknown");
    }
}
