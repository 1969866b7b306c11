//! The synthetic rows: staff once per run, then each patient with their history. Every
//! row is an [`Insert`] built the way the plugins build theirs (`hearth-emr`'s row
//! builders where a plugin has one), plus the columns the API cannot set. The random
//! source is drawn in a fixed order, so a seed always gives the same rows.

use hearth_emr::{Form, Issues, Written};
use hearth_sdk::sql::Insert;
use hearth_sdk::{Value, comb_uuid};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use time::{Date, Month, PrimitiveDateTime, Time};

use crate::data::*;
use crate::{Ids, Tables};

pub(crate) mod care;
pub(crate) mod orders;

/// The random source and the clock uuids are made from. Uuids take their time from a
/// clock that starts at the reference day and ticks a millisecond per uuid, as rows
/// written one after another get them from the host: so they arrive in index order,
/// which keeps the unique indexes append-only and the seed fast.
pub(crate) struct Gen {
    rng: StdRng,
    clock_ms: u64,
}

impl Gen {
    pub(crate) fn new(seed: u64) -> Gen {
        let start = PrimitiveDateTime::new(reference_day(), Time::MIDNIGHT).assume_utc();
        Gen {
            rng: StdRng::seed_from_u64(seed),
            clock_ms: (start.unix_timestamp_nanos() / 1_000_000) as u64,
        }
    }

    /// The next uuid, in the host's form ([`comb_uuid`]) at the next tick of the clock.
    pub(crate) fn uuid(&mut self) -> String {
        let random: [u8; 16] = self.rng.r#gen();
        self.clock_ms += 1;
        comb_uuid(self.clock_ms, random)
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        items.choose(&mut self.rng).expect("a non-empty list")
    }
}

impl std::ops::Deref for Gen {
    type Target = StdRng;
    fn deref(&self) -> &StdRng {
        &self.rng
    }
}

impl std::ops::DerefMut for Gen {
    fn deref_mut(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

fn take(counter: &mut i64) -> i64 {
    let id = *counter;
    *counter += 1;
    id
}

/// The day the synthetic history ends: fixed, so a seed always gives the same rows.
fn reference_day() -> Date {
    Date::from_calendar_date(2025, Month::June, 30).expect("a valid date")
}

/// `YYYY-MM-DD HH:MM:SS`, as the SDK's clock writes datetimes.
pub(crate) fn datetime(moment: PrimitiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        moment.year(),
        moment.month() as u8,
        moment.day(),
        moment.hour(),
        moment.minute(),
        moment.second()
    )
}

pub(crate) fn date(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        day.month() as u8,
        day.day()
    )
}

/// A moment `days_back` days before the reference day, in office hours.
fn moment(rng: &mut Gen, days_back: i64) -> PrimitiveDateTime {
    let day = reference_day() - time::Duration::days(days_back);
    let at = Time::from_hms(rng.gen_range(8..18), rng.gen_range(0..4) * 15, 0).expect("a time");
    PrimitiveDateTime::new(day, at)
}

fn phone(rng: &mut Gen) -> String {
    format!(
        "{}-555-{:04}",
        rng.gen_range(201..990),
        rng.gen_range(100..10_000)
    )
}

fn npi(rng: &mut Gen) -> String {
    format!("1{:09}", rng.gen_range(0..1_000_000_000u64))
}

/// The seeded facilities and practitioners patients are seen at and by.
pub(crate) struct Staff {
    /// (id, name) of each facility.
    facilities: Vec<(i64, String)>,
    /// (id, user name, facility index) of each practitioner.
    practitioners: Vec<(i64, String, usize)>,
    /// The `questionnaire_repository` id of the PHQ-2 (see [`care::questionnaires`]).
    pub(crate) questionnaire: i64,
    /// The ids of the insurance companies patients' policies are with.
    insurers: Vec<i64>,
    /// The drugs of the practice's formulary and their lots.
    formulary: orders::Formulary,
}

impl Staff {
    /// Writes `facilities` facilities and `practitioners` practitioners into `tables`.
    pub(crate) fn generate(
        rng: &mut Gen,
        ids: &mut Ids,
        tables: &mut Tables,
        facilities: u64,
        practitioners: u64,
    ) -> Staff {
        let created = datetime(moment(rng, 3 * 365));
        let mut staff = Staff {
            facilities: Vec::new(),
            practitioners: Vec::new(),
            questionnaire: 0,
            insurers: Vec::new(),
            formulary: orders::Formulary::default(),
        };
        for n in 0..facilities {
            let id = take(&mut ids.facility);
            let (city, state, zip) = *rng.pick(CITIES);
            let name = format!(
                "{city} {}",
                FACILITY_KINDS[n as usize % FACILITY_KINDS.len()]
            );
            let mut row = Insert::into("facility");
            row.set("id", id)
                .set("uuid", rng.uuid())
                .set("name", name.as_str())
                .set("phone", phone(rng))
                .set("fax", phone(rng))
                .set(
                    "street",
                    format!("{} {}", rng.gen_range(1..999), rng.pick(STREETS)),
                )
                .set("city", city)
                .set("state", state)
                .set("postal_code", zip)
                .set("country_code", "US")
                .set(
                    "federal_ein",
                    format!(
                        "{:02}-{:07}",
                        rng.gen_range(10..99),
                        rng.gen_range(0..10_000_000)
                    ),
                )
                .set(
                    "email",
                    format!(
                        "contact@{}.example.org",
                        name.to_lowercase().replace(' ', "-")
                    ),
                )
                .set("facility_npi", npi(rng))
                .set("service_location", 1)
                .set("billing_location", 1)
                .set("pos_code", 11)
                .set("last_updated", created.as_str())
                .set("organization_type", "prov")
                .set("date_created", created.as_str())
                // The first facility is the practice's business entity.
                .set("primary_business_entity", n == 0);
            tables.facility.push(row);
            staff.facilities.push((id, name));
        }
        for _ in 0..practitioners {
            let id = take(&mut ids.users);
            let female = rng.gen_bool(0.5);
            let fname = *rng.pick(if female { FEMALE_NAMES } else { MALE_NAMES });
            let lname = *rng.pick(LAST_NAMES);
            // The id keeps user names unique however often a site is seeded.
            let username = format!("{}{}{id}", &fname[..1], lname).to_lowercase();
            let facility = rng.gen_range(0..staff.facilities.len());
            let (specialty, taxonomy) = *rng.pick(SPECIALTIES);
            let mut row = Insert::into("users");
            row.set("id", id)
                .set("uuid", rng.uuid())
                .set("username", username.as_str())
                .set("fname", fname)
                .set("lname", lname)
                .set("title", if rng.gen_bool(0.8) { "Dr." } else { "" })
                .set("npi", npi(rng))
                .set("specialty", specialty)
                .set("taxonomy", taxonomy)
                .set("facility_id", staff.facilities[facility].0)
                .set("facility", staff.facilities[facility].1.as_str())
                .set("email", format!("{username}@example.org"))
                .set("phone", phone(rng))
                .set("active", 1)
                .set("authorized", 1)
                .set("last_updated", created.as_str())
                .set("physician_type", *rng.pick(PHYSICIAN_TYPES))
                .set("date_created", created.as_str());
            tables.users.push(row);
            staff.practitioners.push((id, username, facility));
        }
        staff.insurers =
            crate::insurance::companies(rng, &mut ids.insurance_company, tables, &created);
        staff.formulary = orders::formulary(rng, &mut ids.orders, &mut tables.orders, &created);
        staff
    }
}

/// One patient and their history.
pub(crate) fn patient(rng: &mut Gen, staff: &Staff, ids: &mut Ids, tables: &mut Tables) {
    let pid = take(&mut ids.pid);
    let female = rng.gen_bool(0.52);
    let fname = *rng.pick(if female { FEMALE_NAMES } else { MALE_NAMES });
    let lname = *rng.pick(LAST_NAMES);
    let age_days = rng.gen_range(1..90) * 365 + rng.gen_range(0..365);
    let dob = reference_day() - time::Duration::days(age_days);
    let back = rng.gen_range(365..6 * 365);
    let registered = moment(rng, back);
    let (city, state, zip) = *rng.pick(CITIES);
    let (doctor, doctor_name, home) =
        staff.practitioners[rng.gen_range(0..staff.practitioners.len())].clone();
    let language = *rng.pick(&["english", "english", "english", "spanish", "french"]);
    let street = format!("{} {}", rng.gen_range(1..9999), rng.pick(STREETS));
    let home_phone = phone(rng);
    let mut row = hearth_emr::new_patient(rng.uuid(), pid, pid.to_string(), &datetime(registered));
    row.set("id", take(&mut ids.patient_data))
        .set("title", if female { "Ms." } else { "Mr." })
        .set("fname", fname)
        .set("lname", lname)
        .set("mname", "")
        .set("DOB", date(dob))
        .set("sex", if female { "Female" } else { "Male" })
        .set("birth_sex", if female { "F" } else { "M" })
        .set("street", street.as_str())
        .set("city", city)
        .set("state", state)
        .set("postal_code", zip)
        .set("country_code", "US")
        .set("phone_home", home_phone.as_str())
        .set("phone_cell", phone(rng))
        .set(
            "email",
            format!("{fname}.{lname}{pid}@example.com").to_lowercase(),
        )
        .set(
            "status",
            *rng.pick(&[
                "married",
                "single",
                "divorced",
                "widowed",
                "domestic partner",
            ]),
        )
        .set("language", language)
        .set(
            "race",
            *rng.pick(&[
                "white",
                "black_or_afri_amer",
                "asian",
                "amer_ind_or_alaska_native",
                "declne_to_specfy",
            ]),
        )
        .set(
            "ethnicity",
            *rng.pick(&["not_hisp_or_latin", "not_hisp_or_latin", "hisp_or_latin"]),
        )
        .set("providerID", doctor)
        // Reported sex and pronouns as most patients give them; a few prefer a short
        // form of their first name; speakers of other languages may need an interpreter.
        .set("sex_identified", if female { "Female" } else { "Male" })
        .set(
            "pronoun",
            match rng.gen_range(0..20) {
                0 => "they_them",
                _ if female => "she_her",
                _ => "he_him",
            },
        )
        .set(
            "preferred_name",
            rng.gen_bool(0.15).then(|| &fname[..fname.len().min(3)]),
        )
        .set(
            "interpreter",
            if language == "english" { "" } else { language },
        )
        .set(
            "interpreter_needed",
            if language == "english" { "no" } else { "yes" },
        )
        .set("nationality_country", "US");
    tables.patient.push(row);
    let insured = crate::insurance::Insured {
        pid,
        fname,
        lname,
        dob,
        female,
        street: &street,
        city,
        state,
        zip,
        phone: &home_phone,
        registered,
    };
    crate::insurance::patient(rng, &staff.insurers, tables, &insured, reference_day());
    crate::insurance::related_person(
        rng,
        (&mut ids.person, &mut ids.contact),
        tables,
        &insured,
        reference_day(),
    );

    // Encounters, newest last, each with its `forms` row, most with vitals and a note.
    let written = Written {
        pid,
        by: &doctor_name,
    };
    let visits = rng.gen_range(1..=4);
    let mut patient_encounters = Vec::new();
    let mut visit_times = Vec::new();
    let since = (reference_day() - registered.date()).whole_days().max(1);
    for _ in 0..visits {
        let back = rng.gen_range(0..since);
        let when = moment(rng, back);
        let at = datetime(when);
        let number = tables.placeholder();
        patient_encounters.push(number);
        visit_times.push((number, when));
        let facility = &staff.facilities[home];
        let (reason, category) = *rng.pick(REASONS);
        let id = take(&mut ids.form_encounter);
        let mut row = Insert::into(Form::ENCOUNTER.table);
        row.set("id", id)
            .set("uuid", rng.uuid())
            .set("pid", pid)
            .set("encounter", number)
            .set("date", at.as_str())
            .set("reason", reason)
            .set("facility", facility.1.as_str())
            .set("facility_id", facility.0)
            .set("billing_facility", facility.0)
            .set("pc_catid", category)
            .set("class_code", if rng.gen_bool(0.05) { "VR" } else { "AMB" })
            .set("sensitivity", "normal")
            .set("provider_id", doctor)
            .set("pos_code", 11)
            .set("last_update", at.as_str());
        tables.encounter.push(row);
        register(
            rng,
            ids,
            tables,
            &Form::ENCOUNTER,
            written,
            (number, id),
            &at,
        );
        if rng.gen_bool(0.8) {
            let id = take(&mut ids.form_vitals);
            let height: f64 = rng.gen_range(58.0..76.0_f64).round();
            let weight: f64 = (rng.gen_range(100.0..260.0_f64) * 10.0).round() / 10.0;
            let bmi = (703.0 * weight / (height * height) * 10.0).round() / 10.0;
            let mut row = Form::VITALS.row(rng.uuid(), written, &at);
            row.set("id", id)
                .set("date", at.as_str())
                .set("bps", rng.gen_range(100..160).to_string())
                .set("bpd", rng.gen_range(60..100).to_string())
                .set("weight", weight)
                .set("height", height)
                .set(
                    "temperature",
                    (rng.gen_range(97.0..99.8_f64) * 10.0).round() / 10.0,
                )
                .set("temp_method", "Oral")
                .set("pulse", f64::from(rng.gen_range(55..101)))
                .set("respiration", f64::from(rng.gen_range(12..21)))
                .set("BMI", bmi)
                .set("oxygen_saturation", f64::from(rng.gen_range(94..101)));
            tables.vitals.push(row);
            register(rng, ids, tables, &Form::VITALS, written, (number, id), &at);
        }
        if rng.gen_bool(0.6) {
            let id = take(&mut ids.form_soap);
            let (subjective, objective, assessment, plan) = *rng.pick(SOAP_NOTES);
            let mut row = Form::SOAP.row(rng.uuid(), written, &at);
            row.set("id", id)
                .set("date", at.as_str())
                .set("subjective", subjective)
                .set("objective", objective)
                .set("assessment", assessment)
                .set("plan", plan);
            tables.soap.push(row);
            register(rng, ids, tables, &Form::SOAP, written, (number, id), &at);
        }
    }

    // Tobacco use, as OpenEMR's social history records it: the US Core smoking status.
    if rng.gen_bool(0.9) {
        let back = rng.gen_range(0..since);
        let at = datetime(moment(rng, back));
        let (note, status) = *rng.pick(TOBACCO);
        let mut row = Insert::into(crate::HISTORY_DATA);
        row.set("id", take(&mut ids.history_data))
            .set("uuid", rng.uuid())
            .set("pid", pid)
            .set("date", at.as_str())
            .set("tobacco", format!("{note}|{status}|{}", &at[..10]).as_str())
            .set("user", doctor_name.as_str())
            .set("last_updated", at.as_str());
        tables.history.push(row);
    }

    let issue = IssueOf { written, since };
    for _ in 0..rng.gen_range(0..=3) {
        let (title, code) = *rng.pick(PROBLEMS);
        let id = issue.add(
            rng,
            ids,
            tables,
            Issues::MEDICAL_PROBLEMS,
            (title, code),
            ("", "confirmed", None),
        );
        if rng.gen_bool(0.5) {
            let encounter = *rng.pick(&patient_encounters);
            let mut row = Insert::into(crate::ISSUE_ENCOUNTER);
            row.set("id", take(&mut ids.issue_encounter))
                .set("pid", pid)
                .set("list_id", id)
                .set("encounter", encounter)
                .set("resolved", 0);
            tables.issue_encounter.push(row);
        }
    }
    for _ in 0..rng.gen_range(0..=2) {
        let (title, reaction, severity) = *rng.pick(ALLERGIES);
        issue.add(
            rng,
            ids,
            tables,
            Issues::ALLERGIES,
            (title, ""),
            (reaction, "confirmed", Some(severity)),
        );
    }
    for _ in 0..rng.gen_range(0..=4) {
        let title = *rng.pick(MEDICATIONS);
        let none = ("", "", None);
        issue.add(rng, ids, tables, Issues::MEDICATIONS, (title, ""), none);
    }
    if rng.gen_bool(0.2) {
        let (title, code) = *rng.pick(SURGERIES);
        let none = ("", "", None);
        issue.add(rng, ids, tables, Issues::SURGERIES, (title, code), none);
    }
    if rng.gen_bool(0.1) {
        let title = *rng.pick(DENTAL);
        issue.add(
            rng,
            ids,
            tables,
            Issues::DENTAL,
            (title, ""),
            ("", "", None),
        );
    }
    appointments(rng, staff, ids, tables, pid);
    immunizations(rng, staff, ids, tables, (pid, since));
    let care_visits: Vec<(i64, String)> = visit_times
        .iter()
        .map(|(n, w)| (*n, datetime(*w)))
        .collect();
    let of = care::CareOf {
        pid,
        since,
        visits: &care_visits,
        doctor: (doctor, &doctor_name, home),
    };
    care::patient(rng, staff, ids, tables, of);
    orders::patient(
        rng,
        staff,
        &mut ids.orders,
        &mut tables.orders,
        pid,
        &visit_times,
        (doctor, doctor_name.as_str()),
    );
    documents(rng, ids, tables, (pid, since), (fname, lname));
}

/// Category ids of OpenEMR's shipped document categories (migration 0510).
const LAB_REPORT: i64 = 2;
const MEDICAL_RECORD: i64 = 3;
const PATIENT_PHOTOGRAPH: i64 = 10;

/// Lab panels a report shows: name, then (test, result) lines.
const LAB_PANELS: &[(&str, &[&str])] = &[
    (
        "Basic metabolic panel",
        &[
            "Glucose: 92 mg/dL",
            "Sodium: 140 mmol/L",
            "Potassium: 4.1 mmol/L",
            "Creatinine: 0.9 mg/dL",
        ],
    ),
    (
        "Lipid panel",
        &[
            "Total cholesterol: 182 mg/dL",
            "LDL: 104 mg/dL",
            "HDL: 56 mg/dL",
            "Triglycerides: 110 mg/dL",
        ],
    ),
    (
        "Complete blood count",
        &[
            "WBC: 6.2 10*3/uL",
            "Hemoglobin: 13.8 g/dL",
            "Platelets: 250 10*3/uL",
        ],
    ),
    ("Hemoglobin A1c", &["HbA1c: 5.6 %"]),
];

/// Up to three documents of patient `pid` since they registered: a lab report and a
/// referral letter (one-page PDFs) and a patient photograph (a small PNG), stored as the
/// document plugin stores an upload: the `documents` row (SHA-256 `hash`), its category
/// link and its bytes.
fn documents(
    rng: &mut Gen,
    ids: &mut Ids,
    tables: &mut Tables,
    (pid, since): (i64, i64),
    (fname, lname): (&str, &str),
) {
    let name = format!("{fname} {lname}");
    let mut files: Vec<(i64, String, &str, Vec<u8>)> = Vec::new();
    if rng.gen_bool(0.7) {
        let (panel, lines) = *rng.pick(LAB_PANELS);
        let mut text = vec![format!("{panel} - {name}")];
        text.extend(lines.iter().map(|l| (*l).to_owned()));
        let text: Vec<&str> = text.iter().map(String::as_str).collect();
        let file = format!("{}.pdf", panel.to_lowercase().replace(' ', "-"));
        files.push((
            LAB_REPORT,
            file,
            "application/pdf",
            crate::files::pdf(&text),
        ));
    }
    if rng.gen_bool(0.3) {
        let text = [
            format!("Referral letter - {name}"),
            "Please see this patient for a routine consultation.".to_owned(),
            "History and medications attached.".to_owned(),
        ];
        let text: Vec<&str> = text.iter().map(String::as_str).collect();
        files.push((
            MEDICAL_RECORD,
            "referral.pdf".to_owned(),
            "application/pdf",
            crate::files::pdf(&text),
        ));
    }
    if rng.gen_bool(0.5) {
        let from = [rng.r#gen(), rng.r#gen(), rng.r#gen()];
        let to = [rng.r#gen(), rng.r#gen(), rng.r#gen()];
        let png = crate::files::png(32, 24, from, to);
        files.push((PATIENT_PHOTOGRAPH, "photo.png".to_owned(), "image/png", png));
    }
    for (category, file, mimetype, bytes) in files {
        let back = rng.gen_range(0..since);
        let at = datetime(moment(rng, back));
        let id = take(&mut ids.documents);
        let mut row = Insert::into(crate::DOCUMENTS);
        row.set("id", id)
            .set("uuid", rng.uuid())
            .set("type", "file_url")
            .set("size", bytes.len() as i64)
            .set("date", at.as_str())
            .set("revision", at.as_str())
            .set("url", format!("hearth:document_contents/{id}"))
            .set("mimetype", mimetype)
            .set("foreign_id", pid)
            .set("docdate", &at[..10])
            .set("hash", hearth_emr::documents::sha256_hex(&bytes))
            .set("name", file.as_str())
            .set("encounter_id", 0);
        tables.documents.push(row);
        let mut link = Insert::into(crate::DOCUMENT_LINKS);
        link.set("category_id", category).set("document_id", id);
        tables.document_links.push(link);
        let mut content = Insert::into(crate::DOCUMENT_CONTENTS);
        content
            .set("document_id", id)
            .set("data", Value::Blob(bytes));
        tables.document_contents.push(content);
    }
}

/// Vaccines adults get (CVX code, manufacturer, dose in mL), as the CVX codes the
/// immunizations migration loads.
const VACCINES: &[(&str, &str, f64)] = &[
    ("140", "Sanofi Pasteur", 0.5),
    ("150", "Seqirus", 0.5),
    ("115", "GlaxoSmithKline", 0.5),
    ("33", "Merck Sharp & Dohme", 0.5),
    ("133", "Pfizer", 0.5),
    ("187", "GlaxoSmithKline", 0.5),
    ("208", "Pfizer", 0.3),
    ("207", "Moderna", 0.5),
    ("43", "Merck Sharp & Dohme", 1.0),
];

/// Up to three immunizations of patient `pid` given since they registered (`since` days
/// before the reference day), by their doctor's colleagues; now and then a refused dose.
fn immunizations(
    rng: &mut Gen,
    staff: &Staff,
    ids: &mut Ids,
    tables: &mut Tables,
    (pid, since): (i64, i64),
) {
    for _ in 0..rng.gen_range(0..=3) {
        let (cvx, maker, dose) = *rng.pick(VACCINES);
        let back = rng.gen_range(0..since);
        let at = moment(rng, back);
        let giver = staff.practitioners[rng.gen_range(0..staff.practitioners.len())].0;
        let refused = rng.gen_bool(0.05);
        let mut row = Insert::into(crate::IMMUNIZATIONS);
        row.set("id", take(&mut ids.immunizations))
            .set("uuid", rng.uuid())
            .set("patient_id", pid)
            .set("administered_date", datetime(at))
            .set("cvx_code", cvx)
            .set("manufacturer", if refused { "" } else { maker })
            .set(
                "lot_number",
                if refused {
                    String::new()
                } else {
                    format!("{}{:05}", &maker[..1], rng.gen_range(0..100_000))
                },
            )
            .set("administered_by_id", (!refused).then_some(giver))
            .set("amount_administered", (!refused).then_some(dose))
            .set("amount_administered_unit", if refused { "" } else { "ml" })
            .set(
                "expiration_date",
                (!refused).then(|| date(at.date() + time::Duration::days(365))),
            )
            .set("route", if refused { "" } else { "intramuscular" })
            .set(
                "administration_site",
                if refused {
                    ""
                } else {
                    *rng.pick(&["left_deltoid", "right_deltoid"])
                },
            )
            .set(
                "completion_status",
                if refused { "Refused" } else { "Completed" },
            )
            .set(
                "refusal_reason",
                if refused { "patient_objection" } else { "" },
            )
            .set("created_by", giver)
            .set("create_date", datetime(at))
            .set("update_date", datetime(at));
        tables.immunizations.push(row);
    }
}

/// Calendar statuses of past appointments (mostly checked out) and of upcoming ones.
const PAST_STATUSES: &[&str] = &[">", ">", ">", "$", "@", "x", "%", "?"];
const UPCOMING_STATUSES: &[&str] = &["-", "-", "*", "AVM", "SMS", "^", "x"];

/// Calendar categories a visit is booked under (OpenEMR's shipped ids and names).
const VISIT_CATEGORIES: &[(i64, &str)] = &[
    (5, "Office Visit"),
    (9, "Established Patient"),
    (10, "New Patient"),
    (13, "Preventive Care Services"),
];

/// Half-hour slots a provider's day holds, from 08:00.
const SLOTS_PER_DAY: i64 = 16;

/// One to four appointments of patient `pid` over the year around the reference day
/// (half before it, half after), as `/api/patient/:pid/appointment` books them. Each
/// appointment's provider and slot follow from its `pc_eid`: provider `pc_eid mod n`,
/// and that provider's k-th appointment on a day and half-hour slot of its own (37 steps
/// through the 365 days, then the next slot), so no provider is booked twice at once
/// for the first 5,840 appointments each.
fn appointments(rng: &mut Gen, staff: &Staff, ids: &mut Ids, tables: &mut Tables, pid: i64) {
    let providers = staff.practitioners.len() as i64;
    for _ in 0..rng.gen_range(1..=4) {
        let eid = take(&mut ids.appointment);
        let (provider, _, home) = &staff.practitioners[(eid % providers) as usize];
        let k = eid / providers;
        let day =
            reference_day() - time::Duration::days(182) + time::Duration::days((k * 37) % 365);
        let start = 8 * 3600 + (k / 365 % SLOTS_PER_DAY) * 1800;
        let minutes: i64 = *rng.pick(&[15, 15, 30]);
        let clock = |seconds: i64| format!("{:02}:{:02}:00", seconds / 3600, seconds / 60 % 60);
        let statuses = if day < reference_day() {
            PAST_STATUSES
        } else {
            UPCOMING_STATUSES
        };
        let (category, title) = *rng.pick(VISIT_CATEGORIES);
        let booked = PrimitiveDateTime::new(
            day - time::Duration::days(rng.gen_range(1..60)),
            Time::from_hms(rng.gen_range(8..17), rng.gen_range(0..60), 0).expect("a time"),
        );
        let facility = staff.facilities[*home].0;
        let mut row = Insert::into(crate::APPOINTMENTS);
        row.set("pc_eid", eid)
            .set("uuid", rng.uuid())
            .set("pc_catid", category)
            .set("pc_aid", *provider)
            .set("pc_pid", pid)
            .set("pc_title", title)
            .set("pc_time", datetime(booked))
            .set("pc_hometext", rng.pick(REASONS).0)
            .set("pc_informant", *provider)
            .set("pc_eventDate", date(day))
            .set("pc_duration", minutes * 60)
            .set("pc_startTime", clock(start))
            .set("pc_endTime", clock(start + minutes * 60))
            .set("pc_eventstatus", 1)
            .set("pc_sharing", 1)
            .set("pc_apptstatus", *rng.pick(statuses))
            .set("pc_facility", facility)
            .set("pc_billing_location", facility);
        tables.appointments.push(row);
    }
}

/// The `forms` row of encounter `number`'s form row `form_id`, as the plugins'
/// `add_form` writes it ([`Form::registration`]).
fn register(
    rng: &mut Gen,
    ids: &mut Ids,
    tables: &mut Tables,
    form: &Form,
    written: Written<'_>,
    (number, form_id): (i64, i64),
    at: &str,
) {
    let mut row = form.registration(rng.uuid(), at, written, number, form_id);
    row.set("id", take(&mut ids.forms));
    tables.forms.push(row);
}

/// Who an issue belongs to and how far back its dates may go.
struct IssueOf<'a> {
    written: Written<'a>,
    since: i64,
}

impl IssueOf<'_> {
    /// A `lists` row of `issues`' type as the plugins' `Issues::insert` writes it
    /// ([`Issues::row`], plus reaction, verification and severity, which the API cannot
    /// set); answers its id.
    fn add(
        &self,
        rng: &mut Gen,
        ids: &mut Ids,
        tables: &mut Tables,
        issues: Issues,
        (title, diagnosis): (&str, &str),
        (reaction, verification, severity): (&str, &str, Option<&str>),
    ) -> i64 {
        let back = rng.gen_range(0..self.since);
        let at = moment(rng, back);
        let back = rng.gen_range(0..self.since + 3650);
        let begun = moment(rng, back).min(at);
        let ended = (rng.gen_bool(0.15) && begun < at).then(|| datetime(at));
        let id = take(&mut ids.lists);
        let mut row = issues.row(rng.uuid(), self.written, &datetime(at));
        row.set("id", id)
            .set("title", title)
            .set("begdate", datetime(begun))
            .set("enddate", ended)
            .set("diagnosis", diagnosis)
            .set("comments", Value::Null)
            .set("reaction", reaction)
            .set("verification", verification)
            .set("severity_al", severity);
        tables.lists.push(row);
        tables.list_types.push(issues);
        id
    }
}
