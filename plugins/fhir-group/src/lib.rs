//! FHIR R4 `Group` over Hearth's own `fhir_groups` and `fhir_group_members` (migration
//! `0471_fhir_groups.sql`): named lists of patients, the scope of a Group-level Bulk Data
//! export (`/fhir/Group/{id}/$export`). OpenEMR answers Group read and search (ACL
//! `admin/users`); Hearth also creates and updates groups (`POST /fhir/Group`,
//! `PUT /fhir/Group/:id`) from `member.entity` references to patients.
//!
//! A group is `type: person`, `actual: true`, with a `name` and `active`; its members
//! are listed in the order they were given, each `{"entity": {"reference":
//! "Patient/<uuid>"}}`, and `quantity` counts them. A member must be a patient the site
//! knows (else 422, nothing written); a patient listed twice is kept once. Groups are
//! not versioned: `meta.versionId` is the last change in seconds, as for the other
//! types without history.

use hearth_fhir::write::{self, Problems};
use hearth_fhir::{Fields, Param, Target, TypeDef};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;
use hearth_sdk::store;
use serde_json::{Map, Value as JsonValue};

/// The FHIR Group resource.
pub struct FhirGroup;

impl Resource for FhirGroup {
    const NAME: &'static str = "fhir-group";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Group: lists of patients, the scope of a Group-level Bulk Data export";
    const READS: &'static [&'static str] = &["fhir_groups", "fhir_group_members", "patient_data"];
    const WRITES: &'static [&'static str] = &["fhir_groups", "fhir_group_members"];
    const ROUTES: &'static [Route] = &{
        let [search, search_post, read] = hearth_fhir::read_search_routes!(
            GROUP, map, type = "Group", acl = "admin/users", nouns = "groups",
            one = "a group", schema = GROUP_SCHEMA
        );
        [
            search,
            search_post,
            read,
            Route::post("/fhir/Group", "Group.c", create)
                .acl("admin/users:write")
                .summary("Create a group of patients (member.entity references)")
                .accepts(GROUP_SCHEMA)
                .answers(GROUP_SCHEMA),
            Route::put("/fhir/Group/:id", "Group.u", update)
                .acl("admin/users:write")
                .summary("Replace a group's name, active flag and members")
                .accepts(GROUP_SCHEMA)
                .answers(GROUP_SCHEMA),
        ]
    };

    const WORDS: &'static [Words] = &[Words::new(
        "Group",
        "Patient groups (FHIR)",
        "groups of patients (FHIR Group)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![GROUP.declaration()]
    }
}

/// A Group as the routes answer and accept it.
const GROUP_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Group"])).required(),
        Prop::new("id", Schema::String),
        Prop::new("meta", META),
        Prop::new("active", Schema::Boolean),
        Prop::new("type", Schema::Enum(&["person"])),
        Prop::new("actual", Schema::Boolean),
        Prop::new("name", Schema::String),
        Prop::new("quantity", Schema::Integer),
        Prop::new(
            "member",
            Schema::Array(&Schema::Object(
                &[Prop::new("entity", REFERENCE).required()],
            )),
        ),
    ])
};

hearth_sdk::export!(FhirGroup);

const GROUP: TypeDef = TypeDef {
    resource_type: "Group",
    profiles: &[],
    columns: "g.name, g.active",
    from: "fhir_groups g",
    id: "g.uuid",
    key: "g.id",
    last_updated: "g.last_updated",
    patient: None,
    only: None,
    params: &[
        Param::new("name", "Group.name", Target::Text(&["g.name"])),
        Param::new(
            "active",
            "Group.active",
            Target::Token(&[hearth_fhir::TokenColumn::new("g.active", None)
                .codes(&[("true", "1"), ("false", "0")])]),
        ),
        Param::new("member", "Group.member.entity", MEMBERS),
        // The patient compartment's parameter for Group: the same members.
        Param::new("patient", "Group.member.entity", MEMBERS),
    ],
};

/// A group's members as a reference search target (`member`, `patient`): a group that
/// lists the patient.
const MEMBERS: Target = Target::ReferenceList {
    table: "fhir_group_members m",
    row: "m.group_id = g.id",
    column: "m.patient_uuid",
    target: "Patient",
};

/// The most members one group may list.
const MAX_MEMBERS: usize = 100_000;

/// A group row and its members as a Group.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("active", row.int("active").unwrap_or(1) != 0)
        .set("type", "person")
        .set("actual", true)
        .text("name", row.text("name"));
    let members = row
        .int("fhir_key")
        .map(|key| {
            store::query(
                "SELECT patient_uuid FROM fhir_group_members WHERE group_id = $1 \
                 ORDER BY position",
                &[Value::Integer(key)],
            )
        })
        .transpose();
    let members: Vec<Json> = match members {
        Ok(Some(rows)) => rows
            .iter()
            .filter_map(|m| m.text("patient_uuid").map(str::to_owned))
            .map(|uuid| {
                let mut member = Fields::new();
                member.set("entity", hearth_fhir::reference("Patient", &uuid, None));
                member.end()
            })
            .collect(),
        _ => Vec::new(),
    };
    out.set("quantity", members.len() as i64);
    out.list("member", members);
}

/// What a Group body sets: its name, whether it is active, and its members' uuids.
struct Body {
    name: String,
    active: bool,
    members: Vec<String>,
}

/// Reads and checks a Group body: a name (1 to 255 characters), `type` person when
/// given, `actual` true when given, members that are known patients. Every failure is
/// one issue of a 422.
fn parse(body: &Map<String, JsonValue>) -> Result<Body> {
    let mut problems = Problems::new();
    let name = match write::string(body.get("name"), "Group.name", &mut problems) {
        Some(name) if name.chars().count() <= 255 => name.to_owned(),
        Some(_) => {
            problems.add("Group.name", "must be at most 255 characters");
            String::new()
        }
        None => {
            problems.add("Group.name", "is required");
            String::new()
        }
    };
    let active = match body.get("active") {
        None | Some(JsonValue::Null) => true,
        Some(JsonValue::Bool(active)) => *active,
        Some(_) => {
            problems.add("Group.active", "must be true or false");
            true
        }
    };
    match body.get("type") {
        None | Some(JsonValue::Null) => {}
        Some(JsonValue::String(t)) if t == "person" => {}
        Some(_) => problems.add("Group.type", "only person groups are supported"),
    }
    match body.get("actual") {
        None | Some(JsonValue::Null) | Some(JsonValue::Bool(true)) => {}
        Some(_) => problems.add(
            "Group.actual",
            "only actual groups (lists of patients) are supported",
        ),
    }
    let items = write::items(body.get("member"), "Group.member", &mut problems);
    if items.len() > MAX_MEMBERS {
        problems.add(
            "Group.member",
            &format!("a group lists at most {MAX_MEMBERS} members"),
        );
    }
    let mut members: Vec<String> = Vec::new();
    for (i, member) in items.iter().enumerate().take(MAX_MEMBERS) {
        let at = format!("Group.member[{i}]");
        if member.get("inactive") == Some(&JsonValue::Bool(true)) {
            problems.add(
                &format!("{at}.inactive"),
                "inactive members are not supported: leave the member out",
            );
        }
        let reference = member.get("entity").and_then(|e| e.get("reference"));
        let Some(reference) =
            write::string(reference, &format!("{at}.entity.reference"), &mut problems)
        else {
            problems.add(&format!("{at}.entity.reference"), "is required");
            continue;
        };
        let id = match reference.trim_end_matches('/').rsplit_once('/') {
            Some((kind, id)) if kind == "Patient" || kind.ends_with("/Patient") => id,
            _ => {
                problems.add(
                    &format!("{at}.entity.reference"),
                    &format!("{reference} is not a Patient reference (Patient/<id>)"),
                );
                continue;
            }
        };
        if !hearth_sdk::request::is_uuid(id) {
            problems.add(
                &format!("{at}.entity.reference"),
                &format!("{reference}: no patient has that id"),
            );
            continue;
        }
        let id = id.to_ascii_lowercase();
        let known = store::query_one(
            "SELECT 1 AS known FROM patient_data WHERE uuid = $1",
            &[Value::Text(id.clone())],
        )?
        .is_some();
        if !known {
            problems.add(
                &format!("{at}.entity.reference"),
                &format!("{reference}: no patient has that id"),
            );
        } else if !members.contains(&id) {
            members.push(id);
        }
    }
    problems.finish()?;
    Ok(Body {
        name,
        active,
        members,
    })
}

/// Writes the group's members in order, replacing what it listed before.
fn write_members(group: i64, members: &[String]) -> Result<()> {
    store::execute(
        "DELETE FROM fhir_group_members WHERE group_id = $1",
        &[Value::Integer(group)],
    )?;
    for (position, uuid) in members.iter().enumerate() {
        let mut insert = Insert::into("fhir_group_members");
        insert
            .set("group_id", group)
            .set("position", position as i64)
            .set("patient_uuid", uuid.as_str());
        insert.run()?;
    }
    Ok(())
}

/// The answer to a write: the group as a read answers it, with `status` and
/// `Location` (`{base}/Group/{id}`); `Prefer: return=minimal` leaves the body out.
fn answer(req: &Request, id: &str, status: u16) -> Result<Response> {
    let read = hearth_fhir::read(req, &GROUP, id, map)?;
    let minimal = req
        .header("prefer")
        .is_some_and(|p| p.split([';', ',']).any(|x| x.trim() == "return=minimal"));
    let mut response = if minimal {
        let mut empty = Response::empty(status);
        empty.headers = read
            .headers
            .iter()
            .filter(|(k, _)| k == "etag")
            .cloned()
            .collect();
        empty
    } else {
        Response { status, ..read }
    };
    response = response.header("location", &format!("{}/Group/{id}", req.base_url()));
    Ok(response)
}

/// `POST /fhir/Group`: a new group from a Group resource.
fn create(req: &Request) -> Result<Response> {
    write::writer(req, &GROUP)?;
    let body = parse(&write::body(req, &GROUP, None)?)?;
    let uuid = hearth_sdk::new_uuid();
    let now = hearth_sdk::time::now().datetime();
    let mut insert = Insert::into("fhir_groups");
    insert
        .set("uuid", uuid.as_str())
        .set("name", body.name.as_str())
        .set("active", i64::from(body.active))
        .set("date_created", now.as_str())
        .set("last_updated", now.as_str());
    let group = insert.insert_id()?;
    write_members(group, &body.members)?;
    answer(req, &uuid, 201)
}

/// `PUT /fhir/Group/:id`: replaces the group's name, active flag and members. An update
/// cannot create a group (404: use POST).
fn update(req: &Request) -> Result<Response> {
    write::writer(req, &GROUP)?;
    let id = req.param("id")?.to_ascii_lowercase();
    let raw = write::body(req, &GROUP, Some(&id))?;
    let existing = if hearth_sdk::request::is_uuid(&id) {
        store::query_one(
            "SELECT id FROM fhir_groups WHERE uuid = $1",
            &[Value::Text(id.clone())],
        )?
        .and_then(|row| row.int("id"))
    } else {
        None
    };
    let Some(group) = existing else {
        return Err(hearth_fhir::error(
            404,
            "not-found",
            &format!("Group/{id} is not known (an update cannot create a group: use POST)"),
        ));
    };
    let body = parse(&raw)?;
    let mut update = Update::table("fhir_groups");
    update
        .set("name", body.name.as_str())
        .set("active", i64::from(body.active))
        .set("last_updated", hearth_sdk::time::now().datetime())
        .filter("id", group);
    update.run()?;
    write_members(group, &body.members)?;
    answer(req, &id, 200)
}
