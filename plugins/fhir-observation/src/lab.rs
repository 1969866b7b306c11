//! Laboratory Observations: the `procedure_result` rows of the derived table
//! (`hearth_fhir::tables::OBSERVATIONS`, category `laboratory`) as US Core laboratory
//! result Observations (3.1.1 and 7.0.0). A result recorded as a number is a
//! `valueQuantity` in its units; any other a `valueString`; none a `dataAbsentReason`.
//! OpenEMR's abnormal flag is the interpretation (HL7 v3 ObservationInterpretation), its
//! range text the reference range (low and high when it reads `low-high`).

use hearth_fhir::{Fields, coding, concept, reference};
use hearth_sdk::prelude::*;

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";

/// OpenEMR's abnormal flags (`proc_res_abnormal`) as v3 interpretation codes.
const FLAGS: &[(&str, &str, &str)] = &[
    ("no", "N", "Normal"),
    ("yes", "A", "Abnormal"),
    ("high", "H", "High"),
    ("low", "L", "Low"),
    ("vhigh", "HH", "Critical high"),
    ("vlow", "LL", "Critical low"),
];

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn quantity(value: f64, units: Option<&str>) -> Json {
    let mut out = Fields::new();
    out.set("value", value);
    if let Some(units) = units.map(str::trim).filter(|u| !u.is_empty()) {
        out.set("unit", units)
            .set("system", UCUM)
            .set("code", units);
    }
    out.end()
}

/// `low-high` (numbers) as a reference range with low and high in the result's units;
/// other text as the range's text.
pub(crate) fn range(text: &str, units: Option<&str>) -> Json {
    let mut out = Fields::new();
    let bounds = text
        .trim()
        .split_once('-')
        .and_then(|(low, high)| Some((number(low)?, number(high)?)));
    match bounds {
        Some((low, high)) => {
            out.set("low", quantity(low, units))
                .set("high", quantity(high, units));
        }
        None => {
            out.set("text", text.trim());
        }
    }
    out.end()
}

/// A laboratory row of the derived table as a US Core laboratory Observation.
pub(crate) fn map(row: &Row<'_>, out: &mut Fields) {
    out.set("status", row.text("status").unwrap_or("final"));
    out.list(
        "category",
        vec![concept(
            coding(CATEGORY, "laboratory", Some("Laboratory")),
            None,
        )],
    );
    let code = row.text("code").map(str::trim).filter(|c| !c.is_empty());
    let name = row
        .text("code_text")
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let concept_out = match code {
        Some(code) => concept(coding(LOINC, code, name), name),
        None => {
            let mut text = Fields::new();
            text.text("text", name.or(Some("Laboratory result")));
            text.end()
        }
    };
    out.set("code", concept_out);
    if let Some(patient) = row.text("patient_uuid") {
        out.set("subject", reference("Patient", patient, None));
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    if let Some(effective) = row.text("effective").and_then(hearth_fhir::date::instant) {
        out.set("effectiveDateTime", effective.as_str());
    }
    if let Some(issued) = row
        .text("fhir_last_updated")
        .and_then(hearth_fhir::date::instant)
    {
        out.set("issued", issued.as_str());
    }
    let units = row.text("t2");
    let value = row.text("t1").map(str::trim).filter(|v| !v.is_empty());
    match value {
        Some(text) => match number(text) {
            Some(n) => {
                out.set("valueQuantity", quantity(n, units));
            }
            None => {
                out.set("valueString", text);
            }
        },
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
    let flag = row.text("flag").unwrap_or("").trim();
    if let Some((_, code, display)) = FLAGS.iter().find(|(f, _, _)| *f == flag) {
        out.list(
            "interpretation",
            vec![concept(coding(INTERPRETATION, code, Some(display)), None)],
        );
    }
    if let Some(text) = row.text("ref_range").filter(|r| !r.trim().is_empty()) {
        out.list("referenceRange", vec![range(text, units)]);
    }
    if let Some(note) = row.text("note").filter(|n| !n.trim().is_empty()) {
        let mut text = Fields::new();
        text.set("text", note.trim());
        out.list("note", vec![text.end()]);
    }
}
