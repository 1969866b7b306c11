//! FHIR R4 `Patient` (US Core 3.1.1 and 7.0.0) over OpenEMR's `patient_data`, the rows
//! the standard API's `/api/patient` reads and writes: read, search, create, update,
//! vread and history.

use hearth_fhir::write::{self, Problems};
use hearth_fhir::{
    AddressParts, Fields, Param, Target, TokenColumn, TypeDef, address, coding, concept,
    contact_point, human_name, reference,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;
use serde_json::{Map, Value as JsonValue};

/// The FHIR Patient resource.
pub struct FhirPatient;

impl Resource for FhirPatient {
    const NAME: &'static str = "fhir-patient";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Patient (US Core) over OpenEMR patient_data";
    const READS: &'static [&'static str] = &["users", "facility", "folded_text"];
    const WRITES: &'static [&'static str] = &["patient_data", "sequences"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_write_routes!(
        PATIENT, map, create = create, update = update, type = "Patient",
        acl = "patients/demo", write_acl = "patients/demo:write", nouns = "patients",
        one = "a patient", schema = PATIENT_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "Patient",
        "Patients (FHIR)",
        "patients' demographics (FHIR Patient)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![PATIENT.declaration()]
    }
}

/// A US Core Patient as the routes answer it.
const PATIENT_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Patient"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("extension", Schema::Array(&Schema::Any)),
        Prop::new("identifier", Schema::Array(&IDENTIFIER)),
        Prop::new("active", Schema::Boolean),
        Prop::new("name", Schema::Array(&HUMAN_NAME)),
        Prop::new("telecom", Schema::Array(&CONTACT_POINT)),
        Prop::new(
            "gender",
            Schema::Enum(&["male", "female", "other", "unknown"]),
        ),
        Prop::new("birthDate", Schema::Format("date")),
        Prop::new("address", Schema::Array(&ADDRESS)),
        Prop::new("communication", Schema::Array(&Schema::Any)),
    ])
};

hearth_sdk::export!(FhirPatient);

const US_CORE_PATIENT: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient";
/// HL7 v2 table 0203, identifier types; OpenEMR also names it as the system of the
/// patient's public id (`pubpid`).
const ID_TYPES: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
const SSN: &str = "http://hl7.org/fhir/sid/us-ssn";
const GENDER: &str = "http://hl7.org/fhir/administrative-gender";
const PATIENT: TypeDef = TypeDef {
    resource_type: "Patient",
    profiles: &[
        US_CORE_PATIENT,
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|7.0.0",
    ],
    columns: "p.*, u.uuid AS provider_uuid, u.fname AS provider_fname, u.lname AS provider_lname",
    from: "patient_data p LEFT JOIN users u ON u.id = p.\"providerID\"",
    id: "p.uuid",
    key: "p.id",
    last_updated: "p.last_updated",
    patient: Some("p.uuid"),
    only: None,
    params: &hearth_fhir::contact_params!(
        type = "Patient",
        address = [
            "p.street",
            "p.street_line_2",
            "p.city",
            "p.county",
            "p.state",
            "p.postal_code",
            "p.country_code",
        ],
        city = "p.city",
        state = "p.state",
        postalcode = "p.postal_code",
        country = "p.country_code",
        phone = ["p.phone_home", "p.phone_biz", "p.phone_cell", "p.phone_contact"],
        email = ["p.email"],
        params = [
        Param::new(
            "identifier",
            "Patient.identifier",
            Target::Token(&[
                TokenColumn::new("p.pubpid", Some(ID_TYPES)),
                TokenColumn::new("p.ss", Some(SSN)),
            ]),
        ),
        Param::new(
            "name",
            "Patient.name",
            Target::Text(&["p.lname", "p.fname", "p.mname", "p.title", "p.suffix"]),
        ),
        Param::new("family", "Patient.name.family", Target::Text(&["p.lname"])),
        Param::new(
            "given",
            "Patient.name.given",
            Target::Text(&["p.fname", "p.mname"]),
        ),
        Param::new("birthdate", "Patient.birthDate", Target::Date("p.\"DOB\"")),
        Param::new(
            "gender",
            "Patient.gender",
            Target::Token(&[TokenColumn::new("p.sex", Some(GENDER)).codes(&[
                ("male", "Male"),
                ("female", "Female"),
                ("unknown", ""),
            ])]),
        ),
        Param::new(
            "general-practitioner",
            "Patient.generalPractitioner",
            Target::Reference {
                column: "u.uuid",
                target: "Practitioner",
            },
        ),
        // OpenEMR's name for the same parameter (§8.2).
        Param::new(
            "generalPractitioner",
            "Patient.generalPractitioner",
            Target::Reference {
                column: "u.uuid",
                target: "Practitioner",
            },
        ),
        ],
    ),
};

/// OMB race categories (CDC race and ethnicity code set) for OpenEMR's `race` list.
const RACES: &[(&str, &str, &str)] = &[
    ("white", "2106-3", "White"),
    ("black_or_afri_amer", "2054-5", "Black or African American"),
    (
        "amer_ind_or_alaska_native",
        "1002-5",
        "American Indian or Alaska Native",
    ),
    ("asian", "2028-9", "Asian"),
    (
        "native_hawai_or_pac_island",
        "2076-8",
        "Native Hawaiian or Other Pacific Islander",
    ),
];

/// OMB ethnicity categories for OpenEMR's `ethnicity` list.
const ETHNICITIES: &[(&str, &str, &str)] = &[
    ("hisp_or_latin", "2135-2", "Hispanic or Latino"),
    ("not_hisp_or_latin", "2186-5", "Not Hispanic or Latino"),
];

const CDC_RACE: &str = "urn:oid:2.16.840.1.113883.6.238";
const NULL_FLAVOR: &str = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor";

/// The US Core race or ethnicity extension for an OpenEMR list value, when it has one.
fn omb_extension(
    url: &str,
    stored: Option<&str>,
    categories: &[(&str, &str, &str)],
) -> Option<Json> {
    let stored = stored?.trim();
    let (category, text) = if stored == "declne_to_specfy" {
        (
            coding(NULL_FLAVOR, "ASKU", Some("Asked but no answer")),
            "Asked but no answer",
        )
    } else {
        let (_, code, display) = categories
            .iter()
            .find(|(id, _, _)| id.eq_ignore_ascii_case(stored))?;
        (coding(CDC_RACE, code, Some(display)), *display)
    };
    let mut omb = Fields::new();
    omb.set("url", "ombCategory").set("valueCoding", category);
    let mut label = Fields::new();
    label.set("url", "text").set("valueString", text);
    let mut out = Fields::new();
    out.set("url", url)
        .list("extension", vec![omb.end(), label.end()]);
    Some(out.end())
}

fn identifier(
    system: &str,
    type_code: &str,
    type_display: &str,
    value: Option<&str>,
) -> Option<Json> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    let mut out = Fields::new();
    out.set("use", "usual")
        .set(
            "type",
            concept(coding(ID_TYPES, type_code, Some(type_display)), None),
        )
        .set("system", system)
        .set("value", value);
    Some(out.end())
}

/// A row of `patient_data` as a US Core Patient.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let extensions: Vec<Json> = [
        omb_extension(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            row.text("race"),
            RACES,
        ),
        omb_extension(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
            row.text("ethnicity"),
            ETHNICITIES,
        ),
        row.text("birth_sex")
            .filter(|code| BIRTH_SEXES.contains(code))
            .map(|code| {
                let mut out = Fields::new();
                out.set("url", BIRTH_SEX).set("valueCode", code);
                out.end()
            }),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.list("extension", extensions);
    out.list(
        "identifier",
        [
            identifier(
                ID_TYPES,
                "PT",
                "Patient external identifier",
                row.text("pubpid"),
            ),
            identifier(SSN, "SS", "Social Security number", row.text("ss")),
        ]
        .into_iter()
        .flatten()
        .collect(),
    );
    out.list(
        "name",
        vec![human_name(
            row.text("lname"),
            [row.text("fname"), row.text("mname")],
            row.text("title"),
            row.text("suffix"),
        )],
    );
    let telecom: Vec<Json> = [
        contact_point("phone", "home", row.text("phone_home")),
        contact_point("phone", "work", row.text("phone_biz")),
        contact_point("phone", "mobile", row.text("phone_cell")),
        contact_point("email", "home", row.text("email")),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.list("telecom", telecom);
    out.set(
        "gender",
        match row.text("sex").unwrap_or_default() {
            "Male" => "male",
            "Female" => "female",
            "Other" => "other",
            _ => "unknown",
        },
    );
    if let Some(dob) = row
        .text("DOB")
        .filter(|d| hearth_fhir::date::parse(d).is_some())
    {
        out.set("birthDate", dob);
    }
    if let Some(died) = row
        .text("deceased_date")
        .and_then(hearth_fhir::date::instant)
    {
        out.set("deceasedDateTime", died.as_str());
    }
    let home = address(AddressParts {
        use_: Some("home"),
        lines: [row.text("street"), row.text("street_line_2")],
        city: row.text("city"),
        district: row.text("county"),
        state: row.text("state"),
        postal_code: row.text("postal_code"),
        country: row.text("country_code"),
    });
    out.list("address", home.into_iter().collect());
    if let Some(uuid) = row.text("provider_uuid") {
        let display = [row.text("provider_fname"), row.text("provider_lname")]
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let display = (!display.is_empty()).then_some(display.as_str());
        out.list(
            "generalPractitioner",
            vec![reference("Practitioner", uuid, display)],
        );
    }
}

const BIRTH_SEX: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex";
/// US Core's birth sex value set, as `patient_data.birth_sex` stores it.
const BIRTH_SEXES: &[&str] = &["F", "M", "UNK"];

/// `POST /fhir/Patient`: registers a patient as the standard API does (a `pid` from the
/// site's sequence, `pubpid` from the `PT` identifier or the `pid`), from a US Core
/// Patient.
fn create(req: &Request) -> Result<Response> {
    write::writer(req, &PATIENT)?;
    let body = write::body(req, &PATIENT, None)?;
    let columns = columns(&body, true)?;
    let pid = store::query_one(
        "UPDATE sequences SET value = value + 1 WHERE name = 'pid' RETURNING value",
        params![],
    )?
    .and_then(|row| row.int("value"))
    .ok_or_else(|| ApiError::Internal("the pid sequence is missing".into()))?;
    let uuid = hearth_sdk::new_uuid();
    let now = hearth_sdk::time::now().datetime();
    let user = staff_id(req)?;
    let mut insert = Insert::into("patient_data");
    insert
        .set("uuid", uuid.as_str())
        .set("pid", pid)
        .set("date", now.as_str())
        .set("regdate", now.as_str())
        .set("last_updated", now.as_str())
        .set("created_by", user)
        .set("updated_by", user);
    let mut pubpid = None;
    for (column, value) in columns {
        if column == "pubpid" {
            pubpid = Some(value);
        } else {
            insert.set(column, value);
        }
    }
    insert.set("pubpid", pubpid.unwrap_or_else(|| pid.to_string().into()));
    insert.run()?;
    write::answer(req, &PATIENT, &uuid, 201, map)
}

/// `PUT /fhir/Patient/:id`: replaces what the resource maps to (see [`columns`]); the
/// columns FHIR does not map (occupation, HIPAA choices, …) keep their values.
fn update(req: &Request) -> Result<Response> {
    write::writer(req, &PATIENT)?;
    let id = req.param("id")?.to_ascii_lowercase();
    let body = write::body(req, &PATIENT, Some(&id))?;
    let from = write::before_update(req, &PATIENT, &id)?;
    let columns = columns(&body, false)?;
    let mut update = Update::table("patient_data");
    for (column, value) in columns {
        update.set(column, value);
    }
    update
        .set("last_updated", hearth_sdk::time::now().datetime())
        .set("updated_by", staff_id(req)?)
        .filter("uuid", id.as_str());
    update.run()?;
    write::after_update(req, &PATIENT, &id, from)?;
    write::answer(req, &PATIENT, &id, 200, map)
}

/// The caller's `users.id`, for `created_by`/`updated_by` (none for other callers).
fn staff_id(req: &Request) -> Result<Option<i64>> {
    if req.caller().subject.is_empty() || req.caller().role != hearth_sdk::request::Role::User {
        return Ok(None);
    }
    Ok(store::query_one(
        "SELECT id FROM users WHERE uuid = $1",
        params![req.caller().subject.as_str()],
    )?
    .and_then(|row| row.int("id")))
}

/// The `patient_data` columns a Patient sets, with OpenEMR's rules for a patient (first
/// and last name, sex and date of birth required; a last name of 2 to 255 characters) as
/// a 422. Elements Hearth does not record are ignored. Every mapped column is set, an
/// absent element clearing it, except the identifiers (`pubpid`, `ss`), which only a
/// given identifier changes.
fn columns(body: &Map<String, JsonValue>, create: bool) -> Result<Vec<(&'static str, Value)>> {
    let mut problems = Problems::new();
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let text = |v: Option<&str>| Value::Text(v.unwrap_or_default().to_owned());
    let nullable = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_owned()));

    // Name: the official one, else the first.
    let names = write::items(body.get("name"), "Patient.name", &mut problems);
    let name = names
        .iter()
        .find(|n| n.get("use").and_then(JsonValue::as_str) == Some("official"))
        .or_else(|| names.first());
    let part = |key: &str| name.and_then(|n| n.get(key));
    let family = write::string(part("family"), "Patient.name.family", &mut problems);
    let given = write::items(part("given"), "Patient.name.given", &mut problems);
    let mut given: Vec<&str> = given
        .iter()
        .filter_map(|g| g.as_str().map(str::trim).filter(|g| !g.is_empty()))
        .collect();
    // A name given only as text (OpenEMR's own client sends `name[].text`): the last
    // word is the family name, the others the given names.
    let text_name = write::string(part("text"), "Patient.name.text", &mut problems);
    let family = match (family, given.is_empty(), text_name) {
        (None, true, Some(whole)) => {
            let mut words: Vec<&str> = whole.split_whitespace().collect();
            let last = words.pop();
            given = words;
            last
        }
        (family, _, _) => family,
    };
    match family {
        None => problems.add("Patient.name.family", "a family name is required"),
        Some(f) if f.chars().count() < 2 || f.chars().count() > 255 => {
            problems.add("Patient.name.family", "must be 2 to 255 characters")
        }
        Some(_) => {}
    }
    if given.is_empty() {
        problems.add("Patient.name.given", "a given name is required");
    }
    let first_of = |key: &str, problems: &mut Problems| {
        write::items(part(key), &format!("Patient.name.{key}"), problems)
            .first()
            .and_then(JsonValue::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let prefix = first_of("prefix", &mut problems);
    let suffix = first_of("suffix", &mut problems);
    out.push(("lname", text(family)));
    out.push(("fname", text(given.first().copied())));
    let middle = given.get(1..).map(|m| m.join(" ")).unwrap_or_default();
    out.push(("mname", text(Some(middle.as_str()))));
    out.push(("title", text(prefix)));
    out.push(("suffix", nullable(suffix)));

    // Gender (required, as OpenEMR requires a sex).
    match write::string(body.get("gender"), "Patient.gender", &mut problems) {
        Some("male") => out.push(("sex", text(Some("Male")))),
        Some("female") => out.push(("sex", text(Some("Female")))),
        Some("other") => out.push(("sex", text(Some("Other")))),
        Some("unknown") => out.push(("sex", text(Some("Unknown")))),
        Some(_) => problems.add("Patient.gender", "must be male, female, other or unknown"),
        None => problems.add("Patient.gender", "is required"),
    }

    // Birth date: a whole date, required on create.
    match write::string(body.get("birthDate"), "Patient.birthDate", &mut problems) {
        Some(d) if d.len() == 10 && hearth_fhir::date::parse(d).is_some() => {
            out.push(("DOB", text(Some(d))));
        }
        Some(_) => problems.add("Patient.birthDate", "must be a whole date, YYYY-MM-DD"),
        None if create => problems.add("Patient.birthDate", "is required"),
        None => out.push(("DOB", Value::Null)),
    }
    match write::string(
        body.get("deceasedDateTime"),
        "Patient.deceasedDateTime",
        &mut problems,
    ) {
        Some(d) => match hearth_fhir::date::parse(d) {
            Some(range) => out.push((
                "deceased_date",
                text(Some(
                    hearth_sdk::time::DateTime::from_unix(range.start)
                        .datetime()
                        .as_str(),
                )),
            )),
            None => problems.add("Patient.deceasedDateTime", "is not a dateTime"),
        },
        None => out.push(("deceased_date", Value::Null)),
    }

    // Telecom: home, work and mobile phones and one email.
    let mut phones = [
        ("phone_home", None),
        ("phone_biz", None),
        ("phone_cell", None),
    ];
    let mut email = None;
    for (i, point) in write::items(body.get("telecom"), "Patient.telecom", &mut problems)
        .iter()
        .enumerate()
    {
        let at = format!("Patient.telecom[{i}]");
        let system = write::string(point.get("system"), &format!("{at}.system"), &mut problems);
        let value = write::string(point.get("value"), &format!("{at}.value"), &mut problems);
        let use_ = write::string(point.get("use"), &format!("{at}.use"), &mut problems);
        let Some(value) = value else { continue };
        match (system, use_) {
            (Some("phone"), Some("work")) => phones[1].1 = Some(value),
            (Some("phone"), Some("mobile")) => phones[2].1 = Some(value),
            (Some("phone"), _) => phones[0].1 = phones[0].1.or(Some(value)),
            (Some("email"), _) if value.contains('@') => email = email.or(Some(value)),
            (Some("email"), _) => problems.add(&format!("{at}.value"), "is not an email address"),
            _ => {}
        }
    }
    for (column, value) in phones {
        out.push((column, text(value)));
    }
    out.push(("email", text(email)));

    // Address: the home one, else the first.
    let addresses = write::items(body.get("address"), "Patient.address", &mut problems);
    let address = addresses
        .iter()
        .find(|a| a.get("use").and_then(JsonValue::as_str) == Some("home"))
        .or_else(|| addresses.first());
    let field = |key: &str, problems: &mut Problems| {
        write::string(
            address.and_then(|a| a.get(key)),
            &format!("Patient.address.{key}"),
            problems,
        )
    };
    let lines = write::items(
        address.and_then(|a| a.get("line")),
        "Patient.address.line",
        &mut problems,
    );
    let line = |i: usize| lines.get(i).and_then(JsonValue::as_str).map(str::trim);
    out.push(("street", text(line(0))));
    out.push(("street_line_2", nullable(line(1).filter(|l| !l.is_empty()))));
    out.push(("city", text(field("city", &mut problems))));
    out.push(("county", text(field("district", &mut problems))));
    out.push(("state", text(field("state", &mut problems))));
    out.push(("postal_code", text(field("postalCode", &mut problems))));
    out.push(("country_code", text(field("country", &mut problems))));

    // Identifiers: the patient's public id (PT) and the SSN.
    for (i, identifier) in write::items(body.get("identifier"), "Patient.identifier", &mut problems)
        .iter()
        .enumerate()
    {
        let at = format!("Patient.identifier[{i}]");
        let system = write::string(
            identifier.get("system"),
            &format!("{at}.system"),
            &mut problems,
        );
        let value = write::string(
            identifier.get("value"),
            &format!("{at}.value"),
            &mut problems,
        );
        match (system, value) {
            (Some(ID_TYPES), Some(v)) => out.push(("pubpid", text(Some(v)))),
            (Some(SSN), Some(v)) => out.push(("ss", text(Some(v)))),
            _ => {}
        }
    }

    // Extensions: race, ethnicity (OMB categories) and birth sex.
    let mut race = None;
    let mut ethnicity = None;
    let mut birth_sex = None;
    for (i, extension) in write::items(body.get("extension"), "Patient.extension", &mut problems)
        .iter()
        .enumerate()
    {
        let at = format!("Patient.extension[{i}]");
        let url = extension
            .get("url")
            .and_then(JsonValue::as_str)
            .unwrap_or_default();
        let omb = |categories: &[(&'static str, &str, &str)], problems: &mut Problems| {
            let code = extension
                .get("extension")
                .and_then(JsonValue::as_array)
                .and_then(|parts| {
                    parts
                        .iter()
                        .find(|p| p.get("url").and_then(JsonValue::as_str) == Some("ombCategory"))
                })
                .and_then(|p| p["valueCoding"]["code"].as_str());
            match code {
                Some("ASKU") => Some("declne_to_specfy"),
                Some(code) => match categories.iter().find(|(_, c, _)| *c == code) {
                    Some((id, _, _)) => Some(*id),
                    None => {
                        problems.add(
                            &at,
                            &format!("{code} is not an OMB category Hearth records"),
                        );
                        None
                    }
                },
                None => {
                    problems.add(&at, "needs an ombCategory with a valueCoding code");
                    None
                }
            }
        };
        match url {
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race" => {
                race = omb(RACES, &mut problems);
            }
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity" => {
                ethnicity = omb(ETHNICITIES, &mut problems);
            }
            BIRTH_SEX => match extension.get("valueCode").and_then(JsonValue::as_str) {
                Some(code) if BIRTH_SEXES.contains(&code) => birth_sex = Some(code),
                _ => problems.add(&format!("{at}.valueCode"), "must be F, M or UNK"),
            },
            _ => {}
        }
    }
    out.push(("race", text(race)));
    out.push(("ethnicity", text(ethnicity)));
    out.push(("birth_sex", nullable(birth_sex)));

    // The general practitioner: a Practitioner of this site.
    let practitioners = write::items(
        body.get("generalPractitioner"),
        "Patient.generalPractitioner",
        &mut problems,
    );
    let mut provider = Value::Null;
    if let Some(reference) = practitioners.first() {
        let target = reference
            .get("reference")
            .and_then(JsonValue::as_str)
            .unwrap_or_default();
        let uuid = target.rsplit_once("Practitioner/").map(|(_, id)| id);
        let found = match uuid.filter(|u| hearth_sdk::request::is_uuid(u)) {
            Some(uuid) => store::query_one(
                "SELECT id FROM users WHERE uuid = $1 AND npi <> ''",
                params![uuid.to_ascii_lowercase()],
            )?
            .and_then(|row| row.int("id")),
            None => None,
        };
        match found {
            Some(id) => provider = Value::Integer(id),
            None => problems.add(
                "Patient.generalPractitioner[0].reference",
                &format!("{target} is no Practitioner of this server"),
            ),
        }
    }
    out.push(("providerID", provider));
    problems.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-000000000001";

    fn rows() -> Rows {
        Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "fname",
                "mname",
                "lname",
                "sex",
                "DOB",
                "race",
                "ethnicity",
                "street",
                "city",
                "pubpid",
                "phone_cell",
                "provider_uuid",
            ],
            vec![vec![
                UUID.into(),
                "2024-05-06 07:08:09".into(),
                1.into(),
                "Ann".into(),
                "".into(),
                "Smith".into(),
                "Female".into(),
                "1990-02-03".into(),
                "white".into(),
                "".into(),
                "1 Main St".into(),
                "Springfield".into(),
                "P-1".into(),
                "555-1234".into(),
                Value::Null,
            ]],
        )
    }

    #[test]
    fn a_row_reads_as_a_us_core_patient() {
        let mut host = MockHost::new().on_query("WHERE p.uuid = $1", rows());
        let response = host.call::<FhirPatient>(TestRequest::get(&format!("/fhir/Patient/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let p = response.body_json();
        assert_eq!(p["resourceType"], "Patient");
        assert_eq!(p["id"], UUID);
        assert_eq!(p["meta"]["lastUpdated"], "2024-05-06T07:08:09Z");
        assert_eq!(p["meta"]["profile"][0], US_CORE_PATIENT);
        assert_eq!(
            p["name"][0]["given"],
            serde_json::json!(["Ann"]),
            "no blank middle name"
        );
        assert_eq!(p["gender"], "female");
        assert_eq!(p["birthDate"], "1990-02-03");
        assert_eq!(
            p["extension"][0]["extension"][0]["valueCoding"]["code"],
            "2106-3"
        );
        assert_eq!(
            p["extension"].as_array().unwrap().len(),
            1,
            "no ethnicity recorded"
        );
        assert_eq!(p["address"][0]["use"], "home");
        assert_eq!(p["address"][0]["line"][0], "1 Main St");
        assert_eq!(p["identifier"][0]["value"], "P-1");
        assert_eq!(p["telecom"][0]["use"], "mobile");
        assert!(p.get("generalPractitioner").is_none());
        let etag = response.headers.iter().find(|(k, _)| k == "etag").unwrap();
        assert_eq!(
            etag.1,
            format!("W/\"{}\"", p["meta"]["versionId"].as_str().unwrap())
        );
    }

    #[test]
    fn a_patient_token_reads_only_its_own_record() {
        let mut host = MockHost::new().on_query("FROM patient_data", Rows::default());
        let other = "90cde167-0000-4000-8000-000000000002";
        let response = host.call::<FhirPatient>(
            TestRequest::get(&format!("/fhir/Patient/{other}")).as_patient(UUID),
        );
        assert_eq!(response.status, 404);
        assert_eq!(response.body_json()["resourceType"], "OperationOutcome");
        let (sql, params) = &host.queries()[0];
        assert!(sql.contains("p.uuid = $2"), "{sql}");
        assert_eq!(params[1], Value::from(UUID));
    }

    fn object(value: serde_json::Value) -> Map<String, JsonValue> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_us_core_patient_maps_to_openemr_columns() {
        let body = object(serde_json::json!({
            "resourceType": "Patient",
            "extension": [
                {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
                 "extension": [{"url": "ombCategory", "valueCoding": {"code": "2135-2"}}]},
                {"url": BIRTH_SEX, "valueCode": "M"}
            ],
            "name": [{"use": "old", "family": "Former", "given": ["X"]},
                     {"use": "official", "family": "Diaz", "given": ["Luis", "Alberto", "Jr"], "suffix": ["III"]}],
            "gender": "male",
            "birthDate": "1970-01-02",
            "telecom": [{"system": "phone", "value": "555-1", "use": "work"}],
            "identifier": [{"system": SSN, "value": "123-45-6789"}]
        }));
        let columns = columns(&body, true).unwrap();
        let get = |name: &str| {
            columns
                .iter()
                .find(|(column, _)| *column == name)
                .map(|(_, value)| value.clone())
        };
        let text = |v: &str| Some(Value::Text(v.to_owned()));
        assert_eq!(get("lname"), text("Diaz"));
        assert_eq!(get("fname"), text("Luis"));
        assert_eq!(get("mname"), text("Alberto Jr"));
        assert_eq!(get("suffix"), text("III"));
        assert_eq!(get("sex"), text("Male"));
        assert_eq!(get("DOB"), text("1970-01-02"));
        assert_eq!(get("phone_biz"), text("555-1"));
        assert_eq!(get("phone_home"), text(""));
        assert_eq!(get("ss"), text("123-45-6789"));
        assert_eq!(
            get("pubpid"),
            None,
            "no PT identifier: the pid becomes the public id"
        );
        assert_eq!(get("ethnicity"), text("hisp_or_latin"));
        assert_eq!(get("race"), text(""));
        assert_eq!(get("birth_sex"), text("M"));
        assert_eq!(get("providerID"), Some(Value::Null));

        let from_text = object(serde_json::json!({
            "resourceType": "Patient", "name": [{"text": "Mary Ann Lee"}],
            "gender": "female", "birthDate": "1990-01-01"
        }));
        let split = super::columns(&from_text, true).unwrap();
        assert!(split.contains(&("lname", Value::Text("Lee".into()))));
        assert!(split.contains(&("fname", Value::Text("Mary".into()))));
        assert!(split.contains(&("mname", Value::Text("Ann".into()))));
    }

    #[test]
    fn every_broken_rule_is_named_in_one_422() {
        let body = object(serde_json::json!({
            "resourceType": "Patient", "name": [{"family": "L", "given": "Ann"}],
            "gender": "F", "birthDate": "1990-13-01", "telecom": {"system": "phone"},
            "extension": [{"url": BIRTH_SEX, "valueCode": "female"}]
        }));
        let ApiError::Response(response) = columns(&body, true).unwrap_err() else {
            panic!("a response");
        };
        assert_eq!(response.status, 422);
        let issues = response.body_json()["issue"].clone();
        let named: Vec<&str> = issues
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["expression"][0].as_str().unwrap())
            .collect();
        for expression in [
            "Patient.name.family",
            "Patient.name.given",
            "Patient.gender",
            "Patient.birthDate",
            "Patient.telecom",
            "Patient.extension[0].valueCode",
        ] {
            assert!(named.contains(&expression), "{expression} in {named:?}");
        }
    }

    #[test]
    fn unknown_ids_are_404_without_a_query() {
        let mut host = MockHost::new();
        let response = host.call::<FhirPatient>(TestRequest::get("/fhir/Patient/nope"));
        assert_eq!(response.status, 404);
        assert!(host.calls().is_empty());
    }
}
