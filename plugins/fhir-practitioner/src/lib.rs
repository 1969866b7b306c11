//! FHIR R4 over OpenEMR's `users`, the rows `/api/practitioner` reads and writes:
//!
//! - `Practitioner` (US Core 3.1.1 and 7.0.0): the users with an NPI;
//! - `PractitionerRole` (US Core): a practitioner's role at the facility they work at
//!   (`users.facility_id`): one role per practitioner with a facility, whose id is the
//!   practitioner's. Its code is the user's physician type (SNOMED CT, from the
//!   `physician_type` list), its specialty the user's NUCC taxonomy code, and it points
//!   at the Practitioner, the facility's Organization and its Location;
//! - `Person`: the users who are not practitioners (no NPI) and sign in (a user name):
//!   staff such as administrators and front-office clerks.

use hearth_fhir::write::{self, Problems};
use hearth_fhir::{
    AddressParts, Fields, Param, Target, TokenColumn, TypeDef, address, coding, concept,
    contact_point, human_name, reference,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;
use serde_json::{Map, Value as JsonValue};

/// The FHIR Practitioner resource.
pub struct FhirPractitioner;

impl Resource for FhirPractitioner {
    const NAME: &'static str = "fhir-practitioner";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Practitioner, PractitionerRole and Person (US Core) over OpenEMR users";
    const READS: &'static [&'static str] = &["users", "facility", "list_options", "folded_text"];
    const WRITES: &'static [&'static str] = &["users"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_write_routes!(
        PRACTITIONER, map, create = create, update = update, type = "Practitioner",
        acl = "admin/users", write_acl = "admin/users:write", nouns = "practitioners",
        one = "a practitioner", schema = PRACTITIONER_SCHEMA,
        more = [
            Route::get("/fhir/PractitionerRole", "PractitionerRole.s", |r| {
                hearth_fhir::search(r, &PRACTITIONER_ROLE, map_role)
            })
            .acl("admin/users")
            .summary("Search practitioner roles")
            .answers(Schema::Bundle(&PRACTITIONER_ROLE_SCHEMA)),
            Route::post("/fhir/PractitionerRole/_search", "PractitionerRole.s", |r| {
                hearth_fhir::search(r, &PRACTITIONER_ROLE, map_role)
            })
            .acl("admin/users")
            .summary("Search practitioner roles (form body)")
            .answers(Schema::Bundle(&PRACTITIONER_ROLE_SCHEMA)),
            Route::get("/fhir/PractitionerRole/:id", "PractitionerRole.r", |r| {
                hearth_fhir::read(r, &PRACTITIONER_ROLE, r.param("id")?, map_role)
            })
            .acl("admin/users")
            .summary("Read a practitioner role")
            .answers(PRACTITIONER_ROLE_SCHEMA),
            Route::get("/fhir/Person", "Person.s", |r| {
                hearth_fhir::search(r, &PERSON, map_person)
            })
            .acl("admin/users")
            .summary("Search persons")
            .answers(Schema::Bundle(&PERSON_SCHEMA)),
            Route::post("/fhir/Person/_search", "Person.s", |r| {
                hearth_fhir::search(r, &PERSON, map_person)
            })
            .acl("admin/users")
            .summary("Search persons (form body)")
            .answers(Schema::Bundle(&PERSON_SCHEMA)),
            Route::get("/fhir/Person/:id", "Person.r", |r| {
                hearth_fhir::read(r, &PERSON, r.param("id")?, map_person)
            })
            .acl("admin/users")
            .summary("Read a person")
            .answers(PERSON_SCHEMA),
        ]
    );

    const WORDS: &'static [Words] = &[
        Words::new(
            "Practitioner",
            "Practitioners (FHIR)",
            "practitioners (FHIR Practitioner)",
        ),
        Words::new(
            "PractitionerRole",
            "Practitioner roles (FHIR)",
            "practitioners' roles and specialties (FHIR PractitionerRole)",
        ),
        Words::new("Person", "Staff (FHIR Person)", "staff users (FHIR Person)"),
    ];

    fn fhir_types() -> Vec<FhirType> {
        vec![
            PRACTITIONER.declaration(),
            PRACTITIONER_ROLE.declaration(),
            PERSON.declaration(),
        ]
    }
}

/// A US Core Practitioner as the routes answer it.
const PRACTITIONER_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Practitioner"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("identifier", Schema::Array(&IDENTIFIER)),
        Prop::new("active", Schema::Boolean),
        Prop::new("name", Schema::Array(&HUMAN_NAME)),
        Prop::new("telecom", Schema::Array(&CONTACT_POINT)),
        Prop::new("address", Schema::Array(&ADDRESS)),
    ])
};

/// A PractitionerRole as the routes answer it.
const PRACTITIONER_ROLE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["PractitionerRole"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("active", Schema::Boolean),
        Prop::new("practitioner", REFERENCE),
        Prop::new("organization", REFERENCE),
        Prop::new("code", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("specialty", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("location", Schema::Array(&REFERENCE)),
        Prop::new("telecom", Schema::Array(&CONTACT_POINT)),
    ])
};

/// A Person as the routes answer it.
const PERSON_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Person"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("active", Schema::Boolean),
        Prop::new("name", Schema::Array(&HUMAN_NAME)),
        Prop::new("telecom", Schema::Array(&CONTACT_POINT)),
        Prop::new("address", Schema::Array(&ADDRESS)),
    ])
};

hearth_sdk::export!(FhirPractitioner);

const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
const PRACTITIONER: TypeDef = TypeDef {
    resource_type: "Practitioner",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner|7.0.0",
    ],
    columns: "u.title, u.fname, u.mname, u.lname, u.suffix, u.npi, u.active, u.email, \
              u.phone, u.phonew1, u.phonecell, u.fax, u.street, u.streetb, u.city, u.state, u.zip",
    from: "users u",
    id: "u.uuid",
    key: "u.id",
    last_updated: "u.last_updated",
    patient: None,
    // OpenEMR's practitioners are the users with an NPI.
    only: Some("u.npi <> ''"),
    params: &hearth_fhir::contact_params!(
        type = "Practitioner",
        address = ["u.street", "u.streetb", "u.city", "u.state", "u.zip"],
        city = "u.city",
        state = "u.state",
        postalcode = "u.zip",
        phone = ["u.phone", "u.phonew1", "u.phonecell"],
        email = ["u.email"],
        params = [
        Param::new(
            "identifier",
            "Practitioner.identifier",
            Target::Token(&[TokenColumn::new("u.npi", Some(NPI))]),
        ),
        Param::new(
            "active",
            "Practitioner.active",
            Target::Token(&[
                TokenColumn::new("u.active", None).codes(&[("true", "1"), ("false", "0")])
            ]),
        ),
        Param::new(
            "name",
            "Practitioner.name",
            Target::Text(&["u.lname", "u.fname", "u.mname", "u.title", "u.suffix"]),
        ),
        Param::new(
            "family",
            "Practitioner.name.family",
            Target::Text(&["u.lname"]),
        ),
        Param::new(
            "given",
            "Practitioner.name.given",
            Target::Text(&["u.fname", "u.mname"]),
        ),
        ],
    ),
};

const NUCC: &str = "http://nucc.org/provider-taxonomy";
const SNOMED: &str = "http://snomed.info/sct";

const PRACTITIONER_ROLE: TypeDef = TypeDef {
    resource_type: "PractitionerRole",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitionerrole",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitionerrole|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitionerrole|7.0.0",
    ],
    columns: "u.uuid AS practitioner_uuid, u.fname, u.mname, u.lname, u.active, u.email, \
              u.phone, u.phonew1, u.specialty, u.taxonomy, pt.title AS physician_title, \
              pt.codes AS physician_codes, f.uuid AS facility_uuid, f.name AS facility_name, \
              f.phone AS facility_phone, f.email AS facility_email",
    from: "users u JOIN facility f ON f.id = u.facility_id \
           LEFT JOIN list_options pt ON pt.list_id = 'physician_type' \
           AND pt.option_id = u.physician_type",
    id: "u.uuid",
    key: "u.id",
    last_updated: "u.last_updated",
    patient: None,
    only: Some("u.npi <> ''"),
    params: &[
        Param::new(
            "specialty",
            "PractitionerRole.specialty",
            Target::Token(&[TokenColumn::new("u.taxonomy", Some(NUCC)).text("u.specialty")]),
        ),
        Param::new(
            "practitioner",
            "PractitionerRole.practitioner",
            Target::Reference {
                column: "u.uuid",
                target: "Practitioner",
            },
        ),
        Param::new(
            "organization",
            "PractitionerRole.organization",
            Target::Reference {
                column: "f.uuid",
                target: "Organization",
            },
        ),
        Param::new(
            "location",
            "PractitionerRole.location",
            Target::Reference {
                column: "f.uuid",
                target: "Location",
            },
        ),
        Param::new(
            "active",
            "PractitionerRole.active",
            Target::Token(&[
                TokenColumn::new("u.active", None).codes(&[("true", "1"), ("false", "0")])
            ]),
        ),
    ],
};

const PERSON: TypeDef = TypeDef {
    resource_type: "Person",
    profiles: &[],
    columns: "u.title, u.fname, u.mname, u.lname, u.suffix, u.active, u.email, u.phone, \
              u.phonew1, u.phonecell, u.fax, u.street, u.streetb, u.city, u.state, u.zip",
    from: "users u",
    id: "u.uuid",
    key: "u.id",
    last_updated: "u.last_updated",
    patient: None,
    // Staff who sign in and are not practitioners; address-book entries have no user name.
    only: Some("u.npi = '' AND u.username IS NOT NULL AND u.username <> ''"),
    params: &hearth_fhir::contact_params!(
        type = "Person",
        address = ["u.street", "u.streetb", "u.city", "u.state", "u.zip"],
        city = "u.city",
        state = "u.state",
        postalcode = "u.zip",
        phone = ["u.phone", "u.phonew1", "u.phonecell"],
        email = ["u.email"],
        params = [
            Param::new(
                "active",
                "Person.active",
                Target::Token(&[
                    TokenColumn::new("u.active", None).codes(&[("true", "1"), ("false", "0")])
                ]),
            ),
            Param::new(
                "name",
                "Person.name",
                Target::Text(&["u.lname", "u.fname", "u.mname", "u.title", "u.suffix"]),
            ),
            Param::new("family", "Person.name.family", Target::Text(&["u.lname"])),
            Param::new(
                "given",
                "Person.name.given",
                Target::Text(&["u.fname", "u.mname"]),
            ),
        ],
    ),
};

/// A practitioner row as a US Core Practitioner.
fn map(row: &Row<'_>, req: &Request, out: &mut Fields) {
    let mut npi = Fields::new();
    npi.set("system", NPI).text("value", row.text("npi"));
    out.list("identifier", vec![npi.end()]);
    map_person(row, req, out);
}

/// A practitioner's role at their facility as a US Core PractitionerRole.
fn map_role(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("active", row.int("active").unwrap_or(1) != 0);
    let name = [row.text("fname"), row.text("mname"), row.text("lname")]
        .into_iter()
        .flatten()
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(id) = row.text("practitioner_uuid") {
        out.set(
            "practitioner",
            reference("Practitioner", id, Some(name.as_str())),
        );
    }
    if let Some(id) = row.text("facility_uuid") {
        out.set(
            "organization",
            reference("Organization", id, row.text("facility_name")),
        );
        out.list(
            "location",
            vec![reference("Location", id, row.text("facility_name"))],
        );
    }
    // The physician type's SNOMED CT code, stored as `SNOMED-CT:405279007`.
    let code = row
        .text("physician_codes")
        .and_then(|c| c.trim().strip_prefix("SNOMED-CT:"))
        .filter(|c| !c.is_empty());
    if let Some(code) = code {
        out.list(
            "code",
            vec![concept(
                coding(SNOMED, code, row.text("physician_title")),
                row.text("physician_title"),
            )],
        );
    }
    if let Some(taxonomy) = row.text("taxonomy").filter(|t| !t.trim().is_empty()) {
        out.list(
            "specialty",
            vec![concept(coding(NUCC, taxonomy, None), row.text("specialty"))],
        );
    }
    // US Core: a role carries contact details; the practitioner's own, else the
    // facility's.
    let own: Vec<Json> = [
        contact_point("phone", "work", row.text("phone")),
        contact_point("phone", "work", row.text("phonew1")),
        contact_point("email", "work", row.text("email")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let telecom = if own.is_empty() {
        [
            contact_point("phone", "work", row.text("facility_phone")),
            contact_point("email", "work", row.text("facility_email")),
        ]
        .into_iter()
        .flatten()
        .collect()
    } else {
        own
    };
    out.list("telecom", telecom);
}

/// A user row's name, contact details and address (a Person, and the rest of a
/// Practitioner).
fn map_person(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("active", row.int("active").unwrap_or(1) != 0);
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
        contact_point("phone", "work", row.text("phone")),
        contact_point("phone", "work", row.text("phonew1")),
        contact_point("phone", "mobile", row.text("phonecell")),
        contact_point("fax", "work", row.text("fax")),
        contact_point("email", "work", row.text("email")),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.list("telecom", telecom);
    let work = address(AddressParts {
        lines: [row.text("street"), row.text("streetb")],
        city: row.text("city"),
        state: row.text("state"),
        postal_code: row.text("zip"),
        ..AddressParts::default()
    });
    out.list("address", work.into_iter().collect());
}

/// `POST /fhir/Practitioner`: a new practitioner (a `users` row with an NPI and no user
/// name, as `POST /api/practitioner` makes).
fn create(req: &Request) -> Result<Response> {
    write::writer(req, &PRACTITIONER)?;
    let body = write::body(req, &PRACTITIONER, None)?;
    let columns = columns(&body)?;
    let uuid = hearth_sdk::new_uuid();
    let now = hearth_sdk::time::now().datetime();
    let mut insert = Insert::into("users");
    insert
        .set("uuid", uuid.as_str())
        .set("username", Value::Null)
        .set("date_created", now.as_str())
        .set("last_updated", now.as_str());
    for (column, value) in columns {
        insert.set(column, value);
    }
    insert.run()?;
    write::answer(req, &PRACTITIONER, &uuid, 201, map)
}

/// `PUT /fhir/Practitioner/:id`: replaces what the resource maps to (see [`columns`]);
/// the user name, facility, taxonomy and the other columns FHIR does not map keep their
/// values. Only a practitioner (a user with an NPI) is updated: another user's id is a
/// 404, as its read is.
fn update(req: &Request) -> Result<Response> {
    write::writer(req, &PRACTITIONER)?;
    let id = req.param("id")?.to_ascii_lowercase();
    let body = write::body(req, &PRACTITIONER, Some(&id))?;
    let practitioner = hearth_sdk::request::is_uuid(&id)
        && store::query_one(
            "SELECT 1 AS found FROM users WHERE uuid = $1 AND npi <> ''",
            params![id.as_str()],
        )?
        .is_some();
    if !practitioner {
        return Err(hearth_fhir::error(
            404,
            "not-found",
            &format!(
                "Practitioner/{id} is not known (an update cannot create a resource: use POST)"
            ),
        ));
    }
    let from = write::before_update(req, &PRACTITIONER, &id)?;
    let columns = columns(&body)?;
    let mut update = Update::table("users");
    for (column, value) in columns {
        update.set(column, value);
    }
    update
        .set("last_updated", hearth_sdk::time::now().datetime())
        .filter("uuid", id.as_str());
    update.run()?;
    write::after_update(req, &PRACTITIONER, &id, from)?;
    write::answer(req, &PRACTITIONER, &id, 200, map)
}

/// The `users` columns a Practitioner sets, with OpenEMR's PractitionerValidator rules
/// as a 422: first and last name of 2 to 255 characters, an NPI of 10 to 15 digits, a
/// valid email address. The name is the official one (else the first): `family` is
/// `lname`, the first given name `fname`, the others `mname`, the first prefix `title`
/// and the first suffix `suffix`. Phones: the first `work` (or unmarked) phone is
/// `phone`, the second `phonew1`, a `mobile` one `phonecell`; a fax `fax`; the first
/// email `email`. The first address's lines are `street` and `streetb`. Every mapped
/// column is set, an absent element clearing it.
fn columns(body: &Map<String, JsonValue>) -> Result<Vec<(&'static str, Value)>> {
    let mut problems = Problems::new();
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let text = |v: Option<&str>| Value::Text(v.unwrap_or_default().to_owned());

    let names = write::items(body.get("name"), "Practitioner.name", &mut problems);
    let name = names
        .iter()
        .find(|n| n.get("use").and_then(JsonValue::as_str) == Some("official"))
        .or_else(|| names.first());
    let part = |key: &str| name.and_then(|n| n.get(key));
    let family = write::string(part("family"), "Practitioner.name.family", &mut problems);
    let given: Vec<&str> = write::items(part("given"), "Practitioner.name.given", &mut problems)
        .iter()
        .filter_map(|g| g.as_str().map(str::trim).filter(|g| !g.is_empty()))
        .collect();
    let length = |v: &str| (2..=255).contains(&v.chars().count());
    match family {
        None => problems.add("Practitioner.name.family", "a family name is required"),
        Some(f) if !length(f) => {
            problems.add("Practitioner.name.family", "must be 2 to 255 characters")
        }
        Some(_) => {}
    }
    match given.first() {
        None => problems.add("Practitioner.name.given", "a given name is required"),
        Some(g) if !length(g) => {
            problems.add("Practitioner.name.given", "must be 2 to 255 characters")
        }
        Some(_) => {}
    }
    let first_of = |key: &str, problems: &mut Problems| {
        write::items(part(key), &format!("Practitioner.name.{key}"), problems)
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
    out.push(("suffix", text(suffix)));

    match body.get("active") {
        None | Some(JsonValue::Null) => out.push(("active", Value::Integer(1))),
        Some(JsonValue::Bool(active)) => out.push(("active", Value::Integer(i64::from(*active)))),
        Some(_) => problems.add("Practitioner.active", "must be true or false"),
    }

    let mut npi = None;
    for (i, identifier) in write::items(
        body.get("identifier"),
        "Practitioner.identifier",
        &mut problems,
    )
    .iter()
    .enumerate()
    {
        let at = format!("Practitioner.identifier[{i}]");
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
        if let (Some(NPI), Some(v)) = (system, value) {
            if v.len() < 10 || v.len() > 15 || !v.bytes().all(|b| b.is_ascii_digit()) {
                problems.add(&format!("{at}.value"), "an NPI is 10 to 15 digits");
            }
            npi = npi.or(Some(v));
        }
    }
    match npi {
        Some(npi) => out.push(("npi", text(Some(npi)))),
        None => problems.add(
            "Practitioner.identifier",
            &format!("an NPI ({NPI}) is required: OpenEMR's practitioners are the users with one"),
        ),
    }

    let mut work: Vec<&str> = Vec::new();
    let mut cell = None;
    let mut fax = None;
    let mut email = None;
    for (i, point) in write::items(body.get("telecom"), "Practitioner.telecom", &mut problems)
        .iter()
        .enumerate()
    {
        let at = format!("Practitioner.telecom[{i}]");
        let system = write::string(point.get("system"), &format!("{at}.system"), &mut problems);
        let use_ = write::string(point.get("use"), &format!("{at}.use"), &mut problems);
        let Some(value) = write::string(point.get("value"), &format!("{at}.value"), &mut problems)
        else {
            continue;
        };
        match (system, use_) {
            (Some("phone"), Some("mobile")) => cell = cell.or(Some(value)),
            (Some("phone"), _) => work.push(value),
            (Some("fax"), _) => fax = fax.or(Some(value)),
            (Some("email"), _) if value.contains('@') => email = email.or(Some(value)),
            (Some("email"), _) => problems.add(&format!("{at}.value"), "is not an email address"),
            _ => {}
        }
    }
    out.push(("phone", text(work.first().copied())));
    out.push(("phonew1", text(work.get(1).copied())));
    out.push(("phonecell", text(cell)));
    out.push(("fax", text(fax)));
    out.push(("email", text(email)));

    let addresses = write::items(body.get("address"), "Practitioner.address", &mut problems);
    let address = addresses.first();
    let field = |key: &str, problems: &mut Problems| {
        write::string(
            address.and_then(|a| a.get(key)),
            &format!("Practitioner.address.{key}"),
            problems,
        )
    };
    let lines: Vec<&str> = write::items(
        address.and_then(|a| a.get("line")),
        "Practitioner.address.line",
        &mut problems,
    )
    .iter()
    .filter_map(|l| l.as_str().map(str::trim).filter(|l| !l.is_empty()))
    .collect();
    out.push(("street", text(lines.first().copied())));
    let rest = lines.get(1..).map(|l| l.join(", ")).unwrap_or_default();
    out.push(("streetb", text(Some(rest.as_str()))));
    out.push(("city", text(field("city", &mut problems))));
    out.push(("state", text(field("state", &mut problems))));
    out.push(("zip", text(field("postalCode", &mut problems))));
    problems.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    #[test]
    fn a_practitioner_carries_its_npi_and_only_users_with_one_are_searched() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "fname",
                "lname",
                "npi",
                "active",
                "city",
            ],
            vec![vec![
                "90cde167-0000-4000-8000-000000000001".into(),
                "2024-01-02 03:04:05".into(),
                7.into(),
                "Meredith".into(),
                "Grey".into(),
                "1122334455".into(),
                1.into(),
                "Seattle".into(),
            ]],
        );
        let mut host = MockHost::new()
            .on_query(
                "COUNT(*)",
                Rows::from_values(&["n", "hi"], vec![vec![1.into(), 7.into()]]),
            )
            .on_query("ORDER BY", rows);
        let response =
            host.call::<FhirPractitioner>(TestRequest::get("/fhir/Practitioner?family=gr"));
        assert_eq!(response.status, 200, "{}", response.text());
        let bundle = response.body_json();
        let p = &bundle["entry"][0]["resource"];
        assert_eq!(p["identifier"][0]["value"], "1122334455");
        assert_eq!(p["active"], true);
        assert_eq!(p["address"][0]["city"], "Seattle");
        assert!(host.queries()[0].0.contains("u.npi <> ''"));
    }
}
