//! Orders and medications of the synthetic chart: the practice's formulary (`drugs`,
//! one lot each in `drug_inventory`), laboratory orders with their LOINC-coded results
//! (`procedure_order`, `procedure_order_code`, `procedure_report`, `procedure_result`,
//! `procedure_specimen`), prescriptions from the formulary and their dispenses
//! (`drug_sales`). Rows are built as the `procedure` and `prescription` plugins read
//! them; their ids are the seed's own, like the other tables'.

use hearth_sdk::sql::Insert;
use rand::Rng;
use time::{Duration, PrimitiveDateTime};

use super::{Gen, Staff, date, datetime, take};
use crate::{Batch, Summary, Transaction, next_key};

/// The tables the seed numbers itself, with their key columns (locked, read and, on
/// PostgreSQL, moved past the seeded ids like the others).
pub(crate) const KEYS: [(&str, &str); 8] = [
    ("drugs", "drug_id"),
    ("drug_inventory", "inventory_id"),
    ("prescriptions", "id"),
    ("drug_sales", "sales_id"),
    ("procedure_order", "procedure_order_id"),
    ("procedure_report", "procedure_report_id"),
    ("procedure_result", "procedure_result_id"),
    ("procedure_specimen", "procedure_specimen_id"),
];

/// The next key of each table of [`KEYS`].
#[derive(Debug, Default)]
pub(crate) struct OrderIds {
    drugs: i64,
    inventory: i64,
    prescriptions: i64,
    sales: i64,
    orders: i64,
    reports: i64,
    results: i64,
    specimens: i64,
}

impl OrderIds {
    pub(crate) async fn reserve(tx: &mut impl Transaction) -> anyhow::Result<OrderIds> {
        let mut next = [0; 8];
        for (slot, (table, key)) in next.iter_mut().zip(KEYS) {
            *slot = next_key(tx, table, key).await?;
        }
        let [
            drugs,
            inventory,
            prescriptions,
            sales,
            orders,
            reports,
            results,
            specimens,
        ] = next;
        Ok(OrderIds {
            drugs,
            inventory,
            prescriptions,
            sales,
            orders,
            reports,
            results,
            specimens,
        })
    }
}

/// The rows of one batch, in the order they are written.
pub(crate) struct OrderTables {
    drugs: Batch,
    inventory: Batch,
    prescriptions: Batch,
    sales: Batch,
    orders: Batch,
    codes: Batch,
    reports: Batch,
    results: Batch,
    specimens: Batch,
}

impl Default for OrderTables {
    fn default() -> Self {
        OrderTables {
            drugs: Batch::new("drugs"),
            inventory: Batch::new("drug_inventory"),
            prescriptions: Batch::new("prescriptions"),
            sales: Batch::new("drug_sales"),
            orders: Batch::new("procedure_order"),
            codes: Batch::new("procedure_order_code"),
            reports: Batch::new("procedure_report"),
            results: Batch::new("procedure_result"),
            specimens: Batch::new("procedure_specimen"),
        }
    }
}

impl OrderTables {
    /// Every batch, in write order.
    pub(crate) fn batches(&mut self) -> [&mut Batch; 9] {
        [
            &mut self.drugs,
            &mut self.inventory,
            &mut self.prescriptions,
            &mut self.sales,
            &mut self.orders,
            &mut self.codes,
            &mut self.reports,
            &mut self.results,
            &mut self.specimens,
        ]
    }

    /// The batches that hold encounter numbers, and the column holding them.
    pub(crate) fn encounter_columns(&mut self) -> [(&mut Batch, &'static str); 3] {
        [
            (&mut self.prescriptions, "encounter"),
            (&mut self.sales, "encounter"),
            (&mut self.orders, "encounter_id"),
        ]
    }

    pub(crate) fn count(&self, summary: &mut Summary) {
        summary.drugs += self.drugs.len();
        summary.prescriptions += self.prescriptions.len();
        summary.dispenses += self.sales.len();
        summary.procedure_orders += self.orders.len();
        summary.lab_results += self.results.len();
    }
}

/// A drug of the formulary: name, RxNorm code, NDC, strength (dose per tablet), form
/// (OpenEMR's `drug_form` option), unit (`drug_units`), interval (`drug_interval`).
struct Drug {
    name: &'static str,
    rxnorm: &'static str,
    ndc: &'static str,
    size: &'static str,
    form: &'static str,
    interval: &'static str,
    manufacturer: &'static str,
}

const FORMULARY: &[Drug] = &[
    Drug {
        name: "Lisinopril 10 MG Oral Tablet",
        rxnorm: "314076",
        ndc: "68180-0513-01",
        size: "10",
        form: "2",
        interval: "9",
        manufacturer: "Lupin",
    },
    Drug {
        name: "Metformin 500 MG Oral Tablet",
        rxnorm: "861007",
        ndc: "00093-1048-01",
        size: "500",
        form: "2",
        interval: "1",
        manufacturer: "Teva",
    },
    Drug {
        name: "Atorvastatin 20 MG Oral Tablet",
        rxnorm: "617310",
        ndc: "00378-3952-77",
        size: "20",
        form: "2",
        interval: "9",
        manufacturer: "Mylan",
    },
    Drug {
        name: "Levothyroxine 50 MCG Oral Tablet",
        rxnorm: "966224",
        ndc: "00378-1803-01",
        size: "50",
        form: "2",
        interval: "9",
        manufacturer: "Mylan",
    },
    Drug {
        name: "Omeprazole 20 MG Delayed Release Oral Capsule",
        rxnorm: "198053",
        ndc: "62175-0118-37",
        size: "20",
        form: "3",
        interval: "9",
        manufacturer: "Kremers Urban",
    },
    Drug {
        name: "Amlodipine 5 MG Oral Tablet",
        rxnorm: "197361",
        ndc: "59762-1530-01",
        size: "5",
        form: "2",
        interval: "9",
        manufacturer: "Greenstone",
    },
    Drug {
        name: "Amoxicillin 500 MG Oral Capsule",
        rxnorm: "308191",
        ndc: "65862-0015-01",
        size: "500",
        form: "3",
        interval: "2",
        manufacturer: "Aurobindo",
    },
    Drug {
        name: "Sertraline 50 MG Oral Tablet",
        rxnorm: "312940",
        ndc: "16714-0612-01",
        size: "50",
        form: "2",
        interval: "9",
        manufacturer: "NorthStar",
    },
];

/// The practice's formulary as seeded: (drug id, lot's inventory id) per [`FORMULARY`]
/// entry.
#[derive(Debug, Default)]
pub(crate) struct Formulary(Vec<(i64, i64)>);

/// Writes the formulary (every drug with one lot in stock).
pub(crate) fn formulary(
    rng: &mut Gen,
    ids: &mut OrderIds,
    tables: &mut OrderTables,
    created: &str,
) -> Formulary {
    let mut out = Vec::new();
    for drug in FORMULARY {
        let id = take(&mut ids.drugs);
        let mut row = Insert::into("drugs");
        row.set("drug_id", id)
            .set("uuid", rng.uuid())
            .set("name", drug.name)
            .set("ndc_number", drug.ndc)
            .set("form", drug.form)
            .set("size", drug.size)
            .set(
                "unit",
                if drug.size == "50" && drug.rxnorm == "966224" {
                    "7"
                } else {
                    "1"
                },
            )
            .set("route", "1")
            .set("related_code", format!("RXCUI:{}", drug.rxnorm))
            .set("drug_code", drug.rxnorm)
            .set("active", 1)
            .set("reorder_point", 100.0)
            .set("max_level", 1000.0)
            .set("date_created", created)
            .set("last_updated", created);
        tables.drugs.push(row);
        let lot = take(&mut ids.inventory);
        let mut row = Insert::into("drug_inventory");
        row.set("inventory_id", lot)
            .set("drug_id", id)
            .set(
                "lot_number",
                format!(
                    "{}{:06}",
                    &drug.manufacturer[..1],
                    rng.gen_range(0..1_000_000)
                ),
            )
            .set("expiration", "2027-12-31")
            .set("manufacturer", drug.manufacturer)
            .set("on_hand", rng.gen_range(200..2000_i64));
        tables.inventory.push(row);
        out.push((id, lot));
    }
    Formulary(out)
}

/// A laboratory test a panel reports: LOINC code, name, units, normal low and high,
/// decimals.
type Analyte = (&'static str, &'static str, &'static str, f64, f64, usize);

/// Panels the practice orders (LOINC code and name) with their analytes.
const PANELS: &[(&str, &str, &[Analyte])] = &[
    (
        "57698-3",
        "Lipid panel with direct LDL - Serum or Plasma",
        &[
            (
                "2093-3",
                "Cholesterol [Mass/volume] in Serum or Plasma",
                "mg/dL",
                125.0,
                200.0,
                0,
            ),
            (
                "2571-8",
                "Triglyceride [Mass/volume] in Serum or Plasma",
                "mg/dL",
                40.0,
                150.0,
                0,
            ),
            (
                "2085-9",
                "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
                "mg/dL",
                40.0,
                60.0,
                0,
            ),
            (
                "13457-7",
                "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
                "mg/dL",
                50.0,
                100.0,
                0,
            ),
        ],
    ),
    (
        "51990-0",
        "Basic metabolic panel - Blood",
        &[
            (
                "2345-7",
                "Glucose [Mass/volume] in Serum or Plasma",
                "mg/dL",
                70.0,
                99.0,
                0,
            ),
            (
                "3094-0",
                "Urea nitrogen [Mass/volume] in Serum or Plasma",
                "mg/dL",
                7.0,
                20.0,
                0,
            ),
            (
                "2160-0",
                "Creatinine [Mass/volume] in Serum or Plasma",
                "mg/dL",
                0.6,
                1.3,
                1,
            ),
            (
                "2951-2",
                "Sodium [Moles/volume] in Serum or Plasma",
                "mmol/L",
                135.0,
                145.0,
                0,
            ),
            (
                "2823-3",
                "Potassium [Moles/volume] in Serum or Plasma",
                "mmol/L",
                3.5,
                5.1,
                1,
            ),
        ],
    ),
    (
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        &[(
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            "%",
            4.0,
            5.6,
            1,
        )],
    ),
    (
        "58410-2",
        "CBC panel - Blood by Automated count",
        &[
            (
                "6690-2",
                "Leukocytes [#/volume] in Blood by Automated count",
                "10*3/uL",
                4.5,
                11.0,
                1,
            ),
            (
                "718-7",
                "Hemoglobin [Mass/volume] in Blood",
                "g/dL",
                12.0,
                17.5,
                1,
            ),
            (
                "777-3",
                "Platelets [#/volume] in Blood by Automated count",
                "10*3/uL",
                150.0,
                400.0,
                0,
            ),
        ],
    ),
    (
        "3016-3",
        "Thyrotropin [Units/volume] in Serum or Plasma",
        &[(
            "3016-3",
            "Thyrotropin [Units/volume] in Serum or Plasma",
            "m[IU]/L",
            0.4,
            4.0,
            2,
        )],
    ),
];

/// Diagnoses labs are ordered for.
const REASONS: &[&str] = &[
    "ICD10:Z00.00",
    "ICD10:E78.5",
    "ICD10:E11.9",
    "ICD10:I10",
    "ICD10:E03.9",
];

/// A patient's chart of orders: up to two laboratory orders at their visits (most with a
/// final report of every analyte, a few still pending) and up to two prescriptions from
/// the formulary, each dispensed at the clinic once per fill so far.
///
/// `visits` are the patient's encounters (number, when); `doctor` the prescriber's
/// (user id, user name).
pub(crate) fn patient(
    rng: &mut Gen,
    staff: &Staff,
    ids: &mut OrderIds,
    tables: &mut OrderTables,
    pid: i64,
    visits: &[(i64, PrimitiveDateTime)],
    doctor: (i64, &str),
) {
    if visits.is_empty() {
        return;
    }
    for _ in 0..rng.gen_range(0..=2) {
        let (encounter, at) = visits[rng.gen_range(0..visits.len())];
        lab_order(rng, ids, tables, pid, encounter, at, doctor.0);
    }
    for _ in 0..rng.gen_range(0..=2) {
        let (encounter, at) = visits[rng.gen_range(0..visits.len())];
        prescription(rng, staff, ids, tables, pid, encounter, at, doctor);
    }
}

fn lab_order(
    rng: &mut Gen,
    ids: &mut OrderIds,
    tables: &mut OrderTables,
    pid: i64,
    encounter: i64,
    at: PrimitiveDateTime,
    provider: i64,
) {
    let (code, name, analytes) = PANELS[rng.gen_range(0..PANELS.len())];
    let pending = rng.gen_bool(0.1);
    let id = take(&mut ids.orders);
    let ordered = datetime(at);
    let collected = datetime(at + Duration::minutes(20));
    let mut row = Insert::into("procedure_order");
    row.set("procedure_order_id", id)
        .set("uuid", rng.uuid())
        .set("provider_id", provider)
        .set("patient_id", pid)
        .set("encounter_id", encounter)
        .set("date_collected", collected.as_str())
        .set("date_ordered", ordered.as_str())
        .set(
            "order_priority",
            if rng.gen_bool(0.1) { "high" } else { "normal" },
        )
        .set("order_status", if pending { "pending" } else { "complete" })
        .set("activity", 1)
        .set("order_diagnosis", REASONS[rng.gen_range(0..REASONS.len())])
        .set(
            "specimen_fasting",
            if code == "57698-3" { "YES" } else { "" },
        )
        .set("procedure_order_type", "laboratory_test");
    tables.orders.push(row);
    let mut row = Insert::into("procedure_order_code");
    row.set("procedure_order_id", id)
        .set("procedure_order_seq", 1)
        .set("procedure_code", code)
        .set("procedure_name", name)
        .set("procedure_order_title", name)
        .set("procedure_type", "laboratory_test");
    tables.codes.push(row);
    let mut row = Insert::into("procedure_specimen");
    row.set("procedure_specimen_id", take(&mut ids.specimens))
        .set("uuid", rng.uuid())
        .set("procedure_order_id", id)
        .set("procedure_order_seq", 1)
        .set("specimen_identifier", format!("SP-{id:07}"))
        .set(
            "accession_identifier",
            format!("ACC{:08}", rng.gen_range(0..100_000_000)),
        )
        .set(
            "specimen_type_code",
            if code == "58410-2" || code == "4548-4" {
                "119297000"
            } else {
                "119364003"
            },
        )
        .set(
            "specimen_type",
            if code == "58410-2" || code == "4548-4" {
                "Blood specimen"
            } else {
                "Serum specimen"
            },
        )
        .set("collection_method_code", "28520004")
        .set("collection_method", "Venipuncture")
        .set("collected_date", collected.as_str())
        .set("volume_value", 5.0)
        .set("volume_unit", "mL")
        .set("created_at", collected.as_str())
        .set("updated_at", collected.as_str())
        .set("deleted", 0);
    tables.specimens.push(row);
    if pending {
        return;
    }
    let report = take(&mut ids.reports);
    let reported = datetime(at + Duration::hours(rng.gen_range(6..48)));
    let mut row = Insert::into("procedure_report");
    row.set("procedure_report_id", report)
        .set("uuid", rng.uuid())
        .set("procedure_order_id", id)
        .set("procedure_order_seq", 1)
        .set("date_collected", collected.as_str())
        .set("date_report", reported.as_str())
        .set("specimen_num", format!("SP-{id:07}"))
        .set("report_status", "final")
        .set("review_status", "reviewed");
    tables.reports.push(row);
    for &(loinc, text, units, low, high, decimals) in analytes {
        // Mostly within range; now and then out of it on either side.
        let spread = high - low;
        let value = low - spread * 0.3 + rng.gen_range(0.0..1.6) * spread;
        let flag = if value > high {
            "high"
        } else if value < low {
            "low"
        } else {
            "no"
        };
        let mut row = Insert::into("procedure_result");
        row.set("procedure_result_id", take(&mut ids.results))
            .set("uuid", rng.uuid())
            .set("procedure_report_id", report)
            .set("result_data_type", "N")
            .set("result_code", loinc)
            .set("result_text", text)
            .set("date", reported.as_str())
            .set("units", units)
            .set("result", format!("{value:.decimals$}"))
            .set("range", format!("{low:.decimals$}-{high:.decimals$}"))
            .set("abnormal", flag)
            .set("result_status", "final");
        tables.results.push(row);
    }
}

#[allow(clippy::too_many_arguments)]
fn prescription(
    rng: &mut Gen,
    staff: &Staff,
    ids: &mut OrderIds,
    tables: &mut OrderTables,
    pid: i64,
    encounter: i64,
    at: PrimitiveDateTime,
    (doctor, username): (i64, &str),
) {
    let index = rng.gen_range(0..FORMULARY.len());
    let drug = &FORMULARY[index];
    let (drug_id, lot) = staff.formulary.0[index];
    let id = take(&mut ids.prescriptions);
    let refills: i64 = rng.gen_range(0..=3);
    let stopped = rng.gen_bool(0.1);
    let written = datetime(at);
    let start = date(at.date());
    let mut row = Insert::into("prescriptions");
    row.set("id", id)
        .set("uuid", rng.uuid())
        .set("patient_id", pid)
        .set("date_added", written.as_str())
        .set("date_modified", written.as_str())
        .set("provider_id", doctor)
        .set("encounter", encounter)
        .set("start_date", start.as_str())
        .set("drug", drug.name)
        .set("drug_id", drug_id)
        .set("rxnorm_drugcode", drug.rxnorm)
        .set("form", drug.form)
        .set("dosage", "1")
        .set("quantity", "30")
        .set("size", drug.size)
        .set("unit", "1")
        .set("route", "1")
        .set("interval", drug.interval)
        .set("substitute", 1)
        .set("refills", refills)
        .set("per_refill", 30)
        .set("active", if stopped { 0 } else { 1 })
        .set("datetime", written.as_str())
        .set("user", username)
        .set(
            "end_date",
            stopped.then(|| date(at.date() + Duration::days(30))),
        )
        .set("usage_category", "community")
        .set("request_intent", "order")
        .set("created_by", doctor)
        .set("updated_by", doctor);
    tables.prescriptions.push(row);
    // Filled at the clinic's dispensary: the first fill that day, refills a month apart.
    for fill in 0..=refills {
        let handed = at + Duration::days(30 * fill) + Duration::minutes(45);
        if handed.date() > super::reference_day() {
            break;
        }
        let when = datetime(handed);
        let mut row = Insert::into("drug_sales");
        row.set("sales_id", take(&mut ids.sales))
            .set("uuid", rng.uuid())
            .set("drug_id", drug_id)
            .set("inventory_id", lot)
            .set("prescription_id", id)
            .set("pid", pid)
            .set("encounter", if fill == 0 { encounter } else { 0 })
            .set("user", username)
            .set("sale_date", when.as_str())
            .set("quantity", 30)
            .set("fee", 10.0)
            .set("trans_type", 1)
            .set("last_updated", when.as_str());
        tables.sales.push(row);
    }
}
