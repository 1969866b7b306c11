//! FHIR R4 `Encounter` (US Core 3.1.1 and 7.0.0) over OpenEMR's `form_encounter`, the
//! rows `/api/patient/:puuid/encounter` reads and writes: read and search, in the
//! patient's compartment. The encounter's provider is its participant (a Practitioner),
//! its facility both the service provider (an Organization) and the location.

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

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
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        ENCOUNTER, map, type = "Encounter", acl = "encounters/auth_a", nouns = "encounters",
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
