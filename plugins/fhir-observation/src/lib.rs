//! FHIR R4 `Observation` (US Core 3.1.1 and 7.0.0) over two of OpenEMR's tables, as
//! OpenEMR maps them:
//!
//! - `form_vitals` (the standard API's `/api/patient/:pid/encounter/:eid/vital`): one
//!   Observation per measured value, each with its US Core vital-sign profile, LOINC code
//!   and UCUM unit; systolic and diastolic pressure together as the blood-pressure panel
//!   (85354-9) with two components; oxygen saturation with the inhaled-oxygen flow rate
//!   and concentration as components;
//! - `history_data` (tobacco use): the US Core smoking-status Observation (72166-2);
//! - `procedure_result` (laboratory results, through their report and order): US Core
//!   laboratory result Observations, mapped in [`lab`].
//!
//! One plugin serves both tables through one `UNION ALL` derived table, so a search
//! counts, sorts and pages across vitals and smoking status at once, with one `total`.
//!
//! Ids: OpenEMR gives every (row, column) its own uuid in `uuid_mapping`. Hearth derives
//! the id from the row's uuid instead, with the uuid's version digit (the 15th character,
//! always `4` in the rows' random uuids) replaced by the measurement's slot (`0` blood
//! pressure … `c` head-circumference percentile, `d` smoking status). The id is stable (a
//! function of the row and the measurement), unique among Observations (two rows' uuids
//! differ in a random digit, and a row's measurements differ in the slot), and needs no
//! table or write of its own.
//!
//! Writes (`POST`, `PUT`) and versions (`vread`, `_history`) serve the vital signs: see
//! [`mod@write`]. Smoking status is read-only.

mod write;

mod lab;

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Observation resource.
pub struct FhirObservation;

impl Resource for FhirObservation {
    const NAME: &'static str = "fhir-observation";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Observation (US Core vital signs, smoking status and laboratory results) over form_vitals, history_data and procedure_result";
    const READS: &'static [&'static str] = &[
        "form_vitals",
        "history_data",
        "patient_data",
        "forms",
        "form_encounter",
        "facility",
        "procedure_result",
        "procedure_report",
        "procedure_order",
    ];
    const WRITES: &'static [&'static str] = &["form_vitals", "forms"];
    const ROUTES: &'static [Route] = &[
        Route::get("/fhir/Observation", "Observation.s", |r| {
            hearth_fhir::search_branches(r, &OBSERVATION, &BRANCHES, map)
        })
        .acl("patients/med")
        .summary("Search observations")
        .answers(Schema::Bundle(&OBSERVATION_SCHEMA)),
        Route::post("/fhir/Observation/_search", "Observation.s", |r| {
            hearth_fhir::search_branches(r, &OBSERVATION, &BRANCHES, map)
        })
        .acl("patients/med")
        .summary("Search observations (form body)")
        .answers(Schema::Bundle(&OBSERVATION_SCHEMA)),
        Route::get("/fhir/Observation/:id", "Observation.r", |r| {
            hearth_fhir::read_branches(r, &OBSERVATION, &BRANCHES, r.param("id")?, map)
        })
        .acl("patients/med")
        .summary("Read an observation")
        .answers(OBSERVATION_SCHEMA),
        Route::post("/fhir/Observation", "Observation.c", write::create)
            .acl("encounters/notes:write")
            .summary("Create a vital-sign observation (a new vitals form of the encounter)")
            .accepts(OBSERVATION_SCHEMA)
            .answers(OBSERVATION_SCHEMA),
        Route::put("/fhir/Observation/:id", "Observation.u", write::update)
            .acl("encounters/notes:write")
            .summary("Update a vital-sign observation (If-Match: W/\"version\")")
            .accepts(OBSERVATION_SCHEMA)
            .answers(OBSERVATION_SCHEMA),
        Route::get(
            "/fhir/Observation/:id/_history",
            "Observation.r",
            write::history,
        )
        .acl("patients/med")
        .summary("The versions of a vital-sign observation, newest first")
        .answers(Schema::Json(
            r#"{"type":"object","description":"A Bundle of type history"}"#,
        )),
        Route::get(
            "/fhir/Observation/:id/_history/:vid",
            "Observation.r",
            write::vread,
        )
        .acl("patients/med")
        .summary("Read a version of a vital-sign observation")
        .answers(OBSERVATION_SCHEMA),
    ];

    const WORDS: &'static [Words] = &[Words::new(
        "Observation",
        "Observations (FHIR)",
        "vital signs and social history (FHIR Observation)",
    )
    .categories(&[
        ("vital-signs", "vital signs"),
        ("social-history", "social history"),
        ("laboratory", "laboratory results"),
    ])];

    fn fhir_types() -> Vec<FhirType> {
        vec![OBSERVATION.declaration()]
    }
}

/// An Observation as the routes answer it.
const OBSERVATION_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Observation"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::String),
        Prop::new("category", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("code", CODEABLE_CONCEPT),
        Prop::new("subject", REFERENCE),
        Prop::new("encounter", REFERENCE),
        Prop::new("effectiveDateTime", Schema::String),
        Prop::new("issued", Schema::String),
        Prop::new("valueQuantity", QUANTITY),
        Prop::new("valueCodeableConcept", CODEABLE_CONCEPT),
        Prop::new("valueString", Schema::String),
        Prop::new("dataAbsentReason", CODEABLE_CONCEPT),
        Prop::new("interpretation", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new(
            "referenceRange",
            Schema::Array(&Schema::Object(&[
                Prop::new("low", QUANTITY),
                Prop::new("high", QUANTITY),
                Prop::new("text", Schema::String),
            ])),
        ),
        Prop::new(
            "component",
            Schema::Array(&Schema::Object(&[
                Prop::new("code", CODEABLE_CONCEPT),
                Prop::new("valueQuantity", QUANTITY),
                Prop::new("dataAbsentReason", CODEABLE_CONCEPT),
            ])),
        ),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

hearth_sdk::export!(FhirObservation);

pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";
const SNOMED: &str = "http://snomed.info/sct";
pub(crate) const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// [`OBSERVATION`]'s derived table branch by branch: a search pushes its conditions into
/// each branch (see [`hearth_fhir::branches`]).
static BRANCHES: std::sync::LazyLock<hearth_fhir::branches::Branches> =
    std::sync::LazyLock::new(hearth_fhir::tables::observation_branches);

pub(crate) const OBSERVATION: TypeDef = TypeDef {
    resource_type: "Observation",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-heart-rate",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-respiratory-rate",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-body-temperature",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-body-height",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-body-weight",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-bmi",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-pulse-oximetry",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-head-circumference",
        "http://hl7.org/fhir/us/core/StructureDefinition/pediatric-bmi-for-age",
        "http://hl7.org/fhir/us/core/StructureDefinition/pediatric-weight-for-height",
        "http://hl7.org/fhir/us/core/StructureDefinition/head-occipital-frontal-circumference-percentile",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-smokingstatus",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab",
    ],
    columns: "o.*",
    from: hearth_fhir::tables::OBSERVATIONS,
    id: "o.oid",
    key: "o.okey",
    last_updated: "o.updated",
    patient: Some("o.patient_uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "Observation.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "o.patient_uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "subject",
            "Observation.subject",
            Target::Reference {
                column: "o.patient_uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "category",
            "Observation.category",
            Target::Token(&[TokenColumn::new("o.category", Some(CATEGORY))]),
        ),
        Param::new(
            "code",
            "Observation.code",
            Target::Token(&[
                TokenColumn::new("o.code", Some(LOINC)),
                TokenColumn::new("o.code2", Some(LOINC)),
            ]),
        ),
        Param::new(
            "date",
            "Observation.effective",
            Target::DateTime("o.effective"),
        ),
        Param::new(
            "status",
            "Observation.status",
            Target::Token(&[TokenColumn::new(
                "o.status",
                Some("http://hl7.org/fhir/observation-status"),
            )]),
        ),
        Param::new(
            "encounter",
            "Observation.encounter",
            Target::Reference {
                column: "o.encounter_uuid",
                target: "Encounter",
            },
        ),
    ],
};

/// A vital sign: LOINC code, display, UCUM unit (code) and its human form.
pub(crate) struct Vital {
    pub(crate) code: &'static str,
    pub(crate) display: &'static str,
    pub(crate) ucum: &'static str,
    pub(crate) unit: &'static str,
}

/// OpenEMR stores vitals in US units, as entered; FHIR answers them with their UCUM code.
pub(crate) const VITALS: &[Vital] = &[
    Vital {
        code: "85354-9",
        display: "Blood pressure panel with all children optional",
        ucum: "mm[Hg]",
        unit: "mm[Hg]",
    },
    Vital {
        code: "8867-4",
        display: "Heart rate",
        ucum: "/min",
        unit: "/min",
    },
    Vital {
        code: "9279-1",
        display: "Respiratory rate",
        ucum: "/min",
        unit: "/min",
    },
    Vital {
        code: "8310-5",
        display: "Body temperature",
        ucum: "[degF]",
        unit: "degF",
    },
    Vital {
        code: "8302-2",
        display: "Body height",
        ucum: "[in_i]",
        unit: "in",
    },
    Vital {
        code: "29463-7",
        display: "Body weight",
        ucum: "[lb_av]",
        unit: "lb",
    },
    Vital {
        code: "39156-5",
        display: "Body mass index (BMI) [Ratio]",
        ucum: "kg/m2",
        unit: "kg/m2",
    },
    Vital {
        code: "59408-5",
        display: "Oxygen saturation in Arterial blood by Pulse oximetry",
        ucum: "%",
        unit: "%",
    },
    Vital {
        code: "9843-4",
        display: "Head Occipital-frontal circumference",
        ucum: "[in_i]",
        unit: "in",
    },
    Vital {
        code: "59576-9",
        display: "Body mass index (BMI) [Percentile] Per age and sex",
        ucum: "%",
        unit: "%",
    },
    Vital {
        code: "77606-2",
        display: "Weight-for-length Per age and sex",
        ucum: "%",
        unit: "%",
    },
    Vital {
        code: "8289-1",
        display: "Head Occipital-frontal circumference Percentile",
        ucum: "%",
        unit: "%",
    },
];

/// OpenEMR's `smoking_status` list (migrations 0450): option id, SNOMED CT code, title.
const SMOKING: &[(&str, &str, &str)] = &[
    ("1", "449868002", "Current every day smoker"),
    ("2", "428041000124106", "Current some day smoker"),
    ("3", "8517006", "Former smoker"),
    ("4", "266919005", "Never smoker"),
    ("5", "77176002", "Smoker, current status unknown"),
    ("9", "266927001", "Unknown if ever smoked"),
    ("15", "428071000124103", "Heavy tobacco smoker"),
    ("16", "428061000124105", "Light tobacco smoker"),
];

fn quantity(value: f64, unit: &str, ucum: &str) -> Json {
    let mut out = Fields::new();
    out.set("value", value)
        .set("unit", unit)
        .set("system", UCUM)
        .set("code", ucum);
    out.end()
}

fn number(text: Option<&str>) -> Option<f64> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|n| n.is_finite())
}

/// A component: its LOINC code and value, or `dataAbsentReason` when not measured.
fn component(code: &str, display: &str, value: Option<f64>, unit: &str, ucum: &str) -> Json {
    let mut out = Fields::new();
    out.set("code", concept(coding(LOINC, code, Some(display)), None));
    match value {
        Some(value) => {
            out.set("valueQuantity", quantity(value, unit, ucum));
        }
        None => {
            out.set(
                "dataAbsentReason",
                concept(
                    coding(
                        "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                        "unknown",
                        Some("Unknown"),
                    ),
                    None,
                ),
            );
        }
    }
    out.end()
}

/// A row of the derived table as an Observation.
pub(crate) fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let code = row.text("code").unwrap_or_default();
    let category = row.text("category").unwrap_or_default();
    if category == "laboratory" {
        lab::map(row, out);
        return;
    }
    out.set("status", "final");
    let category_display = if category == "vital-signs" {
        "Vital Signs"
    } else {
        "Social History"
    };
    out.list(
        "category",
        vec![concept(
            coding(CATEGORY, category, Some(category_display)),
            None,
        )],
    );
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    let effective = row.text("effective").and_then(hearth_fhir::date::instant);
    if code == "72166-2" {
        out.set(
            "code",
            concept(coding(LOINC, code, Some("Tobacco smoking status")), None),
        );
        if let Some(effective) = &effective {
            out.set("effectiveDateTime", effective.as_str());
            out.set("issued", effective.as_str());
        }
        smoking_value(row.text("t1").unwrap_or_default(), out);
        return;
    }
    let Some(vital) = VITALS.iter().find(|v| v.code == code) else {
        return;
    };
    let mut codings = vec![coding(LOINC, vital.code, Some(vital.display))];
    if let Some(second) = row.text("code2") {
        codings.push(coding(
            LOINC,
            second,
            Some("Oxygen saturation in Arterial blood"),
        ));
    }
    let mut concept_out = Fields::new();
    concept_out
        .list("coding", codings)
        .text("text", Some(vital.display));
    out.set("code", concept_out.end());
    if let Some(effective) = &effective {
        out.set("effectiveDateTime", effective.as_str());
    }
    match code {
        "85354-9" => {
            let systolic = number(row.text("t1"));
            let diastolic = number(row.text("t2"));
            out.list(
                "component",
                vec![
                    component(
                        "8480-6",
                        "Systolic blood pressure",
                        systolic,
                        "mm[Hg]",
                        "mm[Hg]",
                    ),
                    component(
                        "8462-4",
                        "Diastolic blood pressure",
                        diastolic,
                        "mm[Hg]",
                        "mm[Hg]",
                    ),
                ],
            );
        }
        _ => {
            if let Some(value) = row.real("num") {
                out.set("valueQuantity", quantity(value, vital.unit, vital.ucum));
            }
            if code == "59408-5" {
                let mut components = Vec::new();
                if let Some(flow) = row.real("c1") {
                    components.push(component(
                        "3151-8",
                        "Inhaled oxygen flow rate",
                        Some(flow),
                        "L/min",
                        "L/min",
                    ));
                }
                if let Some(concentration) = row.real("c2") {
                    components.push(component(
                        "3150-0",
                        "Inhaled oxygen concentration",
                        Some(concentration),
                        "%",
                        "%",
                    ));
                }
                out.list("component", components);
            }
        }
    }
    // The method of a temperature, the status of a BMI and the note: free text.
    let notes: Vec<Json> = [
        row.text("t1").filter(|_| code != "85354-9"),
        row.text("note"),
    ]
    .into_iter()
    .flatten()
    .filter(|t| !t.trim().is_empty())
    .map(|t| {
        let mut note = Fields::new();
        note.set("text", t.trim());
        note.end()
    })
    .collect();
    out.list("note", notes);
}

/// `tobacco` is `note|status|date`; the status is an option of `smoking_status`.
fn smoking_value(tobacco: &str, out: &mut Fields) {
    let mut parts = tobacco.split('|');
    let note = parts.next().unwrap_or_default().trim();
    let status = parts.next().unwrap_or_default().trim();
    let value = match SMOKING.iter().find(|(id, _, _)| *id == status) {
        Some((_, code, title)) => concept(coding(SNOMED, code, Some(title)), Some(title)),
        // A status outside the list: its text, as recorded.
        None if !status.is_empty() => {
            let mut only_text = Fields::new();
            only_text.set("text", status);
            only_text.end()
        }
        // No status, only a note: the note is what was recorded.
        None => {
            let mut only_text = Fields::new();
            only_text.set(
                "text",
                if note.is_empty() {
                    tobacco.trim()
                } else {
                    note
                },
            );
            only_text.end()
        }
    };
    out.set("valueCodeableConcept", value);
    if !note.is_empty() {
        let mut text = Fields::new();
        text.set("text", note);
        out.list("note", vec![text.end()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const ID: &str = "90cde167-0000-0000-8000-000000000001";
    const PUUID: &str = "90cde167-0000-4000-8000-0000000000aa";

    fn row(code: &str, num: Value, t1: Value, t2: Value) -> Rows {
        Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "fhir_profiles",
                "code",
                "code2",
                "category",
                "patient_uuid",
                "effective",
                "num",
                "t1",
                "t2",
                "c1",
                "c2",
            ],
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                16.into(),
                "http://a http://b|7.0.0".into(),
                code.into(),
                if code == "59408-5" {
                    "2708-6".into()
                } else {
                    Value::Null
                },
                if code == "72166-2" {
                    "social-history".into()
                } else {
                    "vital-signs".into()
                },
                PUUID.into(),
                "2024-05-06 07:00:00".into(),
                num,
                t1,
                t2,
                Value::Real(2.0),
                Value::Null,
            ]],
        )
    }

    fn read(rows: Rows) -> serde_json::Value {
        let mut host = MockHost::new().on_query("o.oid AS fhir_id", rows);
        let response =
            host.call::<FhirObservation>(TestRequest::get(&format!("/fhir/Observation/{ID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        response.body_json()
    }

    #[test]
    fn blood_pressure_is_a_panel_with_two_components() {
        let o = read(row("85354-9", Value::Null, "120".into(), "80".into()));
        assert_eq!(
            o["meta"]["profile"][1], "http://b|7.0.0",
            "the row's profiles"
        );
        assert_eq!(o["code"]["coding"][0]["code"], "85354-9");
        assert_eq!(o["category"][0]["coding"][0]["code"], "vital-signs");
        assert_eq!(o["subject"]["reference"], format!("Patient/{PUUID}"));
        assert_eq!(o["effectiveDateTime"], "2024-05-06T07:00:00Z");
        assert_eq!(o["component"][0]["code"]["coding"][0]["code"], "8480-6");
        assert_eq!(o["component"][0]["valueQuantity"]["value"], 120.0);
        assert_eq!(o["component"][1]["valueQuantity"]["code"], "mm[Hg]");
        assert!(o.get("valueQuantity").is_none());
        assert!(o.get("note").is_none());
    }

    #[test]
    fn a_measurement_has_its_ucum_quantity() {
        let o = read(row("29463-7", Value::Real(150.5), Value::Null, Value::Null));
        assert_eq!(o["valueQuantity"]["value"], 150.5);
        assert_eq!(o["valueQuantity"]["code"], "[lb_av]");
        assert_eq!(o["valueQuantity"]["system"], UCUM);
        let o = read(row("59408-5", Value::Real(98.0), Value::Null, Value::Null));
        assert_eq!(o["code"]["coding"][1]["code"], "2708-6");
        assert_eq!(o["component"][0]["code"]["coding"][0]["code"], "3151-8");
        assert_eq!(o["component"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn laboratory_ranges_read_low_and_high_when_numeric() {
        let r = lab::range("70-99", Some("mg/dL")).to_value();
        assert_eq!(r["low"]["value"], 70.0);
        assert_eq!(r["high"]["code"], "mg/dL");
        let r = lab::range("negative", None).to_value();
        assert_eq!(r["text"], "negative");
    }

    #[test]
    fn smoking_status_reads_the_tobacco_field() {
        let o = read(row(
            "72166-2",
            Value::Null,
            "one pack a day|1|2020-01-01".into(),
            Value::Null,
        ));
        assert_eq!(o["category"][0]["coding"][0]["code"], "social-history");
        assert_eq!(o["valueCodeableConcept"]["coding"][0]["code"], "449868002");
        assert_eq!(o["valueCodeableConcept"]["coding"][0]["system"], SNOMED);
        assert_eq!(o["note"][0]["text"], "one pack a day");
    }
}
