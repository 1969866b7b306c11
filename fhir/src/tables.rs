//! The derived tables of the FHIR types whose resources come from several tables or
//! several columns of one row, shared by their plugin and by Provenance (which reads the
//! target of every US Core resource). Each is a `UNION ALL` of one branch per source,
//! with the same columns in every branch, so a search counts, orders and pages across
//! all of them at once.
//!
//! [`observation_branches`], [`condition_branches`] and [`medication_request_branches`]
//! describe [`OBSERVATIONS`], [`CONDITIONS`] and [`MEDICATION_REQUESTS`] branch by branch,
//! so a search pushes its conditions into each (see [`crate::branches`]).
//!
//! Ids: OpenEMR gives every virtual resource its own uuid in `uuid_mapping`. Hearth
//! derives them from the source row's uuid, so they are stable, unique within the type,
//! and need no table or write of their own:
//!
//! - an Observation of a vital sign or of smoking status: the row's uuid with its version
//!   digit (the 15th character, `4` in every random uuid the rows get) replaced by the
//!   measurement's slot (`0` blood pressure, `1` heart rate, `2` respiratory rate, `3`
//!   temperature, `5` height, `6` weight, `7` BMI, `8` pulse oximetry, `9` head
//!   circumference, `a` BMI percentile, `b` weight-for-length percentile, `c` head
//!   circumference percentile, `d` smoking status);
//! - a Condition that is a problem-list item: the `lists` row's uuid; an encounter
//!   diagnosis (a problem's link to an encounter, `issue_encounter`): the problem's uuid
//!   with version digit `e` and the last twelve digits the link's row number.

use crate::branches::{Branch, Branches, Column, Fused, Narrow};

/// The encounter of a vitals row: the `forms` row that files it.
macro_rules! encounter {
    () => {
        "(SELECT fe.uuid FROM forms fo JOIN form_encounter fe ON fe.pid = fo.pid \
         AND fe.encounter = fo.encounter WHERE fo.formdir = 'vitals' AND fo.form_id = v.id \
         ORDER BY fo.id LIMIT 1)"
    };
}

/// The laboratory columns of an Observation row (reference range, abnormal flag, the
/// test's name), which only a laboratory result has.
macro_rules! lab_absent {
    () => {
        "CAST(NULL AS TEXT) AS ref_range, CAST(NULL AS TEXT) AS flag, \
         CAST(NULL AS TEXT) AS code_text"
    };
}

/// The columns of one measurement of `form_vitals` (alias `v`, with `patient_data p`):
/// the id (the row's uuid with the slot digit), the key's slot number, the LOINC code, the
/// second LOINC code (pulse oximetry), the profiles, the value, the blood-pressure texts
/// and the two component values. Every measurement's macro below takes the same
/// arguments: the slot digit, the key's slot number, those columns' expressions, and the
/// condition under which the row holds the measurement.
macro_rules! vital_columns {
    ($slot:expr, $n:expr, $code:expr, $code2:expr, $profiles:expr,
     $value:expr, $t1:expr, $t2:expr, $c1:expr, $c2:expr, $when:expr) => {
        concat!(
            vital_id!(
                $slot, $n, $code, $code2, $profiles, $value, $t1, $t2, $c1, $c2, $when
            ),
            " AS oid, v.id * 16 + ",
            $n,
            " AS okey, ",
            "COALESCE(v.last_updated, v.date) AS updated, p.uuid AS patient_uuid, ",
            encounter!(),
            " AS encounter_uuid, 'final' AS status, 'vital-signs' AS category, '",
            $code,
            "' AS code, ",
            $code2,
            " AS code2, '",
            $profiles,
            "' AS fhir_profiles, ",
            "v.date AS effective, CAST(",
            $value,
            " AS DOUBLE PRECISION) AS num, ",
            $t1,
            " AS t1, ",
            $t2,
            " AS t2, CAST(",
            $c1,
            " AS DOUBLE PRECISION) AS c1, CAST(",
            $c2,
            " AS DOUBLE PRECISION) AS c2, v.note AS note, ",
            lab_absent!()
        )
    };
}

/// The id expression of one measurement (see [`vital_columns!`]).
macro_rules! vital_id {
    ($slot:expr, $n:expr, $code:expr, $code2:expr, $profiles:expr,
     $value:expr, $t1:expr, $t2:expr, $c1:expr, $c2:expr, $when:expr) => {
        concat!(
            "SUBSTR(CAST(v.uuid AS TEXT), 1, 14) || '",
            $slot,
            "' || SUBSTR(CAST(v.uuid AS TEXT), 16)"
        )
    };
}

/// One measurement of `form_vitals` as a branch of [`OBSERVATIONS`]: its recorded
/// version (the row's, migration 0462) and [`vital_columns!`], for the rows that hold it.
macro_rules! vital {
    ($($arg:expr),+) => {
        concat!(
            "SELECT (SELECT MAX(vv.fhir_version) FROM form_vitals_history vv WHERE vv.id = v.id) \
             AS fhir_version, ",
            vital_columns!($($arg),+),
            " FROM form_vitals v JOIN patient_data p ON p.pid = v.pid WHERE ",
            vital_when!($($arg),+)
        )
    };
}

/// One measurement as a [`VitalSlot`].
macro_rules! vital_slot {
    ($slot:expr, $n:expr, $code:expr, $code2:expr, $profiles:expr,
     $value:expr, $t1:expr, $t2:expr, $c1:expr, $c2:expr, $when:expr) => {
        VitalSlot {
            slot: $slot,
            code: $code,
            columns: vital_columns!(
                $slot, $n, $code, $code2, $profiles, $value, $t1, $t2, $c1, $c2, $when
            ),
            id: vital_id!(
                $slot, $n, $code, $code2, $profiles, $value, $t1, $t2, $c1, $c2, $when
            ),
            key: concat!("v.id * 16 + ", $n),
            when: $when,
            code2: $code2,
            profiles: $profiles,
            values: [$value, $t1, $t2, $c1, $c2],
        }
    };
}

/// The condition under which a row holds the measurement.
macro_rules! vital_when {
    ($slot:expr, $n:expr, $code:expr, $code2:expr, $profiles:expr,
     $value:expr, $t1:expr, $t2:expr, $c1:expr, $c2:expr, $when:expr) => {
        $when
    };
}

macro_rules! us_core {
    ($name:expr) => {
        concat!(
            "http://hl7.org/fhir/us/core/StructureDefinition/",
            $name,
            " http://hl7.org/fhir/us/core/StructureDefinition/",
            $name,
            "|7.0.0"
        )
    };
}

/// A vital sign's profiles: US Core 7.0.0's, and for 3.1.1 the FHIR core vital-sign
/// profile US Core 3.1.1 uses.
macro_rules! vital_profiles {
    ($us_core:expr, $core:expr) => {
        concat!(
            us_core!($us_core),
            " http://hl7.org/fhir/StructureDefinition/",
            $core
        )
    };
}

/// A profile US Core 3.1.1 and 7.0.0 both define.
macro_rules! both_versions {
    ($name:expr) => {
        concat!(
            us_core!($name),
            " http://hl7.org/fhir/us/core/StructureDefinition/",
            $name,
            "|3.1.1"
        )
    };
}

// Each vital sign's arguments (see [`vital_columns!`]), handed to the macro `$m`.
macro_rules! blood_pressure {
    ($m:ident) => {
        $m!(
            "0",
            0,
            "85354-9",
            "CAST(NULL AS TEXT)",
            vital_profiles!("us-core-blood-pressure", "bp"),
            "NULL",
            "v.bps",
            "v.bpd",
            "NULL",
            "NULL",
            "(COALESCE(v.bps, '') <> '' OR COALESCE(v.bpd, '') <> '')"
        )
    };
}

macro_rules! heart_rate {
    ($m:ident) => {
        $m!(
            "1",
            1,
            "8867-4",
            "CAST(NULL AS TEXT)",
            vital_profiles!("us-core-heart-rate", "heartrate"),
            "v.pulse",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.pulse > 0"
        )
    };
}

macro_rules! respiratory_rate {
    ($m:ident) => {
        $m!(
            "2",
            2,
            "9279-1",
            "CAST(NULL AS TEXT)",
            vital_profiles!("us-core-respiratory-rate", "resprate"),
            "v.respiration",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.respiration > 0"
        )
    };
}

macro_rules! body_temperature {
    ($m:ident) => {
        $m!(
            "3",
            3,
            "8310-5",
            "CAST(NULL AS TEXT)",
            vital_profiles!("us-core-body-temperature", "bodytemp"),
            "v.temperature",
            "v.temp_method",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.temperature > 0"
        )
    };
}

macro_rules! body_height {
    ($m:ident) => {
        $m!(
            "5",
            5,
            "8302-2",
            "CAST(NULL AS TEXT)",
            vital_profiles!("us-core-body-height", "bodyheight"),
            "v.height",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.height > 0"
        )
    };
}

macro_rules! body_weight {
    ($m:ident) => {
        $m!(
            "6",
            6,
            "29463-7",
            "CAST(NULL AS TEXT)",
            vital_profiles!("us-core-body-weight", "bodyweight"),
            "v.weight",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.weight > 0"
        )
    };
}

macro_rules! bmi {
    ($m:ident) => {
        $m!(
            "7",
            7,
            "39156-5",
            "CAST(NULL AS TEXT)",
            vital_profiles!("us-core-bmi", "bmi"),
            "v.\"BMI\"",
            "v.\"BMI_status\"",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.\"BMI\" > 0"
        )
    };
}

macro_rules! pulse_oximetry {
    ($m:ident) => {
        $m!(
            "8",
            8,
            "59408-5",
            "'2708-6'",
            concat!(
                both_versions!("us-core-pulse-oximetry"),
                " http://hl7.org/fhir/StructureDefinition/oxygensat"
            ),
            "v.oxygen_saturation",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "v.oxygen_flow_rate",
            "v.inhaled_oxygen_concentration",
            "v.oxygen_saturation > 0"
        )
    };
}

macro_rules! head_circumference {
    ($m:ident) => {
        $m!(
            "9",
            9,
            "9843-4",
            "CAST(NULL AS TEXT)",
            vital_profiles!("us-core-head-circumference", "headcircum"),
            "v.head_circ",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.head_circ > 0"
        )
    };
}

macro_rules! pediatric_bmi {
    ($m:ident) => {
        $m!(
            "a",
            10,
            "59576-9",
            "CAST(NULL AS TEXT)",
            both_versions!("pediatric-bmi-for-age"),
            "v.ped_bmi",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.ped_bmi > 0"
        )
    };
}

macro_rules! pediatric_weight_height {
    ($m:ident) => {
        $m!(
            "b",
            11,
            "77606-2",
            "CAST(NULL AS TEXT)",
            both_versions!("pediatric-weight-for-height"),
            "v.ped_weight_height",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.ped_weight_height > 0"
        )
    };
}

macro_rules! head_circumference_percentile {
    ($m:ident) => {
        $m!(
            "c",
            12,
            "8289-1",
            "CAST(NULL AS TEXT)",
            both_versions!("head-occipital-frontal-circumference-percentile"),
            "v.ped_head_circ",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "NULL",
            "NULL",
            "v.ped_head_circ > 0"
        )
    };
}

/// Laboratory results (`procedure_result`, through its report and order to the patient)
/// as rows of the derived table: category `laboratory`, the LOINC code, the value as
/// recorded (`t1`, text: the mapping reads a number when there is one) and its units
/// (`t2`), OpenEMR's result status as the Observation status; results OpenEMR marks as
/// not reportable (`DNR`, `TNP`) are left out, as OpenEMR leaves them out. The id is the
/// result's own uuid (version digit `4`, which no vital-sign slot uses).
/// OpenEMR's result status as the Observation status.
macro_rules! lab_status {
    () => {
        "CASE r.result_status WHEN 'prelim' THEN 'preliminary' WHEN 'correct' THEN 'corrected' \
         WHEN 'cancel' THEN 'cancelled' WHEN 'error' THEN 'entered-in-error' \
         WHEN 'incomplete' THEN 'registered' ELSE 'final' END"
    };
}

/// [`lab_status!`]: a laboratory result's Observation status.
const LAB_STATUS: &str = lab_status!();

macro_rules! lab_results {
    () => {
        concat!(
            "SELECT CAST(NULL AS BIGINT) AS fhir_version, CAST(r.uuid AS TEXT) AS oid, r.procedure_result_id * 16 + 14 AS okey, \
             COALESCE(r.date, pr.date_report, po.date_ordered) AS updated, \
             p.uuid AS patient_uuid, fe.uuid AS encounter_uuid, \
             ",
            lab_status!(),
            " AS status, \
             'laboratory' AS category, r.result_code AS code, CAST(NULL AS TEXT) AS code2, '",
            both_versions!("us-core-observation-lab"),
            "' AS fhir_profiles, COALESCE(r.date, pr.date_collected, po.date_collected) AS effective, \
             CAST(NULL AS DOUBLE PRECISION) AS num, r.result AS t1, r.units AS t2, \
             CAST(NULL AS DOUBLE PRECISION) AS c1, CAST(NULL AS DOUBLE PRECISION) AS c2, \
             r.comments AS note, r.\"range\" AS ref_range, r.abnormal AS flag, \
             r.result_text AS code_text \
             FROM procedure_result r \
             JOIN procedure_report pr ON pr.procedure_report_id = r.procedure_report_id \
             JOIN procedure_order po ON po.procedure_order_id = pr.procedure_order_id \
             JOIN patient_data p ON p.pid = po.patient_id \
             LEFT JOIN form_encounter fe ON fe.pid = po.patient_id AND fe.encounter = po.encounter_id \
             WHERE r.result NOT IN ('DNR', 'TNP')"
        )
    };
}

/// Every Observation row (alias `o`): one branch per vital sign of `form_vitals`, then
/// smoking status from `history_data`, then laboratory results from `procedure_result`.
/// The first column is the version a vital sign shares with its row (`fhir_version`; none
/// for smoking status and laboratory results).
pub const OBSERVATIONS: &str = concat!(
    "(",
    blood_pressure!(vital),
    " UNION ALL ",
    heart_rate!(vital),
    " UNION ALL ",
    respiratory_rate!(vital),
    " UNION ALL ",
    body_temperature!(vital),
    " UNION ALL ",
    body_height!(vital),
    " UNION ALL ",
    body_weight!(vital),
    " UNION ALL ",
    bmi!(vital),
    " UNION ALL ",
    pulse_oximetry!(vital),
    " UNION ALL ",
    head_circumference!(vital),
    " UNION ALL ",
    pediatric_bmi!(vital),
    " UNION ALL ",
    pediatric_weight_height!(vital),
    " UNION ALL ",
    head_circumference_percentile!(vital),
    " UNION ALL ",
    "SELECT CAST(NULL AS BIGINT) AS fhir_version, SUBSTR(CAST(h.uuid AS TEXT), 1, 14) || 'd' || SUBSTR(CAST(h.uuid AS TEXT), 16) AS oid, \
     h.id * 16 + 13 AS okey, COALESCE(h.last_updated, h.date) AS updated, p.uuid AS patient_uuid, \
     CAST(NULL AS UUID) AS encounter_uuid, 'final' AS status, 'social-history' AS category, '72166-2' AS code, \
     CAST(NULL AS TEXT) AS code2, '",
    both_versions!("us-core-smokingstatus"),
    "' AS fhir_profiles, h.date AS effective, CAST(NULL AS DOUBLE PRECISION) AS num, \
     h.tobacco AS t1, CAST(NULL AS TEXT) AS t2, CAST(NULL AS DOUBLE PRECISION) AS c1, \
     CAST(NULL AS DOUBLE PRECISION) AS c2, CAST(NULL AS TEXT) AS note, ",
    lab_absent!(),
    " FROM history_data h JOIN patient_data p ON p.pid = h.pid WHERE h.tobacco <> ''",
    " UNION ALL ",
    lab_results!(),
    ") o"
);

/// A measurement of `form_vitals` on its own: what Observation's writes, vread and
/// history read (the history table standing in for `form_vitals`).
#[derive(Debug, Clone, Copy)]
pub struct VitalSlot {
    /// The id's slot digit.
    pub slot: &'static str,
    /// The LOINC code.
    pub code: &'static str,
    /// The columns of [`OBSERVATIONS`] (but `fhir_version`) over `form_vitals v JOIN patient_data p`.
    pub columns: &'static str,
    /// The id expression.
    pub id: &'static str,
    /// The key expression.
    pub key: &'static str,
    /// The condition under which a row holds the measurement.
    pub when: &'static str,
    /// The second LOINC code's expression (a text literal or `CAST(NULL AS TEXT)`).
    pub code2: &'static str,
    /// The profiles (a space-separated list).
    pub profiles: &'static str,
    /// The expressions of the columns `num`, `t1`, `t2`, `c1` and `c2` (`num`, `c1`
    /// and `c2` before their cast to `DOUBLE PRECISION`).
    pub values: [&'static str; 5],
}

/// Every vital sign's [`VitalSlot`], in slot order.
pub const VITAL_SLOTS: [VitalSlot; 12] = [
    blood_pressure!(vital_slot),
    heart_rate!(vital_slot),
    respiratory_rate!(vital_slot),
    body_temperature!(vital_slot),
    body_height!(vital_slot),
    body_weight!(vital_slot),
    bmi!(vital_slot),
    pulse_oximetry!(vital_slot),
    head_circumference!(vital_slot),
    pediatric_bmi!(vital_slot),
    pediatric_weight_height!(vital_slot),
    head_circumference_percentile!(vital_slot),
];

/// The vital signs read together (see [`Fused`]), as branches `members` of a derived
/// table whose key is `v.id * stride + key(n)` for slot number `n` (Observation's
/// `v.id * 16 + n`): each `form_vitals` row once (`v`, with `patient_data p`, and
/// `shared`, more columns computed once per row: `, expr AS name`), joined to the slots
/// it holds (`s`: `s.n` the slot's `key(n)`, `s.digit` its id digit, `s.code`,
/// `s.code2`, `s.fhir_profiles`); `columns` is the select list over them.
pub fn vital_signs_together(
    members: std::ops::Range<usize>,
    key: impl Fn(i64) -> i64,
    shared: &str,
    columns: &str,
) -> Fused {
    let slots: Vec<String> = VITAL_SLOTS
        .iter()
        .map(|slot| {
            format!(
                "SELECT {n} AS n, '{digit}' AS digit, '{code}' AS code, {code2} AS code2, \
                 '{profiles}' AS fhir_profiles",
                n = key(slot.number()),
                digit = slot.slot,
                code = slot.code,
                code2 = slot.code2,
                profiles = slot.profiles,
            )
        })
        .collect();
    let holds = arms(&key, |slot| format!("({})", slot.when));
    Fused {
        members,
        rows: format!("SELECT v.*{shared} FROM form_vitals v JOIN patient_data p ON p.pid = v.pid"),
        select: format!(
            "SELECT {columns} FROM {{rows}} v JOIN ({}) s ON CASE s.n{holds} ELSE 1 = 0 END",
            slots.join(" UNION ALL "),
        ),
        slot: "s.n".to_owned(),
    }
}

/// A vital sign's id in [`vital_signs_together`]'s columns: the row's uuid with the
/// slot's digit, as each branch's id.
pub const TOGETHER_ID: &str =
    "SUBSTR(CAST(v.uuid AS TEXT), 1, 14) || s.digit || SUBSTR(CAST(v.uuid AS TEXT), 16)";

/// ` WHEN key(n) THEN expr(slot n)` for every vital sign, the arms of a `CASE s.n`.
fn arms(key: &impl Fn(i64) -> i64, expr: impl Fn(&VitalSlot) -> String) -> String {
    VITAL_SLOTS
        .iter()
        .map(|slot| format!(" WHEN {} THEN {}", key(slot.number()), expr(slot)))
        .collect()
}

impl VitalSlot {
    /// The slot's number (its digit read in hexadecimal).
    pub fn number(&self) -> i64 {
        i64::from_str_radix(self.slot, 16).expect("a hex slot")
    }
}

/// [`OBSERVATIONS`]'s vital signs read together: their columns as each branch computes
/// them, the version, patient and encounter once per row.
fn vitals_fused() -> Fused {
    let slot = |n: i64| n;
    let value = |column: usize| {
        let arms = arms(&slot, |s| {
            format!("CAST({} AS DOUBLE PRECISION)", s.values[column])
        });
        format!("CASE s.n{arms} END")
    };
    let text = |column: usize| {
        let arms = arms(&slot, |s| s.values[column].to_owned());
        format!("CASE s.n{arms} END")
    };
    let columns = format!(
        "v.hearth_version AS fhir_version, {TOGETHER_ID} AS oid, v.id * 16 + s.n AS okey, \
         COALESCE(v.last_updated, v.date) AS updated, \
         v.hearth_patient AS patient_uuid, v.hearth_encounter AS encounter_uuid, \
         'final' AS status, 'vital-signs' AS category, s.code AS code, s.code2 AS code2, \
         s.fhir_profiles AS fhir_profiles, v.date AS effective, {num} AS num, {t1} AS t1, \
         {t2} AS t2, {c1} AS c1, {c2} AS c2, v.note AS note, {lab}",
        num = value(0),
        t1 = text(1),
        t2 = text(2),
        c1 = value(3),
        c2 = value(4),
        lab = lab_absent!(),
    );
    // The vital signs are the first branches of [`observation_branches`].
    vital_signs_together(
        0..VITAL_SLOTS.len(),
        slot,
        concat!(
            ", (SELECT MAX(vv.fhir_version) FROM form_vitals_history vv WHERE vv.id = v.id) \
             AS hearth_version, p.uuid AS hearth_patient, ",
            encounter!(),
            " AS hearth_encounter"
        ),
        &columns,
    )
}

/// The vitals form's rows filed with one of the encounters whose uuids are listed in
/// `{}`: what narrows a search of a vital sign's encounter to an index lookup.
const VITALS_OF_ENCOUNTERS: &str = "v.id IN (SELECT fo.form_id FROM form_encounter fe \
    JOIN forms fo ON fo.pid = fe.pid AND fo.encounter = fe.encounter \
    WHERE fo.formdir = 'vitals' AND fe.uuid IN ({}))";

/// The text of a SQL text literal (`'2708-6'`), `None` for anything else (`NULL`).
fn literal(sql: &'static str) -> Option<&'static str> {
    sql.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .filter(|s| !s.contains('\''))
}

/// A laboratory result's id, through the result itself, its report or its order, for
/// the condition `{}` on a time column of that table (see [`LAB_UPDATED`]).
const FROM_RESULT: &str = "SELECT r2.procedure_result_id FROM procedure_result r2 WHERE {}";
const FROM_REPORT: &str = "SELECT r2.procedure_result_id FROM procedure_report pr2 \
     JOIN procedure_result r2 ON r2.procedure_report_id = pr2.procedure_report_id WHERE {}";
const FROM_ORDER: &str = "SELECT r2.procedure_result_id FROM procedure_order po2 \
     JOIN procedure_report pr2 ON pr2.procedure_order_id = po2.procedure_order_id \
     JOIN procedure_result r2 ON r2.procedure_report_id = pr2.procedure_report_id WHERE {}";

/// The sources of a laboratory result's last change (`COALESCE(r.date, pr.date_report,
/// po.date_ordered)`): the results whose own time, report's or order's meets a condition.
const LAB_UPDATED: &[(&str, &str)] = &[
    (FROM_RESULT, "r2.date"),
    (FROM_REPORT, "pr2.date_report"),
    (FROM_ORDER, "po2.date_ordered"),
];

/// The sources of a laboratory result's effective time (`COALESCE(r.date,
/// pr.date_collected, po.date_collected)`), as [`LAB_UPDATED`].
const LAB_EFFECTIVE: &[(&str, &str)] = &[
    (FROM_RESULT, "r2.date"),
    (FROM_REPORT, "pr2.date_collected"),
    (FROM_ORDER, "po2.date_collected"),
];

/// [`OBSERVATIONS`] as its branches (see [`crate::branches`]): the same SQL, branch by
/// branch, with the columns a search names.
pub fn observation_branches() -> Branches {
    let parts = crate::branches::split(OBSERVATIONS);
    assert_eq!(
        parts.len(),
        VITAL_SLOTS.len() + 2,
        "vitals, smoking, laboratory"
    );
    let mut branches = Vec::new();
    for (slot, (select, when)) in VITAL_SLOTS.iter().zip(&parts) {
        let n = slot.number();
        branches.push(Branch {
            select: select.clone(),
            when: when.clone(),
            columns: vec![
                Column::expr("oid", slot.id).narrow(Narrow::Uuid {
                    column: "v.uuid",
                    slot: Some(slot.slot.as_bytes()[0]),
                }),
                Column::expr("okey", slot.key),
                Column::expr("updated", "COALESCE(v.last_updated, v.date)"),
                Column::expr("patient_uuid", "p.uuid"),
                Column::expr("encounter_uuid", encounter!())
                    .narrow(Narrow::In(VITALS_OF_ENCOUNTERS)),
                Column::constant("status", Some("final")),
                Column::constant("category", Some("vital-signs")),
                Column::constant("code", Some(slot.code)),
                Column::constant("code2", literal(slot.code2)),
                Column::expr("effective", "v.date"),
            ],
            key: "v.id".to_owned(),
            stride: 16,
            offset: n,
        });
    }
    let (select, when) = parts[VITAL_SLOTS.len()].clone();
    branches.push(Branch {
        select,
        when,
        columns: vec![
            Column::expr(
                "oid",
                "SUBSTR(CAST(h.uuid AS TEXT), 1, 14) || 'd' || SUBSTR(CAST(h.uuid AS TEXT), 16)",
            )
            .narrow(Narrow::Uuid {
                column: "h.uuid",
                slot: Some(b'd'),
            }),
            Column::expr("okey", "h.id * 16 + 13"),
            Column::expr("updated", "COALESCE(h.last_updated, h.date)"),
            Column::expr("patient_uuid", "p.uuid"),
            Column::constant("encounter_uuid", None),
            Column::constant("status", Some("final")),
            Column::constant("category", Some("social-history")),
            Column::constant("code", Some("72166-2")),
            Column::constant("code2", None),
            Column::expr("effective", "h.date"),
        ],
        key: "h.id".to_owned(),
        stride: 16,
        offset: 13,
    });
    let (select, when) = parts[VITAL_SLOTS.len() + 1].clone();
    branches.push(Branch {
        select,
        when,
        columns: vec![
            uuid_id("oid", "r.uuid"),
            Column::expr("okey", "r.procedure_result_id * 16 + 14"),
            Column::expr(
                "updated",
                "COALESCE(r.date, pr.date_report, po.date_ordered)",
            )
            .narrow(Narrow::Sources {
                key: "r.procedure_result_id",
                sources: LAB_UPDATED,
            }),
            Column::expr("patient_uuid", "p.uuid"),
            Column::expr("encounter_uuid", "fe.uuid"),
            Column::expr("status", LAB_STATUS),
            Column::constant("category", Some("laboratory")),
            Column::expr("code", "r.result_code"),
            Column::constant("code2", None),
            Column::expr(
                "effective",
                "COALESCE(r.date, pr.date_collected, po.date_collected)",
            )
            .narrow(Narrow::Sources {
                key: "r.procedure_result_id",
                sources: LAB_EFFECTIVE,
            }),
        ],
        key: "r.procedure_result_id".to_owned(),
        stride: 16,
        offset: 14,
    });
    Branches {
        alias: "o",
        branches,
        rest: String::new(),
        fused: vec![vitals_fused()],
    }
}

/// The columns of a branch whose id is `CAST(uuid AS TEXT)`, narrowed to the uuid.
fn uuid_id(name: &'static str, uuid: &'static str) -> Column {
    Column::expr(name, format!("CAST({uuid} AS TEXT)")).narrow(Narrow::Uuid {
        column: uuid,
        slot: None,
    })
}

/// The `issue_encounter` row an encounter diagnosis's id names (its last twelve digits),
/// when the id has the diagnosis's version digit `e`.
fn diagnosis_row(id: &str, sql: &mut crate::search::Sql) -> Option<String> {
    if !hearth_sdk::request::is_uuid(id) || id.as_bytes()[14] != b'e' {
        return None;
    }
    let row: i64 = id[24..].parse().ok()?;
    Some(format!("ie.id = {}", sql.bind(row)))
}

/// [`CONDITIONS`] as its branches (see [`crate::branches`]), with every column a
/// Condition search names, so each condition goes into each branch.
pub fn condition_branches() -> Branches {
    let parts = crate::branches::split(CONDITIONS);
    assert_eq!(parts.len(), 2, "problems, encounter diagnoses");
    let columns = |id: Column, category: &'static str, encounter: Column, clinical: &str| {
        vec![
            id,
            Column::expr("updated", "COALESCE(l.modifydate, l.date)"),
            Column::expr("patient_uuid", "p.uuid"),
            Column::constant("category", Some(category)),
            encounter,
            Column::expr("clinical_status", clinical),
            Column::expr("verification", VERIFICATION),
            Column::expr("diagnosis", "l.diagnosis"),
            Column::expr("begdate", "l.begdate"),
            Column::expr("enddate", "l.enddate"),
            Column::expr("recorded", "l.date"),
        ]
    };
    let mut branches = Vec::new();
    for (i, (select, when)) in parts.into_iter().enumerate() {
        let (columns, key) = if i == 0 {
            (
                columns(
                    uuid_id("cid", "l.uuid"),
                    "problem-list-item",
                    Column::constant("encounter_uuid", None),
                    PROBLEM_CLINICAL,
                ),
                "l.id",
            )
        } else {
            (
                columns(
                    Column::expr("cid", DIAGNOSIS_ID).narrow(Narrow::Parse(diagnosis_row)),
                    "encounter-diagnosis",
                    Column::expr("encounter_uuid", "fe.uuid"),
                    DIAGNOSIS_CLINICAL,
                ),
                "ie.id",
            )
        };
        branches.push(Branch {
            select,
            when,
            columns,
            key: key.to_owned(),
            stride: 2,
            offset: i as i64,
        });
    }
    Branches {
        alias: "c",
        branches,
        rest: String::new(),
        fused: Vec::new(),
    }
}

/// [`MEDICATION_REQUESTS`] as its branches (see [`crate::branches`]), with every column a
/// MedicationRequest search names. The intent is a constant per branch (`plan` every
/// listed medication, `order` every prescription), so `intent=plan` leaves the
/// prescriptions out of the SQL and `intent=order` the medication list.
pub fn medication_request_branches() -> Branches {
    let parts = crate::branches::split(MEDICATION_REQUESTS);
    assert_eq!(parts.len(), 2, "the medication list, prescriptions");
    let mut branches = Vec::new();
    for (i, (select, when)) in parts.into_iter().enumerate() {
        let columns = if i == 0 {
            vec![
                uuid_id("mid", "l.uuid"),
                Column::expr("updated", "COALESCE(l.modifydate, l.date)"),
                Column::expr("patient_uuid", "p.uuid"),
                Column::constant("encounter_uuid", None),
                Column::constant("intent", Some("plan")),
                Column::expr("status", LIST_STATUS),
                Column::constant("category", Some("community")),
                Column::expr("codes", "l.diagnosis"),
                Column::expr("authored", "l.date"),
                Column::expr("requester_uuid", "u.uuid"),
            ]
        } else {
            vec![
                uuid_id("mid", "rx.uuid"),
                Column::expr("updated", "COALESCE(rx.date_modified, rx.date_added)"),
                Column::expr("patient_uuid", "p.uuid"),
                Column::expr("encounter_uuid", "fe.uuid"),
                Column::constant("intent", Some("order")),
                Column::expr("status", PRESCRIPTION_STATUS),
                Column::expr("category", PRESCRIPTION_CATEGORY),
                Column::expr("codes", PRESCRIPTION_CODES),
                Column::expr("authored", "COALESCE(rx.date_added, rx.datetime)"),
                Column::expr("requester_uuid", "u.uuid"),
            ]
        };
        branches.push(Branch {
            select,
            when,
            columns,
            key: if i == 0 { "l.id" } else { "rx.id" }.to_owned(),
            stride: 2,
            offset: i as i64,
        });
    }
    Branches {
        alias: "m",
        branches,
        rest: String::new(),
        fused: Vec::new(),
    }
}

/// The columns both branches give, in order: the version (`fhir_version`, the
/// problem's recorded version; none for an encounter diagnosis) and the Condition row's columns.
macro_rules! condition_branch {
    ($version:expr, $id:expr, $key:expr, $category:expr, $profiles:expr, $encounter:expr,
     $clinical:expr, $from:expr) => {
        concat!(
            "SELECT ",
            $version,
            " AS fhir_version, ",
            condition_columns!($id, $key, $category, $profiles, $encounter, $clinical),
            " ",
            $from
        )
    };
}

/// The columns of a Condition row (what `fhir-condition`'s mapping reads).
macro_rules! condition_columns {
    ($id:expr, $key:expr, $category:expr, $profiles:expr, $encounter:expr, $clinical:expr) => {
        concat!(
            $id,
            " AS cid, ",
            $key,
            " AS ckey, ",
            "COALESCE(l.modifydate, l.date) AS updated, p.uuid AS patient_uuid, '",
            $category,
            "' AS category, '",
            $profiles,
            "' AS fhir_profiles, ",
            $encounter,
            " AS encounter_uuid, ",
            $clinical,
            " AS clinical_status, ",
            verification!(),
            " AS verification, ",
            "l.title, l.diagnosis, l.begdate, l.enddate, l.date AS recorded, l.comments"
        )
    };
}

/// OpenEMR's clinical status: active until an end date; then resolved when the
/// outcome says so (`outcome` 1), else inactive.
macro_rules! clinical {
    ($resolved:expr) => {
        concat!(
            "CASE WHEN ",
            $resolved,
            " THEN 'resolved' WHEN l.enddate IS NULL THEN 'active' \
             WHEN l.outcome = 1 THEN 'resolved' ELSE 'inactive' END"
        )
    };
}

/// OpenEMR's verification status, empty for none.
macro_rules! verification {
    () => {
        "CASE WHEN l.verification = '' THEN NULL ELSE l.verification END"
    };
}

/// A Condition's verification status (see [`condition_branches`]).
const VERIFICATION: &str = verification!();

/// A problem-list item's clinical status.
const PROBLEM_CLINICAL: &str = clinical!("1=0");

/// An encounter diagnosis's clinical status.
const DIAGNOSIS_CLINICAL: &str = clinical!("ie.resolved = 1");

/// The columns of a problem-list item read straight from `lists l JOIN patient_data p`
/// (the first branch of [`CONDITIONS`] without its version): what Condition's writes,
/// vread and history read, the history table standing in for `lists`.
pub const PROBLEM_COLUMNS: &str = condition_columns!(
    "CAST(l.uuid AS TEXT)",
    "l.id * 2",
    "problem-list-item",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition \
     http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition|3.1.1 \
     http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns \
     http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns|7.0.0",
    "NULL",
    clinical!("1=0")
);

/// The id of an encounter diagnosis: the problem's uuid with version digit `e` and the
/// last twelve digits the link's row number.
macro_rules! diagnosis_id {
    () => {
        "SUBSTR(CAST(l.uuid AS TEXT), 1, 14) || 'e' || SUBSTR(CAST(l.uuid AS TEXT), 16, 9) \
         || SUBSTR(CAST(1000000000000 + ie.id AS TEXT), 2, 12)"
    };
}

/// The tables of an encounter diagnosis (`issue_encounter` first: its versions are the
/// diagnosis's).
macro_rules! diagnosis_from {
    () => {
        "issue_encounter ie JOIN lists l ON l.id = ie.list_id \
         JOIN patient_data p ON p.pid = l.pid \
         JOIN form_encounter fe ON fe.pid = ie.pid AND fe.encounter = ie.encounter"
    };
}

macro_rules! diagnosis_profiles {
    () => {
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition \
         http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition|3.1.1 \
         http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis \
         http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis|7.0.0"
    };
}

/// An encounter diagnosis read straight from its tables (the second branch of
/// [`CONDITIONS`] without its version): what Condition's vread and history read, the
/// history of `issue_encounter` standing in for it. The id is [`DIAGNOSIS_ID`], the
/// rows are those of `l.type = 'medical_problem'`.
pub const DIAGNOSIS_COLUMNS: &str = condition_columns!(
    diagnosis_id!(),
    "ie.id * 2 + 1",
    "encounter-diagnosis",
    diagnosis_profiles!(),
    "fe.uuid",
    clinical!("ie.resolved = 1")
);

/// The `FROM` of [`DIAGNOSIS_COLUMNS`].
pub const DIAGNOSIS_FROM: &str = diagnosis_from!();

/// The id expression of an encounter diagnosis.
pub const DIAGNOSIS_ID: &str = diagnosis_id!();

pub const CONDITIONS: &str = concat!(
    "(",
    condition_branch!(
        "(SELECT MAX(lv.fhir_version) FROM lists_history lv WHERE lv.id = l.id)",
        "CAST(l.uuid AS TEXT)",
        "l.id * 2",
        "problem-list-item",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition \
         http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition|3.1.1 \
         http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns \
         http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns|7.0.0",
        // Typed: a page reads each branch on its own (see `crate::branches`), where an
        // untyped NULL would be text against the other branch's uuid.
        "CAST(NULL AS UUID)",
        clinical!("1=0"),
        "FROM lists l JOIN patient_data p ON p.pid = l.pid WHERE l.type = 'medical_problem'"
    ),
    " UNION ALL ",
    condition_branch!(
        "(SELECT MAX(iv.fhir_version) FROM issue_encounter_history iv WHERE iv.id = ie.id)",
        diagnosis_id!(),
        "ie.id * 2 + 1",
        "encounter-diagnosis",
        diagnosis_profiles!(),
        "fe.uuid",
        clinical!("ie.resolved = 1"),
        concat!(
            "FROM ",
            diagnosis_from!(),
            " WHERE likely(l.type = 'medical_problem')"
        )
    ),
    ") c"
);

/// The US Core ServiceRequest category (SNOMED CT) of a procedure order (`po`), from
/// OpenEMR's order type: laboratory, imaging, or another procedure.
pub const ORDER_CATEGORY: &str = "CASE po.procedure_order_type \
    WHEN 'imaging' THEN '363679005' WHEN 'procedure' THEN '387713003' \
    WHEN 'intervention' THEN '387713003' ELSE '108252007' END";

/// A listed medication's status.
macro_rules! list_status {
    () => {
        "CASE WHEN l.enddate IS NULL THEN 'active' ELSE 'completed' END"
    };
}

/// A prescription's status.
macro_rules! prescription_status {
    () => {
        "CASE WHEN rx.active = 0 THEN 'stopped' WHEN rx.end_date IS NOT NULL THEN 'completed' \
         ELSE 'active' END"
    };
}

/// A prescription's category.
macro_rules! prescription_category {
    () => {
        "COALESCE(NULLIF(rx.usage_category, ''), 'community')"
    };
}

/// A prescription's code, in OpenEMR's coded list form.
macro_rules! prescription_codes {
    () => {
        "CASE WHEN rx.rxnorm_drugcode = '' THEN NULL ELSE 'RXNORM:' || rx.rxnorm_drugcode END"
    };
}

/// The status of a listed medication, and a prescription's status, category and code
/// (see [`medication_request_branches`]).
const LIST_STATUS: &str = list_status!();
const PRESCRIPTION_STATUS: &str = prescription_status!();
const PRESCRIPTION_CATEGORY: &str = prescription_category!();
const PRESCRIPTION_CODES: &str = prescription_codes!();

/// The medication-list branch of [`MEDICATION_REQUESTS`] (intent `plan`).
macro_rules! medication_list {
    () => {
        concat!(
            "SELECT (SELECT MAX(lv.fhir_version) FROM lists_history lv WHERE lv.id = l.id) AS fhir_version, \
     CAST(l.uuid AS TEXT) AS mid, l.id * 2 AS mkey, COALESCE(l.modifydate, l.date) AS updated, \
     p.uuid AS patient_uuid, CAST(NULL AS UUID) AS encounter_uuid, 'plan' AS intent, ",
            list_status!(),
            " AS status, \
     'community' AS category, l.title AS title, l.diagnosis AS codes, l.date AS authored, \
     l.begdate AS start_date, l.enddate AS end_date, l.comments AS note, \
     u.uuid AS requester_uuid, u.fname AS requester_fname, u.lname AS requester_lname, \
     CAST(NULL AS TEXT) AS dosage, CAST(NULL AS TEXT) AS form_title, \
     CAST(NULL AS TEXT) AS route_title, CAST(NULL AS TEXT) AS route_code, \
     CAST(NULL AS TEXT) AS interval_title, CAST(NULL AS TEXT) AS instructions, \
     CAST(NULL AS TEXT) AS quantity, CAST(NULL AS BIGINT) AS refills \
     FROM lists l JOIN patient_data p ON p.pid = l.pid \
     LEFT JOIN users u ON u.username = l.\"user\" AND u.npi <> '' \
     WHERE l.type = 'medication'"
        )
    };
}

/// The prescription branch of [`MEDICATION_REQUESTS`] (intent `order`).
macro_rules! prescription_requests {
    () => {
        concat!(
            "SELECT CAST(NULL AS BIGINT) AS fhir_version, CAST(rx.uuid AS TEXT) AS mid, \
     rx.id * 2 + 1 AS mkey, COALESCE(rx.date_modified, rx.date_added) AS updated, \
     p.uuid AS patient_uuid, fe.uuid AS encounter_uuid, 'order' AS intent, ",
            prescription_status!(),
            " AS status, ",
            prescription_category!(),
            " AS category, rx.drug AS title, ",
            prescription_codes!(),
            " AS codes, \
     COALESCE(rx.date_added, rx.datetime) AS authored, rx.start_date AS start_date, \
     rx.end_date AS end_date, rx.note AS note, u.uuid AS requester_uuid, \
     u.fname AS requester_fname, u.lname AS requester_lname, rx.dosage AS dosage, \
     lf.title AS form_title, lr.title AS route_title, lr.notes AS route_code, \
     li.title AS interval_title, rx.drug_dosage_instructions AS instructions, \
     rx.quantity AS quantity, rx.refills AS refills \
     FROM prescriptions rx JOIN patient_data p ON p.pid = rx.patient_id \
     LEFT JOIN form_encounter fe ON fe.encounter = rx.encounter AND fe.pid = rx.patient_id \
     LEFT JOIN users u ON u.id = rx.provider_id AND u.npi <> '' \
     LEFT JOIN list_options lf ON lf.list_id = 'drug_form' AND lf.option_id = rx.form \
     LEFT JOIN list_options lr ON lr.list_id = 'drug_route' AND lr.option_id = rx.route \
     LEFT JOIN list_options li ON li.list_id = 'drug_interval' AND li.option_id = rx.\"interval\""
        )
    };
}

/// Every MedicationRequest row (alias `m`), as OpenEMR merges them: the medication list
/// (`lists` rows of type `medication`, intent `plan`: what the patient takes, reported)
/// and the prescriptions (`prescriptions`, intent `order`). Ids are the rows' uuids;
/// keys `id * 2` (list) and `id * 2 + 1` (prescription). `codes` holds OpenEMR's coded
/// list form (`RXNORM:…`) for both. A list item's version counts the writes of its row
/// (`lists_history`); a prescription's is its last change.
pub const MEDICATION_REQUESTS: &str = concat!(
    "(",
    medication_list!(),
    " UNION ALL ",
    prescription_requests!(),
    ") m"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_tables_have_a_branch_per_source() {
        assert_eq!(OBSERVATIONS.matches(" UNION ALL ").count(), 13);
        assert!(OBSERVATIONS.contains("'laboratory' AS category"));
        assert_eq!(MEDICATION_REQUESTS.split(" UNION ALL ").count(), 2);
        assert!(OBSERVATIONS.contains("'d' || SUBSTR(CAST(h.uuid AS TEXT), 16)"));
        assert_eq!(CONDITIONS.split(" UNION ALL ").count(), 2);
        assert!(CONDITIONS.contains("'encounter-diagnosis' AS category"));
    }

    #[test]
    fn the_observation_branches_are_the_derived_tables_sql() {
        let all = observation_branches();
        let joined: Vec<String> = all
            .branches
            .iter()
            .map(|b| format!("{} WHERE {}", b.select, b.when))
            .collect();
        assert_eq!(format!("({}) o", joined.join(" UNION ALL ")), OBSERVATIONS);
        for branch in &all.branches {
            // Each column named is the one the branch selects under that name.
            for column in &branch.columns {
                let selected = match column.constant {
                    Some(Some(text)) => format!("'{text}' AS {}", column.name),
                    Some(None) => format!("NULL AS {}", column.name),
                    None => format!("{} AS {}", column.expr, column.name),
                };
                assert!(
                    branch.select.contains(&selected)
                        || (column.constant == Some(None)
                            && ["TEXT", "UUID"].iter().any(|ty| {
                                branch
                                    .select
                                    .contains(&format!("CAST(NULL AS {ty}) AS {}", column.name))
                            })),
                    "{selected} in {}",
                    branch.select
                );
            }
            assert!(
                branch
                    .select
                    .contains(&format!("{} * 16 + {} AS okey", branch.key, branch.offset)),
                "{}",
                branch.select
            );
        }
        assert_eq!(all.branches[7].columns[8].constant, Some(Some("2708-6")));
        // Read together, each vital sign's slot computes the values its branch selects,
        // holds the rows its branch's condition admits, and carries its code.
        let together = &all.fused[0];
        assert_eq!(together.members, 0..VITAL_SLOTS.len());
        for (slot, branch) in VITAL_SLOTS.iter().zip(&all.branches) {
            let n = slot.number();
            let num = format!("CAST({} AS DOUBLE PRECISION)", slot.values[0]);
            assert!(
                branch.select.contains(&format!("{num} AS num")),
                "{}",
                branch.select
            );
            assert!(together.select.contains(&format!(" WHEN {n} THEN {num}")));
            assert!(
                together
                    .select
                    .contains(&format!(" WHEN {n} THEN ({})", branch.when))
            );
            assert!(together.select.contains(&format!(
                "SELECT {n} AS n, '{}' AS digit, '{}' AS code",
                slot.slot, slot.code
            )));
        }
    }

    #[test]
    fn the_condition_and_medication_branches_are_their_tables_sql() {
        for (all, sql, key) in [
            (condition_branches(), CONDITIONS, "ckey"),
            (medication_request_branches(), MEDICATION_REQUESTS, "mkey"),
        ] {
            let joined: Vec<String> = all
                .branches
                .iter()
                .map(|b| {
                    if b.when == "1=1" {
                        b.select.clone()
                    } else {
                        format!("{} WHERE {}", b.select, b.when)
                    }
                })
                .collect();
            assert_eq!(
                format!("({}) {}", joined.join(" UNION ALL "), all.alias),
                sql
            );
            for branch in &all.branches {
                for column in &branch.columns {
                    let selected = match column.constant {
                        Some(Some(text)) => format!("'{text}' AS {}", column.name),
                        Some(None) => format!("NULL AS {}", column.name),
                        None => format!("{} AS {}", column.expr, column.name),
                    };
                    // A column selected under its own name (`l.diagnosis`), or a `NULL`
                    // cast to the other branch's type.
                    let bare = column.constant.is_none()
                        && column.expr.ends_with(&format!(".{}", column.name))
                        && branch.select.contains(&format!("{}, ", column.expr));
                    let cast = column.constant == Some(None)
                        && branch
                            .select
                            .contains(&format!("CAST(NULL AS UUID) AS {}", column.name));
                    assert!(
                        branch.select.contains(&selected) || bare || cast,
                        "{selected} in {}",
                        branch.select
                    );
                }
                let stride = if branch.offset == 0 {
                    format!("{} * 2 AS {key}", branch.key)
                } else {
                    format!("{} * 2 + 1 AS {key}", branch.key)
                };
                assert!(branch.select.contains(&stride), "{stride}");
            }
        }
        let mut sql = crate::search::Sql::default();
        assert_eq!(
            diagnosis_row("90cde167-0000-e000-8000-000000000042", &mut sql),
            Some("ie.id = $1".to_owned())
        );
        assert_eq!(sql.params, [hearth_sdk::Value::from(42)]);
        assert_eq!(
            diagnosis_row("90cde167-0000-4000-8000-000000000042", &mut sql),
            None
        );
    }
}
