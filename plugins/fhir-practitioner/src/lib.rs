//! FHIR R4 `Practitioner` (US Core 3.1.1 and 7.0.0) over OpenEMR's practitioners: the
//! rows of `users` with an NPI, which `/api/practitioner` reads and writes.

use hearth_fhir::{
    AddressParts, Fields, Param, Target, TokenColumn, TypeDef, address, contact_point, human_name,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Practitioner resource.
pub struct FhirPractitioner;

impl Resource for FhirPractitioner {
    const NAME: &'static str = "fhir-practitioner";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Practitioner (US Core) over OpenEMR users with an NPI";
    const READS: &'static [&'static str] = &["users", "facility"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        PRACTITIONER, map, type = "Practitioner", acl = "admin/users", nouns = "practitioners",
        one = "a practitioner", schema = PRACTITIONER_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "Practitioner",
        "Practitioners (FHIR)",
        "practitioners (FHIR Practitioner)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![PRACTITIONER.declaration()]
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

hearth_sdk::export!(FhirPractitioner);

const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
const PHONES: &[TokenColumn] = &[
    TokenColumn::new("u.phone", None),
    TokenColumn::new("u.phonew1", None),
    TokenColumn::new("u.phonecell", None),
];
const TELECOM: &[TokenColumn] = &[
    TokenColumn::new("u.phone", None),
    TokenColumn::new("u.phonew1", None),
    TokenColumn::new("u.phonecell", None),
    TokenColumn::new("u.email", None),
];

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
    params: &[
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
        Param::new(
            "address",
            "Practitioner.address",
            Target::Text(&["u.street", "u.streetb", "u.city", "u.state", "u.zip"]),
        ),
        Param::new(
            "address-city",
            "Practitioner.address.city",
            Target::Text(&["u.city"]),
        ),
        Param::new(
            "address-state",
            "Practitioner.address.state",
            Target::Text(&["u.state"]),
        ),
        Param::new(
            "address-postalcode",
            "Practitioner.address.postalCode",
            Target::Text(&["u.zip"]),
        ),
        Param::new(
            "phone",
            "Practitioner.telecom.where(system='phone')",
            Target::Token(PHONES),
        ),
        Param::new(
            "email",
            "Practitioner.telecom.where(system='email')",
            Target::Token(&[TokenColumn::new("u.email", None)]),
        ),
        Param::new("telecom", "Practitioner.telecom", Target::Token(TELECOM)),
    ],
};

/// A practitioner row as a US Core Practitioner.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let mut npi = Fields::new();
    npi.set("system", NPI).text("value", row.text("npi"));
    out.list("identifier", vec![npi.end()]);
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
