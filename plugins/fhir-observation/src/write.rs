//! Writes and versions of the vital-sign Observations.
//!
//! How one Observation maps to `form_vitals` (one row per measurement set, registered in
//! an encounter by a `forms` row, as the standard API's
//! `/api/patient/:pid/encounter/:eid/vital` writes it):
//!
//! - `POST /fhir/Observation` writes a new `form_vitals` row holding this one
//!   measurement (its column or columns; the others empty), dated `effectiveDateTime`
//!   (else now), with `note[0]` as the row's note, and its `forms` row in the encounter
//!   the Observation's `encounter` names (required: the encounter of the `subject`);
//! - `PUT /fhir/Observation/:id` sets the measurement's column(s) of its row; the
//!   row's other measurements, its date, note and encounter stay (an update that would
//!   move the measurement to another patient, encounter or time, or make it another
//!   vital sign, is a 422);
//! - values are stored as the standard API stores them (OpenEMR's US units: lb, in,
//!   degF, mm[Hg] as text), converted from the metric UCUM units a client may send (kg,
//!   g, cm, m, Cel); an unknown unit or code is a 422 naming it;
//! - versions are the row's (`form_vitals_history`, migration 0462): every Observation
//!   of a row shares its version, and a standard-API write of the row bumps it;
//! - smoking status (`72166-2`, `history_data`) is read-only: a write of it is a 422.

use hearth_emr::{Form, Written};
use hearth_fhir::tables::{VITAL_SLOTS, VitalSlot};
use hearth_fhir::write::{self as fw, Problems};
use hearth_fhir::{Param, Target, TokenColumn, TypeDef, error};
use hearth_sdk::ApiError;
use hearth_sdk::prelude::*;
use serde_json::{Map, Value as JsonValue};

use crate::{CATEGORY, LOINC, OBSERVATION, UCUM, VITALS, map};

/// A vital sign's row of `form_vitals` on its own (see [`VitalSlot`]): what the writes
/// answer, and what vread and history read with the history table in its place.
const fn slot_def(slot: VitalSlot) -> TypeDef {
    TypeDef {
        resource_type: "Observation",
        profiles: OBSERVATION.profiles,
        columns: slot.columns,
        from: "form_vitals v JOIN patient_data p ON p.pid = v.pid",
        id: slot.id,
        key: "v.id",
        last_updated: "COALESCE(v.last_updated, v.date)",
        patient: Some("p.uuid"),
        only: Some(slot.when),
        params: SLOT_PARAMS,
    }
}

/// What a granular scope may constrain on a vital sign.
const SLOT_PARAMS: &[Param] = &[
    Param::new(
        "patient",
        "Observation.subject.where(resolve() is Patient)",
        Target::Reference {
            column: "p.uuid",
            target: "Patient",
        },
    ),
    Param::new(
        "category",
        "Observation.category",
        Target::Token(&[TokenColumn::new("'vital-signs'", Some(CATEGORY))]),
    ),
];

static SLOT_DEFS: [TypeDef; 12] = {
    let mut defs = [slot_def(VITAL_SLOTS[0]); 12];
    let mut i = 1;
    while i < 12 {
        defs[i] = slot_def(VITAL_SLOTS[i]);
        i += 1;
    }
    defs
};

/// The vital sign an Observation id names (its slot digit), or `None` (smoking status, or
/// not one of Hearth's ids).
fn slot_of(id: &str) -> Option<usize> {
    if !hearth_sdk::request::is_uuid(id) {
        return None;
    }
    let digit = id.get(14..15)?.to_ascii_lowercase();
    VITAL_SLOTS.iter().position(|s| s.slot == digit)
}

fn unknown(id: &str) -> ApiError {
    error(404, "not-found", &format!("Observation/{id} is not known"))
}

/// Smoking status has no versions and no writes; anything else unknown is a 404.
fn slot_or_404(id: &str) -> Result<usize> {
    if let Some(slot) = slot_of(id) {
        return Ok(slot);
    }
    if hearth_sdk::request::is_uuid(id) && id.get(14..15) == Some("d") {
        return Err(error(
            404,
            "not-found",
            &format!(
                "Observation/{id} is a smoking status, which has no versions (it is read-only \
                 and reads as it is now)"
            ),
        ));
    }
    Err(unknown(id))
}

/// `GET /fhir/Observation/:id/_history`.
pub fn history(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let slot = slot_or_404(id)?;
    hearth_fhir::history::history(req, &SLOT_DEFS[slot], id, map)
}

/// `GET /fhir/Observation/:id/_history/:vid`.
pub fn vread(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let slot = slot_or_404(id)?;
    hearth_fhir::history::vread(req, &SLOT_DEFS[slot], id, req.param("vid")?, map)
}

/// A granular scope (`user/Observation.cu?category=…`) must admit vital signs, or the
/// write is refused (403) before anything is written.
fn granted(req: &Request, letter: char) -> Result<()> {
    let Some(constraints) = hearth_fhir::granular::constraints(req, "Observation", letter) else {
        return Ok(());
    };
    let admits = constraints.iter().any(|constraint| {
        let pairs = hearth_fhir::form_pairs(constraint);
        !pairs.is_empty()
            && pairs.iter().all(|(key, value)| {
                key == "category"
                    && value.split(',').any(|token| {
                        let (system, code) = match token.rsplit_once('|') {
                            Some((system, code)) => (Some(system), code),
                            None => (None, token),
                        };
                        code == "vital-signs"
                            && system.is_none_or(|s| s.is_empty() || s == CATEGORY)
                    })
            })
    });
    if admits {
        Ok(())
    } else {
        Err(error(
            403,
            "forbidden",
            &format!(
                "The token's Observation scopes ({}) do not admit the category vital-signs",
                constraints.join(", ")
            ),
        ))
    }
}

/// `POST /fhir/Observation`: a new vitals form of the encounter, holding this measurement.
pub fn create(req: &Request) -> Result<Response> {
    fw::writer(req, &OBSERVATION)?;
    granted(req, 'c')?;
    let body = fw::body(req, &OBSERVATION, None)?;
    let parsed = parse(&body, None)?;
    let now = hearth_sdk::time::now().datetime();
    let written = Written {
        pid: parsed.pid,
        by: req.caller().username.as_str(),
    };
    let uuid = hearth_sdk::new_uuid();
    let mut insert = Form::VITALS.row(uuid.as_str(), written, &now);
    insert.set(
        "date",
        parsed.effective.clone().unwrap_or_else(|| now.clone()),
    );
    for (column, value) in &parsed.columns {
        insert.set(column, value.clone());
    }
    if let Some(note) = &parsed.note {
        insert.set("note", note.as_str());
    }
    let vid = insert.insert_id()?;
    hearth_emr::add_form(req, parsed.pid, parsed.encounter, vid, &Form::VITALS)?;
    let slot = &VITAL_SLOTS[parsed.slot];
    let id = format!("{}{}{}", &uuid[..14], slot.slot, &uuid[15..]);
    fw::answer(req, &SLOT_DEFS[parsed.slot], &id, 201, map)
}

/// `PUT /fhir/Observation/:id`: sets the measurement's column(s) of its row.
pub fn update(req: &Request) -> Result<Response> {
    fw::writer(req, &OBSERVATION)?;
    granted(req, 'u')?;
    let id = req.param("id")?.to_ascii_lowercase();
    let body = fw::body(req, &OBSERVATION, Some(&id))?;
    let slot = slot_of(&id).ok_or_else(|| {
        if hearth_sdk::request::is_uuid(&id) && id.get(14..15) == Some("d") {
            error(
                422,
                "processing",
                &format!("Observation/{id} is a smoking status, which is read-only"),
            )
        } else {
            unknown(&id)
        }
    })?;
    let def = &SLOT_DEFS[slot];
    let row_uuid = hearth_fhir::history::row_uuid("form_vitals", &id);
    let current = store::query_one(
        &format!(
            "SELECT v.id, v.pid, v.date, p.uuid AS patient_uuid, {} AS encounter_uuid \
             FROM form_vitals v JOIN patient_data p ON p.pid = v.pid \
             WHERE v.uuid = $1 AND {}",
            ENCOUNTER_OF_ROW, VITAL_SLOTS[slot].when
        ),
        params![row_uuid.as_str()],
    )?
    .ok_or_else(|| {
        error(
            404,
            "not-found",
            &format!(
                "Observation/{id} is not known (an update cannot create a resource: use POST)"
            ),
        )
    })?;
    let from = fw::before_update(req, def, &id)?;
    let existing = Existing {
        pid: current.int("pid").unwrap_or(0),
        slot,
        date: current.text("date").map(str::to_owned),
        encounter_uuid: current.text("encounter_uuid").map(str::to_owned),
    };
    let parsed = parse(&body, Some(&existing))?;
    let mut update = hearth_sdk::sql::Update::table("form_vitals");
    for (column, value) in &parsed.columns {
        update.set(column, value.clone());
    }
    update
        .set("last_updated", hearth_sdk::time::now().datetime())
        .filter("id", current.int("id").unwrap_or(0));
    update.run()?;
    fw::after_update(req, def, &id, from)?;
    fw::answer(req, def, &id, 200, map)
}

/// The encounter a vitals row (alias `v`) is filed in.
const ENCOUNTER_OF_ROW: &str = "(SELECT fe.uuid FROM forms fo JOIN form_encounter fe \
    ON fe.pid = fo.pid AND fe.encounter = fo.encounter \
    WHERE fo.formdir = 'vitals' AND fo.form_id = v.id ORDER BY fo.id LIMIT 1)";

/// What an update starts from.
struct Existing {
    pid: i64,
    slot: usize,
    date: Option<String>,
    encounter_uuid: Option<String>,
}

/// An Observation as `form_vitals` columns.
struct Parsed {
    slot: usize,
    pid: i64,
    encounter: i64,
    effective: Option<String>,
    note: Option<String>,
    columns: Vec<(&'static str, Value)>,
}

/// The `form_vitals` column(s) of each vital sign, by slot.
const COLUMNS: [&[&str]; 12] = [
    &["bps", "bpd"],
    &["pulse"],
    &["respiration"],
    &["temperature"],
    &["height"],
    &["weight"],
    &["BMI"],
    &[
        "oxygen_saturation",
        "oxygen_flow_rate",
        "inhaled_oxygen_concentration",
    ],
    &["head_circ"],
    &["ped_bmi"],
    &["ped_weight_height"],
    &["ped_head_circ"],
];

/// A UCUM unit a vital sign may be sent in, and how to store it in OpenEMR's unit.
struct Unit {
    ucum: &'static str,
    to_stored: fn(f64) -> f64,
    stored: &'static str,
}

fn same(v: f64) -> f64 {
    v
}

fn kg_to_lb(v: f64) -> f64 {
    v / 0.453_592_37
}

fn g_to_lb(v: f64) -> f64 {
    v / 453.592_37
}

fn cm_to_in(v: f64) -> f64 {
    v / 2.54
}

fn m_to_in(v: f64) -> f64 {
    v / 0.0254
}

fn cel_to_degf(v: f64) -> f64 {
    v * 9.0 / 5.0 + 32.0
}

const LENGTH: &[Unit] = &[
    Unit {
        ucum: "[in_i]",
        to_stored: same,
        stored: "[in_i]",
    },
    Unit {
        ucum: "cm",
        to_stored: cm_to_in,
        stored: "[in_i]",
    },
    Unit {
        ucum: "m",
        to_stored: m_to_in,
        stored: "[in_i]",
    },
];

const PERCENT: &[Unit] = &[Unit {
    ucum: "%",
    to_stored: same,
    stored: "%",
}];

const PER_MINUTE: &[Unit] = &[Unit {
    ucum: "/min",
    to_stored: same,
    stored: "/min",
}];

const MM_HG: &[Unit] = &[Unit {
    ucum: "mm[Hg]",
    to_stored: same,
    stored: "mm[Hg]",
}];

const LITERS_PER_MINUTE: &[Unit] = &[Unit {
    ucum: "L/min",
    to_stored: same,
    stored: "L/min",
}];

const WEIGHT: &[Unit] = &[
    Unit {
        ucum: "[lb_av]",
        to_stored: same,
        stored: "[lb_av]",
    },
    Unit {
        ucum: "kg",
        to_stored: kg_to_lb,
        stored: "[lb_av]",
    },
    Unit {
        ucum: "g",
        to_stored: g_to_lb,
        stored: "[lb_av]",
    },
];
const TEMPERATURE: &[Unit] = &[
    Unit {
        ucum: "[degF]",
        to_stored: same,
        stored: "[degF]",
    },
    Unit {
        ucum: "Cel",
        to_stored: cel_to_degf,
        stored: "[degF]",
    },
];
const BMI: &[Unit] = &[Unit {
    ucum: "kg/m2",
    to_stored: same,
    stored: "kg/m2",
}];

/// The units each slot's value may be sent in (the first is the unit it reads back in).
fn units(slot: usize) -> &'static [Unit] {
    match slot {
        0 => MM_HG,
        1 | 2 => PER_MINUTE,
        3 => TEMPERATURE,
        4 | 8 => LENGTH,
        5 => WEIGHT,
        6 => BMI,
        _ => PERCENT,
    }
}

/// A number as the standard API stores it: at most two decimals once converted.
fn rounded(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A `Quantity`: its value in the stored unit, or a rule failure naming what is wrong.
fn quantity(
    value: Option<&JsonValue>,
    expression: &str,
    allowed: &[Unit],
    problems: &mut Problems,
) -> Option<f64> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        problems.add(expression, "a valueQuantity is required");
        return None;
    };
    let Some(number) = value.get("value").and_then(JsonValue::as_f64) else {
        problems.add(&format!("{expression}.value"), "must be a number");
        return None;
    };
    let system = value.get("system").and_then(JsonValue::as_str);
    if system.is_some_and(|s| s != UCUM) {
        problems.add(
            &format!("{expression}.system"),
            &format!("must be UCUM ({UCUM}), not {}", system.unwrap_or_default()),
        );
        return None;
    }
    let code = value
        .get("code")
        .and_then(JsonValue::as_str)
        .or_else(|| value.get("unit").and_then(JsonValue::as_str));
    let Some(code) = code else {
        problems.add(
            &format!("{expression}.code"),
            &format!(
                "a UCUM unit is required (one of {})",
                allowed
                    .iter()
                    .map(|u| u.ucum)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    };
    let Some(unit) = allowed.iter().find(|u| u.ucum == code) else {
        problems.add(
            &format!("{expression}.code"),
            &format!(
                "the unit {code} is not one this vital sign is recorded in (one of {})",
                allowed
                    .iter()
                    .map(|u| u.ucum)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    };
    if !number.is_finite() || number <= 0.0 {
        problems.add(&format!("{expression}.value"), "must be greater than 0");
        return None;
    }
    let stored = if unit.ucum == unit.stored {
        number
    } else {
        rounded((unit.to_stored)(number))
    };
    if unit.stored == "%" && stored > 100.0 {
        problems.add(
            &format!("{expression}.value"),
            "a percentage is at most 100",
        );
        return None;
    }
    Some(stored)
}

/// A number as text (`bps`, `bpd`): `120`, `120.5`.
fn as_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// The LOINC codes of `code.coding`: the slot of the vital sign they name, or a rule
/// failure naming an unknown code (and smoking status, which is read-only).
fn slot_of_code(body: &Map<String, JsonValue>, problems: &mut Problems) -> Option<usize> {
    let codings = fw::items(
        body.get("code").and_then(|c| c.get("coding")),
        "Observation.code.coding",
        problems,
    );
    let mut found: Option<usize> = None;
    for (i, coding) in codings.iter().enumerate() {
        if coding.get("system").and_then(JsonValue::as_str) != Some(LOINC) {
            continue;
        }
        let Some(code) = coding.get("code").and_then(JsonValue::as_str) else {
            problems.add(&format!("Observation.code.coding[{i}].code"), "is required");
            continue;
        };
        let slot = if code == "2708-6" {
            Some(7)
        } else {
            VITALS.iter().position(|v| v.code == code)
        };
        match slot {
            Some(slot) if found.is_none_or(|f| f == slot) => found = Some(slot),
            Some(_) => problems.add(
                &format!("Observation.code.coding[{i}].code"),
                "the codings name two different vital signs",
            ),
            None if code == "72166-2" => problems.add(
                &format!("Observation.code.coding[{i}].code"),
                "smoking status (LOINC 72166-2) is read-only: it is recorded in the \
                 patient's history (tobacco)",
            ),
            None => problems.add(
                &format!("Observation.code.coding[{i}].code"),
                &format!(
                    "LOINC {code} is not a vital sign Hearth records (one of {})",
                    VITALS.iter().map(|v| v.code).collect::<Vec<_>>().join(", ")
                ),
            ),
        }
    }
    if found.is_none() && problems.is_empty() {
        problems.add(
            "Observation.code",
            "a LOINC coding of a vital sign is required",
        );
    }
    found
}

/// The component with LOINC `code`, if any.
fn component<'a>(body: &'a Map<String, JsonValue>, code: &str) -> Option<(usize, &'a JsonValue)> {
    body.get("component")
        .and_then(JsonValue::as_array)?
        .iter()
        .enumerate()
        .find(|(_, c)| {
            c.get("code")
                .and_then(|c| c.get("coding"))
                .and_then(JsonValue::as_array)
                .is_some_and(|codings| {
                    codings.iter().any(|coding| {
                        coding.get("system").and_then(JsonValue::as_str) == Some(LOINC)
                            && coding.get("code").and_then(JsonValue::as_str) == Some(code)
                    })
                })
        })
}

/// The Observation as `form_vitals` columns, with every rule failure as one 422.
fn parse(body: &Map<String, JsonValue>, existing: Option<&Existing>) -> Result<Parsed> {
    let mut problems = Problems::new();
    let slot = slot_of_code(body, &mut problems);
    if let (Some(slot), Some(existing)) = (slot, existing)
        && slot != existing.slot
    {
        problems.add(
            "Observation.code",
            &format!(
                "an update cannot make the observation another vital sign (it is {})",
                VITALS[existing.slot].code
            ),
        );
    }

    // Category: vital signs (or absent).
    for (i, category) in fw::items(body.get("category"), "Observation.category", &mut problems)
        .iter()
        .enumerate()
    {
        let other = category
            .get("coding")
            .and_then(JsonValue::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("system").and_then(JsonValue::as_str) == Some(CATEGORY))
            .filter_map(|c| c.get("code").and_then(JsonValue::as_str))
            .find(|c| *c != "vital-signs");
        if let Some(other) = other {
            problems.add(
                &format!("Observation.category[{i}]"),
                &format!("Hearth writes vital signs only, not {other}"),
            );
        }
    }

    match fw::string(body.get("status"), "Observation.status", &mut problems) {
        Some("final" | "amended" | "corrected") => {}
        Some(other) => problems.add(
            "Observation.status",
            &format!(
                "must be final, amended or corrected (a vitals form records measurements \
                 taken), not {other}"
            ),
        ),
        None => problems.add("Observation.status", "is required"),
    }

    let patient = fw::patient(
        body.get("subject"),
        "Observation.subject",
        true,
        &mut problems,
    )?;
    let pid = match (patient, existing) {
        (Some((pid, _)), Some(existing)) if pid != existing.pid => {
            problems.add(
                "Observation.subject",
                "an observation cannot move to another patient",
            );
            existing.pid
        }
        (Some((pid, _)), _) => pid,
        (None, Some(existing)) => existing.pid,
        (None, None) => 0,
    };

    // The encounter the form is filed in.
    let reference = fw::string(
        body.get("encounter").and_then(|e| e.get("reference")),
        "Observation.encounter.reference",
        &mut problems,
    );
    let encounter_uuid = reference.map(|r| {
        r.rsplit_once("Encounter/")
            .map(|(_, id)| id.trim_end_matches('/').to_ascii_lowercase())
            .unwrap_or_default()
    });
    let mut encounter = 0;
    match (existing, encounter_uuid) {
        (Some(existing), Some(uuid)) => {
            if existing.encounter_uuid.as_deref() != Some(uuid.as_str()) {
                problems.add(
                    "Observation.encounter",
                    "an update cannot move the observation to another encounter",
                );
            }
        }
        (Some(_), None) => {}
        (None, None) => problems.add(
            "Observation.encounter",
            "a reference to the Encounter is required (vitals are recorded in an encounter)",
        ),
        (None, Some(uuid)) => {
            let found = if hearth_sdk::request::is_uuid(&uuid) && pid != 0 {
                store::query_one(
                    "SELECT encounter FROM form_encounter WHERE uuid = $1 AND pid = $2",
                    params![uuid.as_str(), pid],
                )?
            } else {
                None
            };
            match found.and_then(|r| r.int("encounter")) {
                Some(number) => encounter = number,
                None if pid == 0 => {}
                None => problems.add(
                    "Observation.encounter",
                    &format!("Encounter/{uuid} is not an encounter of the subject"),
                ),
            }
        }
    }

    if body.contains_key("effectivePeriod") || body.contains_key("effectiveInstant") {
        problems.add(
            "Observation.effective[x]",
            "give the time as effectiveDateTime",
        );
    }
    let effective = fw::datetime(
        body.get("effectiveDateTime"),
        "Observation.effectiveDateTime",
        &mut problems,
    );
    if let (Some(existing), Some(given)) = (existing, effective.as_deref())
        && existing
            .date
            .as_deref()
            .map(|d| d.get(..19).unwrap_or(d).replace('T', " "))
            .as_deref()
            != Some(given)
    {
        problems.add(
            "Observation.effectiveDateTime",
            "an update cannot move the measurement to another time (the time is the vitals \
             form's, shared by its other measurements)",
        );
    }

    for key in [
        "valueCodeableConcept",
        "valueString",
        "valueBoolean",
        "valueInteger",
        "valueRange",
        "valueRatio",
    ] {
        if body.contains_key(key) {
            problems.add(
                &format!("Observation.{key}"),
                "a vital sign's value is a valueQuantity",
            );
        }
    }

    let mut columns: Vec<(&'static str, Value)> = Vec::new();
    if let Some(slot) = slot {
        let names = COLUMNS[slot];
        match slot {
            0 => {
                if body.get("valueQuantity").is_some() {
                    problems.add(
                        "Observation.valueQuantity",
                        "a blood pressure panel has its values in the systolic (8480-6) and \
                         diastolic (8462-4) components",
                    );
                }
                let mut any = false;
                for (code, column) in [("8480-6", "bps"), ("8462-4", "bpd")] {
                    match component(body, code) {
                        Some((i, c)) if c.get("dataAbsentReason").is_some() => {
                            if c.get("valueQuantity").is_some() {
                                problems.add(
                                    &format!("Observation.component[{i}]"),
                                    "has both a value and a dataAbsentReason",
                                );
                            }
                            columns.push((column, Value::Null));
                        }
                        Some((i, c)) => {
                            let at = format!("Observation.component[{i}].valueQuantity");
                            if let Some(v) =
                                quantity(c.get("valueQuantity"), &at, MM_HG, &mut problems)
                            {
                                any = true;
                                columns.push((column, Value::Text(as_text(v))));
                            }
                        }
                        None => problems.add(
                            "Observation.component",
                            &format!(
                                "the {} component (LOINC {code}) is required (with a value or \
                                 a dataAbsentReason)",
                                if column == "bps" {
                                    "systolic"
                                } else {
                                    "diastolic"
                                }
                            ),
                        ),
                    }
                }
                if !any && problems.is_empty() {
                    problems.add(
                        "Observation.component",
                        "the systolic or the diastolic pressure needs a value",
                    );
                }
            }
            _ => {
                if let Some(v) = quantity(
                    body.get("valueQuantity"),
                    "Observation.valueQuantity",
                    units(slot),
                    &mut problems,
                ) {
                    columns.push((names[0], Value::Real(v)));
                }
                if slot == 7 {
                    for (code, column, allowed) in [
                        ("3151-8", "oxygen_flow_rate", LITERS_PER_MINUTE),
                        ("3150-0", "inhaled_oxygen_concentration", PERCENT),
                    ] {
                        let value = component(body, code).and_then(|(i, c)| {
                            let at = format!("Observation.component[{i}].valueQuantity");
                            quantity(c.get("valueQuantity"), &at, allowed, &mut problems)
                        });
                        columns.push((column, value.map_or(Value::Null, Value::Real)));
                    }
                }
                // Components of codes the vital sign does not have.
            }
        }
        if let Some(components) = body.get("component").and_then(JsonValue::as_array) {
            let known: &[&str] = match slot {
                0 => &["8480-6", "8462-4"],
                7 => &["3151-8", "3150-0"],
                _ => &[],
            };
            for (i, c) in components.iter().enumerate() {
                let codes: Vec<&str> = c
                    .get("code")
                    .and_then(|c| c.get("coding"))
                    .and_then(JsonValue::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|c| c.get("system").and_then(JsonValue::as_str) == Some(LOINC))
                    .filter_map(|c| c.get("code").and_then(JsonValue::as_str))
                    .collect();
                if !codes.iter().any(|code| known.contains(code)) {
                    problems.add(
                        &format!("Observation.component[{i}].code"),
                        &format!(
                            "{} is not a component of {} (known: {})",
                            if codes.is_empty() {
                                "a component without a LOINC code".to_owned()
                            } else {
                                format!("LOINC {}", codes.join(", "))
                            },
                            VITALS[slot].code,
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
            }
        }
    }

    let notes = fw::items(body.get("note"), "Observation.note", &mut problems);
    let note = fw::string(
        notes.first().and_then(|n| n.get("text")),
        "Observation.note[0].text",
        &mut problems,
    )
    .map(str::to_owned);
    problems.finish()?;
    Ok(Parsed {
        slot: slot.unwrap_or(0),
        pid,
        encounter,
        effective,
        // An update keeps the row's note (it is the whole form's).
        note: if existing.is_some() { None } else { note },
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_convert_to_openemrs() {
        assert!((kg_to_lb(70.0) - 154.323_584).abs() < 1e-3);
        assert!((cm_to_in(180.0) - 70.866_141).abs() < 1e-3);
        assert!((cel_to_degf(37.0) - 98.6).abs() < 1e-9);
        assert_eq!(as_text(120.0), "120");
        assert_eq!(as_text(120.5), "120.5");
        assert_eq!(rounded(154.323_584), 154.32);
    }

    #[test]
    fn ids_name_their_slot() {
        assert_eq!(slot_of("90cde167-0000-6000-8000-000000000001"), Some(5));
        assert_eq!(slot_of("90cde167-0000-0000-8000-000000000001"), Some(0));
        assert_eq!(slot_of("90cde167-0000-c000-8000-000000000001"), Some(11));
        assert_eq!(slot_of("90cde167-0000-d000-8000-000000000001"), None);
        assert_eq!(slot_of("nope"), None);
        for (i, slot) in VITAL_SLOTS.iter().enumerate() {
            assert_eq!(VITALS[i].code, slot.code, "slot order is the read side's");
        }
    }
}
