//! FHIR R4 `Organization` and `Location` (US Core 3.1.1 and 7.0.0) over OpenEMR's
//! `facility`, the rows `/api/facility` reads and writes. As in OpenEMR, one facility is
//! both: the Organization (who provides care, with its NPI and tax id) and the Location
//! (where care happens, managed by that Organization). Both take the facility's uuid as
//! their id.

use hearth_fhir::{
    AddressParts, Fields, Param, Target, TokenColumn, TypeDef, address, coding, concept,
    contact_point, reference,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Organization and Location resources.
pub struct FhirFacility;

impl Resource for FhirFacility {
    const NAME: &'static str = "fhir-facility";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Organization and Location (US Core) over OpenEMR facilities";
    const READS: &'static [&'static str] = &["facility", "folded_text"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        ORGANIZATION, organization, type = "Organization", acl = "admin/users",
        nouns = "organizations", one = "an organization", schema = ORGANIZATION_SCHEMA;
        LOCATION, location, type = "Location", acl = "", nouns = "locations", one = "a location",
        schema = LOCATION_SCHEMA
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
