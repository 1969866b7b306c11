//! FHIR R4 `Patient` (US Core 3.1.1 and 7.0.0) over OpenEMR's `patient_data`, the rows
//! the standard API's `/api/patient` reads and writes: read and search.

use hearth_fhir::{
    AddressParts, Fields, Param, Target, TokenColumn, TypeDef, address, coding, concept,
    contact_point, human_name, reference,
};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Patient resource.
pub struct FhirPatient;

impl Resource for FhirPatient {
    const NAME: &'static str = "fhir-patient";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Patient (US Core) over OpenEMR patient_data";
    const READS: &'static [&'static str] = &["patient_data", "users", "facility", "folded_text"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        PATIENT, map, type = "Patient", acl = "patients/demo", nouns = "patients",
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

    #[test]
    fn unknown_ids_are_404_without_a_query() {
        let mut host = MockHost::new();
        let response = host.call::<FhirPatient>(TestRequest::get("/fhir/Patient/nope"));
        assert_eq!(response.status, 404);
        assert!(host.calls().is_empty());
    }
}
