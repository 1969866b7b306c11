//! FHIR R4 `Organization` and `Location` (US Core 3.1.1 and 7.0.0) over OpenEMR's
//! `facility`, the rows `/api/facility` reads and writes. As in OpenEMR, one facility is
//! both: the Organization (who provides care, with its NPI and tax id) and the Location
//! (where care happens, managed by that Organization). Both take the facility's uuid as
//! their id. Organizations are also created and updated (`POST`, `PUT`), with versions,
//! vread and history.

use hearth_fhir::write::{self, Problems};
use hearth_fhir::{
    AddressParts, Fields, Param, Target, TokenColumn, TypeDef, address, coding, concept,
    contact_point, reference,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;
use serde_json::{Map, Value as JsonValue};

/// The FHIR Organization and Location resources.
pub struct FhirFacility;

impl Resource for FhirFacility {
    const NAME: &'static str = "fhir-facility";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Organization and Location (US Core) over OpenEMR facilities";
    const READS: &'static [&'static str] = &["facility", "folded_text"];
    const WRITES: &'static [&'static str] = &["facility"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_write_routes!(
        ORGANIZATION, organization, create = create, update = update, type = "Organization",
        acl = "admin/users", write_acl = "admin/super:write", nouns = "organizations",
        one = "an organization", schema = ORGANIZATION_SCHEMA,
        more = [
            Route::get("/fhir/Location", "Location.s", |r| {
                hearth_fhir::search(r, &LOCATION, location)
            })
            .acl("")
            .summary("Search locations")
            .answers(Schema::Bundle(&LOCATION_SCHEMA)),
            Route::post("/fhir/Location/_search", "Location.s", |r| {
                hearth_fhir::search(r, &LOCATION, location)
            })
            .acl("")
            .summary("Search locations (form body)")
            .answers(Schema::Bundle(&LOCATION_SCHEMA)),
            Route::get("/fhir/Location/:id", "Location.r", |r| {
                hearth_fhir::read(r, &LOCATION, r.param("id")?, location)
            })
            .acl("")
            .summary("Read a location")
            .answers(LOCATION_SCHEMA),
        ]
    );

    const WORDS: &'static [Words] = &[
        Words::new(
            "Organization",
            "Organizations (FHIR)",
            "facilities as organizations (FHIR Organization)",
        ),
        Words::new(
            "Location",
            "Locations (FHIR)",
            "facilities as locations (FHIR Location)",
        ),
    ];

    fn fhir_types() -> Vec<FhirType> {
        vec![ORGANIZATION.declaration(), LOCATION.declaration()]
    }
}

/// An Organization as the routes answer it.
const ORGANIZATION_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Organization"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("identifier", Schema::Array(&IDENTIFIER)),
        Prop::new("active", Schema::Boolean),
        Prop::new("type", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("name", Schema::String),
        Prop::new("telecom", Schema::Array(&CONTACT_POINT)),
        Prop::new("address", Schema::Array(&ADDRESS)),
    ])
};

/// A Location as the routes answer it.
const LOCATION_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Location"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::String),
        Prop::new("name", Schema::String),
        Prop::new("mode", Schema::String),
        Prop::new("telecom", Schema::Array(&CONTACT_POINT)),
        Prop::new("address", ADDRESS),
        Prop::new("managingOrganization", REFERENCE),
    ])
};

hearth_sdk::export!(FhirFacility);

const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
/// The US employer identification number (OpenEMR's `federal_ein`).
const TAX_ID: &str = "urn:oid:2.16.840.1.113883.4.4";
const ORGANIZATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
const COLUMNS: &str = "f.name, f.phone, f.fax, f.email, f.website, f.street, f.city, f.state, \
                       f.postal_code, f.country_code, f.facility_npi, f.federal_ein, \
                       f.inactive, f.organization_type";
const ACTIVE: &[TokenColumn] =
    &[TokenColumn::new("f.inactive", None).codes(&[("true", "0"), ("false", "1")])];

const ORGANIZATION: TypeDef = TypeDef {
    resource_type: "Organization",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization|7.0.0",
    ],
    columns: COLUMNS,
    from: "facility f",
    id: "f.uuid",
    key: "f.id",
    last_updated: "f.last_updated",
    patient: None,
    only: None,
    params: &hearth_fhir::contact_params!(
        type = "Organization",
        address = ["f.street", "f.city", "f.state", "f.postal_code", "f.country_code"],
        city = "f.city",
        state = "f.state",
        postalcode = "f.postal_code",
        country = "f.country_code",
        phone = ["f.phone"],
        email = ["f.email"],
        params = [
            Param::new("name", "Organization.name", Target::Text(&["f.name"])),
            Param::new(
                "identifier",
                "Organization.identifier",
                Target::Token(&[
                    TokenColumn::new("f.facility_npi", Some(NPI)),
                    TokenColumn::new("f.federal_ein", Some(TAX_ID)),
                ]),
            ),
            Param::new("active", "Organization.active", Target::Token(ACTIVE)),
        ],
    ),
};

const LOCATION: TypeDef = TypeDef {
    resource_type: "Location",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-location",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-location|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-location|7.0.0",
    ],
    columns: COLUMNS,
    from: "facility f",
    id: "f.uuid",
    key: "f.id",
    last_updated: "f.last_updated",
    patient: None,
    only: None,
    params: &hearth_fhir::contact_params!(
        type = "Location",
        address = ["f.street", "f.city", "f.state", "f.postal_code", "f.country_code"],
        city = "f.city",
        state = "f.state",
        postalcode = "f.postal_code",
        country = "f.country_code",
        phone = ["f.phone"],
        email = ["f.email"],
        params = [
            Param::new("name", "Location.name", Target::Text(&["f.name"])),
            Param::new(
                "status",
                "Location.status",
                Target::Token(&[TokenColumn::new("f.inactive", None)
                    .codes(&[("active", "0"), ("inactive", "1")])]),
            ),
            Param::new(
                "organization",
                "Location.managingOrganization",
                Target::Reference {
                    column: "f.uuid",
                    target: "Organization",
                },
            ),
        ],
    ),
};

/// A facility's phone, fax and e-mail address.
fn telecom(row: &Row<'_>) -> Vec<Json> {
    [
        contact_point("phone", "work", row.text("phone")),
        contact_point("fax", "work", row.text("fax")),
        contact_point("email", "work", row.text("email")),
        contact_point("url", "work", row.text("website")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn facility_address(row: &Row<'_>) -> Option<Json> {
    address(AddressParts {
        use_: Some("work"),
        lines: [row.text("street"), None],
        city: row.text("city"),
        state: row.text("state"),
        postal_code: row.text("postal_code"),
        country: row.text("country_code"),
        ..AddressParts::default()
    })
}

/// A facility as a US Core Organization.
fn organization(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let identifiers: Vec<Json> = [(NPI, "facility_npi"), (TAX_ID, "federal_ein")]
        .into_iter()
        .filter_map(|(system, column)| {
            let value = row.text(column).filter(|v| !v.trim().is_empty())?;
            let mut id = Fields::new();
            id.set("system", system).set("value", value.trim());
            Some(id.end())
        })
        .collect();
    out.list("identifier", identifiers);
    out.set("active", row.int("inactive").unwrap_or(0) == 0);
    let kind = row.text("organization_type").unwrap_or("prov");
    let display = match kind {
        "prov" => Some("Healthcare Provider"),
        "ins" => Some("Insurance Company"),
        "pay" => Some("Payer"),
        _ => None,
    };
    out.list(
        "type",
        vec![concept(coding(ORGANIZATION_TYPE, kind, display), None)],
    );
    out.text("name", row.text("name"));
    out.list("telecom", telecom(row));
    out.list("address", facility_address(row).into_iter().collect());
}

/// A facility as a US Core Location, managed by the facility's Organization.
fn location(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let inactive = row.int("inactive").unwrap_or(0) != 0;
    out.set("status", if inactive { "inactive" } else { "active" });
    out.text("name", row.text("name"));
    out.set("mode", "instance");
    out.list("telecom", telecom(row));
    if let Some(address) = facility_address(row) {
        out.set("address", address);
    }
    if let Some(id) = row.text("fhir_id") {
        out.set(
            "managingOrganization",
            reference("Organization", id, row.text("name")),
        );
    }
}

/// `POST /fhir/Organization`: a new facility from a US Core Organization.
fn create(req: &Request) -> Result<Response> {
    write::writer(req, &ORGANIZATION)?;
    let body = write::body(req, &ORGANIZATION, None)?;
    let columns = columns(&body, true)?;
    let uuid = hearth_sdk::new_uuid();
    let now = hearth_sdk::time::now().datetime();
    let mut insert = Insert::into("facility");
    insert
        .set("uuid", uuid.as_str())
        .set("date_created", now.as_str())
        .set("last_updated", now.as_str());
    for (column, value) in columns {
        insert.set(column, value);
    }
    insert.run()?;
    write::answer(req, &ORGANIZATION, &uuid, 201, organization)
}

/// `PUT /fhir/Organization/:id`: replaces what the resource maps to (see [`columns`]).
fn update(req: &Request) -> Result<Response> {
    write::writer(req, &ORGANIZATION)?;
    let id = req.param("id")?.to_ascii_lowercase();
    let body = write::body(req, &ORGANIZATION, Some(&id))?;
    let from = write::before_update(req, &ORGANIZATION, &id)?;
    let columns = columns(&body, false)?;
    let mut update = Update::table("facility");
    for (column, value) in columns {
        update.set(column, value);
    }
    update
        .set("last_updated", hearth_sdk::time::now().datetime())
        .filter("uuid", id.as_str());
    update.run()?;
    write::after_update(req, &ORGANIZATION, &id, from)?;
    write::answer(req, &ORGANIZATION, &id, 200, organization)
}

/// The `facility` columns an Organization sets, with OpenEMR's facility rules as a 422:
/// a name of 2 to 255 characters; an NPI identifier of 10 to 15 digits, required on
/// create. Every mapped column is set, an absent element clearing it (the NPI only
/// changes with a given NPI); `type` and the columns FHIR does not map keep their values.
fn columns(body: &Map<String, JsonValue>, create: bool) -> Result<Vec<(&'static str, Value)>> {
    let mut problems = Problems::new();
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let text = |v: Option<&str>| Value::Text(v.unwrap_or_default().to_owned());
    match write::string(body.get("name"), "Organization.name", &mut problems) {
        Some(name) if (2..=255).contains(&name.chars().count()) => {
            out.push(("name", text(Some(name))))
        }
        Some(_) => problems.add("Organization.name", "must be 2 to 255 characters"),
        None => problems.add("Organization.name", "is required"),
    }
    match body.get("active") {
        None | Some(JsonValue::Null) => out.push(("inactive", Value::Integer(0))),
        Some(JsonValue::Bool(active)) => out.push(("inactive", Value::Integer(i64::from(!active)))),
        Some(_) => problems.add("Organization.active", "must be true or false"),
    }
    let mut npi = None;
    let mut tax_id = None;
    for (i, identifier) in write::items(
        body.get("identifier"),
        "Organization.identifier",
        &mut problems,
    )
    .iter()
    .enumerate()
    {
        let at = format!("Organization.identifier[{i}]");
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
            (Some(NPI), Some(v)) => {
                if v.len() < 10 || v.len() > 15 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    problems.add(&format!("{at}.value"), "an NPI is 10 to 15 digits");
                }
                npi = Some(v);
            }
            (Some(TAX_ID), Some(v)) => tax_id = Some(v),
            _ => {}
        }
    }
    match npi {
        Some(npi) => out.push(("facility_npi", text(Some(npi)))),
        None if create => problems.add(
            "Organization.identifier",
            &format!("an NPI ({NPI}) is required"),
        ),
        None => {}
    }
    out.push(("federal_ein", text(tax_id)));
    let mut contacts = [
        ("phone", None),
        ("fax", None),
        ("email", None),
        ("website", None),
    ];
    for (i, point) in write::items(body.get("telecom"), "Organization.telecom", &mut problems)
        .iter()
        .enumerate()
    {
        let at = format!("Organization.telecom[{i}]");
        let system = write::string(point.get("system"), &format!("{at}.system"), &mut problems);
        let Some(value) = write::string(point.get("value"), &format!("{at}.value"), &mut problems)
        else {
            continue;
        };
        let slot = match system {
            Some("phone") => 0,
            Some("fax") => 1,
            Some("email") if value.contains('@') => 2,
            Some("email") => {
                problems.add(&format!("{at}.value"), "is not an email address");
                continue;
            }
            Some("url") => 3,
            _ => continue,
        };
        contacts[slot].1 = contacts[slot].1.or(Some(value));
    }
    for (column, value) in contacts {
        out.push((column, text(value)));
    }
    let addresses = write::items(body.get("address"), "Organization.address", &mut problems);
    let address = addresses.first();
    let field = |key: &str, problems: &mut Problems| {
        write::string(
            address.and_then(|a| a.get(key)),
            &format!("Organization.address.{key}"),
            problems,
        )
    };
    let lines = write::items(
        address.and_then(|a| a.get("line")),
        "Organization.address.line",
        &mut problems,
    );
    let street: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.as_str().map(str::trim).filter(|l| !l.is_empty()))
        .collect();
    out.push(("street", text(Some(street.join(", ").as_str()))));
    out.push(("city", text(field("city", &mut problems))));
    out.push(("state", text(field("state", &mut problems))));
    out.push(("postal_code", text(field("postalCode", &mut problems))));
    out.push(("country_code", text(field("country", &mut problems))));
    problems.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-000000000003";

    fn rows() -> Rows {
        Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "name",
                "phone",
                "facility_npi",
                "federal_ein",
                "inactive",
                "city",
            ],
            vec![vec![
                UUID.into(),
                "2024-05-06 07:08:09".into(),
                3.into(),
                "Mercy Clinic".into(),
                "555-0100".into(),
                "1234567893".into(),
                "".into(),
                0.into(),
                "Boston".into(),
            ]],
        )
    }

    #[test]
    fn a_facility_reads_as_an_organization_and_a_location() {
        let mut host = MockHost::new().on_query("WHERE f.uuid = $1", rows());
        let response =
            host.call::<FhirFacility>(TestRequest::get(&format!("/fhir/Organization/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let org = response.body_json();
        assert_eq!(org["resourceType"], "Organization");
        assert_eq!(
            org["identifier"],
            serde_json::json!([{"system": NPI, "value": "1234567893"}]),
            "no blank tax id"
        );
        assert_eq!(org["active"], true);
        assert_eq!(org["type"][0]["coding"][0]["code"], "prov");
        let response =
            host.call::<FhirFacility>(TestRequest::get(&format!("/fhir/Location/{UUID}")));
        let loc = response.body_json();
        assert_eq!(loc["status"], "active");
        assert_eq!(loc["address"]["city"], "Boston");
        assert_eq!(
            loc["managingOrganization"]["reference"],
            format!("Organization/{UUID}")
        );
    }
}
