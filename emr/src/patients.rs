//! Patients (`patient_data`) as routes name them: by uuid (`:puuid`), by the legacy
//! number (`:pid`), or the portal caller's own; and OpenEMR's rules for a patient's
//! suffix and previous names. A leaf of the crate: it uses only the SDK.

use hearth_sdk::request::Request;
use hearth_sdk::response::{ApiError, Result};
use hearth_sdk::sql::{Column, Insert};
use hearth_sdk::store;
use hearth_sdk::validate::Validator;
use hearth_sdk::{Value, params};
use serde_json::{Map, Value as Json};

/// A patient a request acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// `patient_data.pid`, the key clinical tables use.
    pub pid: i64,
    /// `patient_data.uuid`.
    pub uuid: String,
}

fn find_patient(sql: &str, params: &[Value]) -> Result<Patient> {
    let row = store::query_one(sql, params)?.ok_or(ApiError::NotFound)?;
    Ok(Patient {
        pid: row.int("pid").unwrap_or_default(),
        uuid: row.text("uuid").unwrap_or_default().to_owned(),
    })
}

/// A new `patient_data` row as OpenEMR registers a patient: `uuid`, `pid` (from the
/// site's `pid` sequence), `pubpid` (the `pid` unless the body names one) and `date`,
/// `regdate` and `last_updated` stamped `now`; the caller sets the demographics.
pub fn new_patient(uuid: impl Into<Value>, pid: i64, pubpid: String, now: &str) -> Insert {
    let mut insert = Insert::into("patient_data");
    insert
        .set("uuid", uuid)
        .set("pid", pid)
        .set("pubpid", pubpid)
        .set("date", now)
        .set("regdate", now)
        .set("last_updated", now);
    insert
}

/// The patient with `puuid`; a 404 when there is none.
pub fn patient_by_uuid(puuid: &str) -> Result<Patient> {
    find_patient(
        "SELECT pid, uuid FROM patient_data WHERE uuid = $1",
        params![puuid],
    )
}

/// The patient with `pid`; a 404 when there is none.
pub fn patient_by_pid(pid: i64) -> Result<Patient> {
    find_patient(
        "SELECT pid, uuid FROM patient_data WHERE pid = $1",
        params![pid],
    )
}

/// The patient named by the uuid route parameter `param` (usually `puuid`): a 400 for a
/// malformed uuid, a 404 when no such patient exists.
pub fn path_patient(req: &Request, param: &str) -> Result<Patient> {
    patient_by_uuid(&req.uuid(param)?)
}

/// The patient named by the numeric route parameter `param` (usually `pid`): a 400 when
/// it is not a positive number, a 404 when no such patient exists.
pub fn path_pid(req: &Request, param: &str) -> Result<Patient> {
    patient_by_pid(req.id(param)?)
}

/// The portal caller's own patient (the token's patient); a 404 when the request is not
/// bound to one. Portal routes never take a patient from the path.
pub fn portal_patient(req: &Request) -> Result<Patient> {
    let puuid = req.caller().patient.as_deref().ok_or(ApiError::NotFound)?;
    patient_by_uuid(puuid)
}

/// The patient a route acts on: on the portal the caller's own patient; elsewhere the
/// patient named by the route's `:puuid` (uuid) or `:pid` (number) parameter. One
/// handler can so serve `/api/patient/:puuid/x` and `/portal/patient/x` alike.
pub fn patient(req: &Request) -> Result<Patient> {
    if req.family() == hearth_sdk::Family::Portal {
        portal_patient(req)
    } else if req.has_param("puuid") {
        path_patient(req, "puuid")
    } else if req.has_param("pid") {
        path_pid(req, "pid")
    } else {
        Err(ApiError::Internal(format!(
            "route {} names no patient",
            req.path()
        )))
    }
}

/// Suffixes OpenEMR reads off the end of a patient's last name when `suffix` is empty.
pub const NAME_SUFFIXES: &[&str] = &["Jr.", "Jr", "Sr.", "Sr", "II", "III", "IV"];

/// The `suffix` OpenEMR answers for a patient: the stored one, else a whole trailing word
/// of the last name that is a suffix (`Smith Jr.` gives `Jr.`, any case), else none.
pub fn patient_suffix<'a>(stored: Option<&'a str>, lname: Option<&'a str>) -> Option<&'a str> {
    if let Some(stored) = stored.filter(|s| !s.is_empty()) {
        return Some(stored);
    }
    let last_word = lname?.trim_end().rsplit(' ').next()?;
    NAME_SUFFIXES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(last_word))
        .then_some(last_word)
}

/// The `patient_history` columns of a previous name, which are also its keys in a
/// patient's `previous_names`, in the order [`formatted_previous_name`] takes them.
pub const PREVIOUS_NAME_PARTS: [&str; 6] = [
    "previous_name_prefix",
    "previous_name_first",
    "previous_name_middle",
    "previous_name_last",
    "previous_name_suffix",
    "previous_name_enddate",
];

/// OpenEMR's display form of a previous name from its parts (prefix, first, middle,
/// last, suffix, end date): "prefix first middle last suffix enddate", each only when
/// present.
pub fn formatted_previous_name(parts: [Option<&str>; 6]) -> String {
    let [prefix, first, middle, last, suffix, enddate] =
        parts.map(|part| part.filter(|text| !text.is_empty()));
    let mut name = String::new();
    if let Some(prefix) = prefix {
        name.push_str(prefix);
        name.push(' ');
    }
    name.push_str(first.unwrap_or_default());
    match middle {
        Some(middle) => {
            name.push(' ');
            name.push_str(middle);
            name.push(' ');
        }
        None => name.push(' '),
    }
    name.push_str(last.unwrap_or_default());
    for tail in [suffix, enddate].into_iter().flatten() {
        name.push(' ');
        name.push_str(tail);
    }
    name
}

/// The `patient_data` columns a request body may set (create and update); the server sets `pid`, `uuid`, `date`, `regdate`,
/// `created_by`, `updated_by` and `last_updated`.
pub const PATIENT_COLUMNS: &[Column] = &[
    Column::text("title"),
    Column::text("language"),
    Column::text("financial"),
    Column::text("fname"),
    Column::text("lname"),
    Column::text("mname"),
    Column::date("DOB"),
    Column::text("street"),
    Column::text("postal_code"),
    Column::text("city"),
    Column::text("state"),
    Column::text("country_code"),
    Column::text("drivers_license"),
    Column::text("ss"),
    Column::text("occupation"),
    Column::text("phone_home"),
    Column::text("phone_biz"),
    Column::text("phone_contact"),
    Column::text("phone_cell"),
    Column::int("pharmacy_id"),
    Column::text("status"),
    Column::text("contact_relationship"),
    Column::text("sex"),
    Column::text("referrer"),
    Column::text("referrerID"),
    Column::int("providerID"),
    Column::int("ref_providerID"),
    Column::text("email"),
    Column::text("email_direct"),
    Column::text("ethnoracial"),
    Column::text("race"),
    Column::text("ethnicity"),
    Column::text("religion"),
    Column::text("interpreter"),
    Column::text_or_null("interpreter_needed"),
    Column::text("migrantseasonal"),
    Column::text("family_size"),
    Column::text("monthly_income"),
    Column::text_or_null("billing_note"),
    Column::text("homeless"),
    Column::datetime("financial_review"),
    Column::text("pubpid"),
    Column::text("genericname1"),
    Column::text("genericval1"),
    Column::text("genericname2"),
    Column::text("genericval2"),
    Column::text("hipaa_mail"),
    Column::text("hipaa_voice"),
    Column::text("hipaa_notice"),
    Column::text("hipaa_message"),
    Column::text("hipaa_allowsms"),
    Column::text("hipaa_allowemail"),
    Column::text("squad"),
    Column::int("fitness"),
    Column::text("referral_source"),
    Column::text("usertext1"),
    Column::text("usertext2"),
    Column::text("usertext3"),
    Column::text("usertext4"),
    Column::text("usertext5"),
    Column::text("usertext6"),
    Column::text("usertext7"),
    Column::text("usertext8"),
    Column::text("userlist1"),
    Column::text("userlist2"),
    Column::text("userlist3"),
    Column::text("userlist4"),
    Column::text("userlist5"),
    Column::text("userlist6"),
    Column::text("userlist7"),
    Column::text("pricelevel"),
    Column::date("contrastart"),
    Column::text("completed_ad"),
    Column::date("ad_reviewed"),
    Column::text("vfc"),
    Column::text("mothersname"),
    Column::text_or_null("guardiansname"),
    Column::text("allow_imm_reg_use"),
    Column::text("allow_imm_info_share"),
    Column::text("allow_health_info_ex"),
    Column::text("allow_patient_portal"),
    Column::datetime("deceased_date"),
    Column::text("deceased_reason"),
    Column::int("soap_import_status"),
    Column::text("cmsportal_login"),
    Column::text_or_null("care_team_provider"),
    Column::text_or_null("care_team_facility"),
    Column::text_or_null("care_team_status"),
    Column::text("county"),
    Column::text_or_null("industry"),
    Column::text_or_null("imm_reg_status"),
    Column::text_or_null("imm_reg_stat_effdate"),
    Column::text_or_null("publicity_code"),
    Column::text_or_null("publ_code_eff_date"),
    Column::text_or_null("protect_indicator"),
    Column::text_or_null("prot_indi_effdate"),
    Column::text_or_null("guardianrelationship"),
    Column::text_or_null("guardiansex"),
    Column::text_or_null("guardianaddress"),
    Column::text_or_null("guardiancity"),
    Column::text_or_null("guardianstate"),
    Column::text_or_null("guardianpostalcode"),
    Column::text_or_null("guardiancountry"),
    Column::text_or_null("guardianphone"),
    Column::text_or_null("guardianworkphone"),
    Column::text_or_null("guardianemail"),
    Column::text_or_null("sexual_orientation"),
    Column::text_or_null("gender_identity"),
    Column::text_or_null("birth_fname"),
    Column::text_or_null("birth_lname"),
    Column::text_or_null("birth_mname"),
    Column::int("dupscore"),
    Column::text_or_null("name_history"),
    Column::text_or_null("suffix"),
    Column::text_or_null("street_line_2"),
    Column::text_or_null("patient_groups"),
    Column::text_or_null("prevent_portal_apps"),
    Column::text_or_null("provider_since_date"),
    Column::text_or_null("preferred_name"),
    Column::text_or_null("nationality_country"),
    Column::text_or_null("tribal_affiliations"),
    Column::text_or_null("sex_identified"),
    Column::text_or_null("pronoun"),
    Column::int("advance_directive_user_authenticator"),
    // Hearth's own (OpenEMR records no birth sex): US Core's `M`, `F` or `UNK`.
    Column::text_or_null("birth_sex"),
];

/// The values of `patient_data.birth_sex`: US Core's birth sex value set (female, male,
/// unknown). Not an OpenEMR column: Hearth records it for US Core's `us-core-birthsex`.
pub const BIRTH_SEXES: &[&str] = &["F", "M", "UNK"];

/// OpenEMR's PatientValidator rules for a patient body; on update (`insert` false) every
/// rule is optional, but empty values still fail.
pub fn validate_patient(body: &Map<String, Json>, insert: bool) -> Result<()> {
    let mut v = Validator::new(body);
    v.field("fname", "First Name", insert)
        .length_between(1, 255);
    v.field("lname", "Last Name", insert).length_between(2, 255);
    v.field("sex", "Gender", insert).length_between(4, 30);
    v.field("DOB", "Date of Birth", insert).datetime("Y-m-d");
    v.optional_allow_empty("email", "Email").email();
    v.optional_allow_empty("email_direct", "Trusted Email")
        .email();
    v.optional_allow_empty("birth_sex", "Birth Sex")
        .one_of(BIRTH_SEXES);
    v.finish()
}
