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

use hearth_fhir::{
    AddressParts, Fields, Param, Target, TokenColumn, TypeDef, address, coding, concept,
    contact_point, human_name, reference,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Practitioner resource.
pub struct FhirPractitioner;

impl Resource for FhirPractitioner {
    const NAME: &'static str = "fhir-practitioner";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Practitioner, PractitionerRole and Person (US Core) over OpenEMR users";
    const READS: &'static [&'static str] = &["users", "facility", "list_options", "folded_text"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        PRACTITIONER, map, type = "Practitioner", acl = "admin/users", nouns = "practitioners",
        one = "a practitioner", schema = PRACTITIONER_SCHEMA;
        PRACTITIONER_ROLE, map_role, type = "PractitionerRole", acl = "admin/users",
        nouns = "practitioner roles", one = "a practitioner role", schema = PRACTITIONER_ROLE_SCHEMA;
        PERSON, map_person, type = "Person", acl = "admin/users", nouns = "persons",
        one = "a person", schema = PERSON_SCHEMA
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
              u.phone, u.phonew1, u.phonecell, u.street, u.streetb, u.city, u.state, u.zip",
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
              u.phonew1, u.phonecell, u.street, u.streetb, u.city, u.state, u.zip",
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
