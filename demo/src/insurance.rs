//! Insurance for the demo: a handful of insurance companies (with their address) once
//! per run, then each patient's one or two policies (a primary, sometimes a secondary)
//! and, for adults, their employer. Rows are built as the insurance plugin writes them.

use hearth_sdk::sql::Insert;
use rand::Rng;
use time::{Date, PrimitiveDateTime};

use crate::Tables;
use crate::data::{CITIES, FEMALE_NAMES, MALE_NAMES, STREETS};
use crate::generate::Gen;

/// Companies every demo site bills: name, claim type (`insurance_type_codes.id`), CMS
/// payer id.
const COMPANIES: &[(&str, i64, &str)] = &[
    ("Medicare Part B", 2, "MCRB1"),
    ("State Medicaid", 3, "MCD01"),
    ("Blue Cross Blue Shield", 6, "BCBS1"),
    ("Aetna PPO", 11, "AET60"),
    ("UnitedHealthcare HMO", 19, "UHC87"),
    ("Cigna Open Access", 12, "CIG62"),
    ("Humana Medicare Advantage", 15, "HUM61"),
    ("TRICARE East", 5, "TRE99"),
];

/// Employers and the industry they are in.
const EMPLOYERS: &[(&str, &str)] = &[
    ("Northwind Traders", "Retail"),
    ("Contoso Manufacturing", "Manufacturing"),
    ("Fabrikam Logistics", "Transportation"),
    ("City School District", "Education"),
    ("Riverside Hospital", "Health care"),
    ("Tailspin Software", "Information technology"),
    ("Woodgrove Bank", "Finance"),
    ("County Public Works", "Public administration"),
];

const OCCUPATIONS: &[&str] = &[
    "Teacher",
    "Nurse",
    "Engineer",
    "Accountant",
    "Driver",
    "Clerk",
    "Technician",
    "Manager",
];

/// Writes the companies (ids from `next_id` on) and their addresses; answers their ids.
pub(crate) fn companies(
    rng: &mut Gen,
    next_id: &mut i64,
    tables: &mut Tables,
    created: &str,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for (name, kind, cms) in COMPANIES {
        let id = *next_id;
        *next_id += 1;
        let mut row = Insert::into("insurance_companies");
        row.set("id", id)
            .set("uuid", rng.uuid())
            .set("name", *name)
            .set("attn", "Claims Department")
            .set("cms_id", *cms)
            .set("ins_type_code", *kind)
            .set("x12_receiver_id", "")
            .set("alt_cms_id", "")
            .set("inactive", 0)
            .set("date_created", created)
            .set("last_updated", created);
        tables.insurance_companies.push(row);
        let (city, state, zip) = *rng.pick(CITIES);
        let mut address = Insert::into("addresses");
        address
            .set(
                "line1",
                format!("{} {}", rng.gen_range(100..9999), rng.pick(STREETS)),
            )
            .set("line2", "")
            .set("city", city)
            .set("state", state)
            .set("zip", zip)
            .set("country", "USA")
            .set("foreign_id", id);
        tables.addresses.push(address);
        ids.push(id);
    }
    ids
}

/// The patient a policy covers, as the policy rows need them.
pub(crate) struct Insured<'a> {
    pub(crate) pid: i64,
    pub(crate) fname: &'a str,
    pub(crate) lname: &'a str,
    pub(crate) dob: Date,
    pub(crate) female: bool,
    pub(crate) street: &'a str,
    pub(crate) city: &'a str,
    pub(crate) state: &'a str,
    pub(crate) zip: &'a str,
    pub(crate) phone: &'a str,
    /// When the patient registered: policies start then or later.
    pub(crate) registered: PrimitiveDateTime,
}

/// One or two policies of the patient (a primary; a secondary for one in three), from
/// the insurers `insurers`, and an employer for adults of working age.
pub(crate) fn patient(
    rng: &mut Gen,
    insurers: &[i64],
    tables: &mut Tables,
    who: &Insured<'_>,
    today: Date,
) {
    let age = (today - who.dob).whole_days() / 365;
    let kinds: &[&str] = if rng.gen_bool(0.33) {
        &["primary", "secondary"]
    } else {
        &["primary"]
    };
    let updated = crate::generate::datetime(who.registered);
    for kind in kinds {
        let insurer = insurers[rng.gen_range(0..insurers.len())];
        let start = who.registered.date() + time::Duration::days(rng.gen_range(0..60));
        // A child is covered through a parent; an adult mostly as the subscriber.
        let relationship = if age < 18 {
            "child"
        } else if rng.gen_bool(0.8) {
            "self"
        } else {
            "spouse"
        };
        let (fname, lname, dob, sex) = match relationship {
            "self" => (
                who.fname.to_owned(),
                who.lname,
                who.dob,
                if who.female { "Female" } else { "Male" },
            ),
            _ => {
                let female = rng.gen_bool(0.5);
                let first = *rng.pick(if female { FEMALE_NAMES } else { MALE_NAMES });
                let born = who.dob - time::Duration::days(rng.gen_range(20..40) * 365);
                let born = if relationship == "spouse" {
                    who.dob - time::Duration::days(rng.gen_range(-1500..1500))
                } else {
                    born
                };
                (
                    first.to_owned(),
                    who.lname,
                    born,
                    if female { "Female" } else { "Male" },
                )
            }
        };
        let mut row = Insert::into("insurance_data");
        row.set("uuid", rng.uuid())
            .set("type", *kind)
            .set("provider", insurer)
            .set(
                "plan_name",
                *rng.pick(&["Gold", "Silver", "Bronze", "Standard", "Choice Plus"]),
            )
            .set(
                "policy_number",
                format!(
                    "{}{:09}",
                    (b'A' + rng.gen_range(0..26u8)) as char,
                    rng.gen_range(0..1_000_000_000u64)
                ),
            )
            .set(
                "group_number",
                format!("GRP-{:05}", rng.gen_range(0..100_000)),
            )
            .set("subscriber_lname", lname)
            .set("subscriber_fname", fname.as_str())
            .set("subscriber_relationship", relationship)
            .set("subscriber_DOB", crate::generate::date(dob))
            .set("subscriber_street", who.street)
            .set("subscriber_postal_code", who.zip)
            .set("subscriber_city", who.city)
            .set("subscriber_state", who.state)
            .set("subscriber_country", "USA")
            .set("subscriber_phone", who.phone)
            .set("subscriber_sex", sex)
            .set("copay", *rng.pick(&["10", "20", "25", "40", ""]))
            .set("date", crate::generate::date(start))
            .set("pid", who.pid)
            .set("accept_assignment", "TRUE")
            .set("last_updated", updated.as_str());
        tables.insurance.push(row);
    }
    if (18..67).contains(&age) && rng.gen_bool(0.7) {
        let (name, industry) = *rng.pick(EMPLOYERS);
        let (city, state, zip) = *rng.pick(CITIES);
        let start = who.registered.date() - time::Duration::days(rng.gen_range(30..3650));
        let mut row = Insert::into("employer_data");
        row.set("uuid", rng.uuid())
            .set("name", name)
            .set(
                "street",
                format!("{} {}", rng.gen_range(1..999), rng.pick(STREETS)),
            )
            .set("postal_code", zip)
            .set("city", city)
            .set("state", state)
            .set("country", "USA")
            .set("date", updated.as_str())
            .set("pid", who.pid)
            .set("start_date", crate::generate::date(start))
            .set("occupation", *rng.pick(OCCUPATIONS))
            .set("industry", industry);
        tables.employers.push(row);
    }
}

/// Relationships (HL7 v3 RoleCode, the `related_person_relationship` list) of an adult's
/// contact person.
const ADULT_RELATIONS: &[(&str, bool)] = &[
    ("SPS", true),
    ("SPS", false),
    ("SIB", true),
    ("CHILD", false),
    ("FRND", true),
];

/// For one patient in two, the emergency contact: a `person`, its `contact`, the
/// `contact_relation` to the patient (a parent for a child) and a mobile phone
/// (`contact_telecom`), as FHIR RelatedPerson reads them. Ids from `ids` (person, contact).
pub(crate) fn related_person(
    rng: &mut Gen,
    ids: (&mut i64, &mut i64),
    tables: &mut Tables,
    who: &Insured<'_>,
    today: Date,
) {
    if !rng.gen_bool(0.5) {
        return;
    }
    let age = (today - who.dob).whole_days() / 365;
    let (code, female) = if age < 18 {
        if rng.gen_bool(0.6) {
            ("MTH", true)
        } else {
            ("FTH", false)
        }
    } else {
        *rng.pick(ADULT_RELATIONS)
    };
    let first = *rng.pick(if female { FEMALE_NAMES } else { MALE_NAMES });
    let born = match code {
        "MTH" | "FTH" => who.dob - time::Duration::days(rng.gen_range(20..40) * 365),
        "CHILD" => who.dob + time::Duration::days(rng.gen_range(20..35) * 365),
        _ => who.dob - time::Duration::days(rng.gen_range(-3000..3000)),
    };
    let stamp = crate::generate::datetime(who.registered);
    let person = *ids.0;
    *ids.0 += 1;
    let contact = *ids.1;
    *ids.1 += 1;
    let mut row = Insert::into("person");
    row.set("id", person)
        .set("uuid", rng.uuid())
        .set("first_name", first)
        .set("last_name", who.lname)
        .set("gender", if female { "Female" } else { "Male" })
        .set("birth_date", crate::generate::date(born))
        .set("active", 1)
        .set("created_date", stamp.as_str())
        .set("updated_date", stamp.as_str());
    tables.persons.push(row);
    let mut row = Insert::into("contact");
    row.set("id", contact)
        .set("foreign_table_name", "person")
        .set("foreign_id", person);
    tables.contacts.push(row);
    let mut row = Insert::into("contact_relation");
    row.set("uuid", rng.uuid())
        .set("contact_id", contact)
        .set("target_table", "patient_data")
        .set("target_id", who.pid)
        .set("active", 1)
        .set("relationship", code)
        .set("is_emergency_contact", 1)
        .set("can_receive_medical_info", i64::from(age < 18))
        .set("created_date", stamp.as_str())
        .set("updated_date", stamp.as_str());
    tables.relations.push(row);
    let mut row = Insert::into("contact_telecom");
    row.set("contact_id", contact)
        .set("system", "phone")
        .set("use", "mobile")
        .set(
            "value",
            format!(
                "{}-555-{:04}",
                rng.gen_range(201..990),
                rng.gen_range(100..10_000)
            ),
        );
    tables.telecoms.push(row);
}
