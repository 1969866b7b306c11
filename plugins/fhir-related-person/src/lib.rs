//! FHIR R4 `RelatedPerson` (US Core 7.0.0) from what OpenEMR serves it from: a `person`,
//! related to a patient through its `contact` and a `contact_relation` (the relationship
//! an HL7 v3 RoleCode), with the contact's first phone and e-mail (`contact_telecom`) and
//! its primary address (`contact_address`, `addresses`). Read and search, in the patient's
//! compartment. The id is the relation's: one person may be related to several patients.

use hearth_fhir::{
    AddressParts, Fields, Param, Target, TokenColumn, TypeDef, coding, concept, contact_point,
    human_name, reference,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR RelatedPerson resource.
pub struct FhirRelatedPerson;

impl Resource for FhirRelatedPerson {
    const NAME: &'static str = "fhir-related-person";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR RelatedPerson (US Core) over OpenEMR person, contact and contact_relation";
    const READS: &'static [&'static str] = &[
        "person",
        "contact",
        "contact_relation",
        "contact_telecom",
        "contact_address",
        "addresses",
        "patient_data",
        "list_options",
        // The author organization of the Provenance `_revinclude` adds.
        "facility",
    ];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        RELATED_PERSON, map, type = "RelatedPerson", acl = "patients/demo",
        nouns = "related persons", one = "a related person", schema = RELATED_PERSON_SCHEMA
    );
    const WORDS: &'static [Words] = &[Words::new(
        "RelatedPerson",
        "Related persons (FHIR)",
        "the people related to a patient (FHIR RelatedPerson)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![RELATED_PERSON.declaration()]
    }
}

hearth_sdk::export!(FhirRelatedPerson);

/// A RelatedPerson as the routes answer it.
const RELATED_PERSON_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["RelatedPerson"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("active", Schema::Boolean).required(),
        Prop::new("patient", REFERENCE).required(),
        Prop::new("relationship", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("name", Schema::Array(&HUMAN_NAME)),
        Prop::new("telecom", Schema::Array(&CONTACT_POINT)),
        Prop::new("address", Schema::Array(&ADDRESS)),
        Prop::new(
            "gender",
            Schema::Enum(&["male", "female", "other", "unknown"]),
        ),
        Prop::new("birthDate", Schema::String),
        Prop::new("period", PERIOD),
    ])
};

const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";

const RELATED_PERSON: TypeDef = TypeDef {
    resource_type: "RelatedPerson",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-relatedperson",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-relatedperson|7.0.0",
    ],
    columns: "per.title, per.first_name, per.middle_name, per.last_name, per.gender, \
              CAST(per.birth_date AS TEXT) AS birth_date, per.active AS person_active, \
              cr.active AS relation_active, cr.relationship, lo.title AS relationship_title, \
              CAST(cr.start_date AS TEXT) AS start_date, CAST(cr.end_date AS TEXT) AS end_date, \
              p.uuid AS patient_uuid, p.fname AS patient_fname, p.lname AS patient_lname, \
              (SELECT t.value FROM contact_telecom t WHERE t.contact_id = c.id \
               AND t.system = 'phone' AND t.status = 'A' ORDER BY t.rank, t.id LIMIT 1) AS phone, \
              (SELECT t.value FROM contact_telecom t WHERE t.contact_id = c.id \
               AND t.system = 'email' AND t.status = 'A' ORDER BY t.rank, t.id LIMIT 1) AS email, \
              a.line1, a.line2, a.city, a.state, a.zip, a.country",
    from: "contact_relation cr JOIN contact c ON c.id = cr.contact_id \
           AND c.foreign_table_name = 'person' \
           JOIN person per ON per.id = c.foreign_id \
           JOIN patient_data p ON cr.target_table = 'patient_data' AND p.pid = cr.target_id \
           LEFT JOIN list_options lo ON lo.list_id = 'related_person_relationship' \
           AND lo.option_id = cr.relationship \
           LEFT JOIN addresses a ON a.id = (SELECT ca.address_id FROM contact_address ca \
           WHERE ca.contact_id = c.id AND ca.status = 'A' ORDER BY ca.priority, ca.id LIMIT 1)",
    id: "cr.uuid",
    key: "cr.id",
    last_updated: "COALESCE(cr.updated_date, cr.created_date, per.updated_date, per.created_date)",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "RelatedPerson.patient",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "relationship",
            "RelatedPerson.relationship",
            Target::Token(&[TokenColumn::new("cr.relationship", Some(ROLE_CODE)).text("lo.title")]),
        ),
        Param::new(
            "name",
            "RelatedPerson.name",
            Target::Text(&["per.first_name", "per.last_name", "per.middle_name"]),
        ),
    ],
};

fn filled(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// A relation of a person to a patient as a US Core RelatedPerson.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let active =
        row.int("person_active").unwrap_or(1) != 0 && row.int("relation_active").unwrap_or(1) != 0;
    out.set("active", active);
    let patient = row.text("patient_uuid").unwrap_or_default();
    let patient_name = [row.text("patient_fname"), row.text("patient_lname")]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    out.set(
        "patient",
        reference("Patient", patient, Some(patient_name.as_str())),
    );
    let relationship = match filled(row.text("relationship")) {
        Some(code) => {
            let title = row.text("relationship_title");
            concept(coding(ROLE_CODE, code, title), title)
        }
        None => concept(
            coding(
                "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                "UNK",
                Some("Unknown"),
            ),
            None,
        ),
    };
    out.list("relationship", vec![relationship]);
    let name = human_name(
        row.text("last_name"),
        [row.text("first_name"), row.text("middle_name")],
        row.text("title"),
        None,
    );
    if name.as_str() != r#"{"use":"official"}"# {
        out.list("name", vec![name]);
    }
    let telecom: Vec<Json> = [
        contact_point("phone", "home", row.text("phone")),
        contact_point("email", "home", row.text("email")),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.list("telecom", telecom);
    let address = hearth_fhir::address(AddressParts {
        use_: Some("home"),
        lines: [row.text("line1"), row.text("line2")],
        city: row.text("city"),
        district: None,
        state: row.text("state"),
        postal_code: row.text("zip"),
        country: row.text("country"),
    });
    out.list("address", address.into_iter().collect());
    let gender = match filled(row.text("gender"))
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("male" | "m") => Some("male"),
        Some("female" | "f") => Some("female"),
        Some("other") => Some("other"),
        Some(_) => Some("unknown"),
        None => None,
    };
    if let Some(gender) = gender {
        out.set("gender", gender);
    }
    out.text(
        "birthDate",
        row.text("birth_date").map(|d| d.get(..10).unwrap_or(d)),
    );
    let mut period = Fields::new();
    period
        .text(
            "start",
            row.text("start_date").map(|d| d.get(..10).unwrap_or(d)),
        )
        .text(
            "end",
            row.text("end_date").map(|d| d.get(..10).unwrap_or(d)),
        );
    out.object("period", period.end());
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-0000000000d1";
    const PATIENT: &str = "90cde167-0000-4000-8000-000000000001";

    #[test]
    fn a_mother_is_a_related_person_of_the_patient() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "first_name",
                "last_name",
                "gender",
                "relationship",
                "relationship_title",
                "patient_uuid",
                "phone",
                "city",
                "person_active",
                "relation_active",
            ],
            vec![vec![
                UUID.into(),
                "2024-05-01 07:08:09".into(),
                1.into(),
                "Mary".into(),
                "Adams".into(),
                "Female".into(),
                "MTH".into(),
                "Mother".into(),
                PATIENT.into(),
                "555-0100".into(),
                "Boston".into(),
                1.into(),
                1.into(),
            ]],
        );
        let mut host = MockHost::new().on_query("WHERE cr.uuid = $1", rows);
        let response = host
            .call::<FhirRelatedPerson>(TestRequest::get(&format!("/fhir/RelatedPerson/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let r = response.body_json();
        assert_eq!(r["active"], true);
        assert_eq!(r["relationship"][0]["coding"][0]["code"], "MTH");
        assert_eq!(r["patient"]["reference"], format!("Patient/{PATIENT}"));
        assert_eq!(r["name"][0]["family"], "Adams");
        assert_eq!(r["telecom"][0]["value"], "555-0100");
        assert_eq!(r["address"][0]["city"], "Boston");
        assert_eq!(r["gender"], "female");
    }
}
