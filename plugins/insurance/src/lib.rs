//! OpenEMR insurance: the companies (`insurance_companies` and their `addresses` row) and
//! the claim types they file under (`insurance_type_codes`), in bare payloads; a patient's
//! policies (`insurance_data`) with CoverageValidator's rules and `$swap-insurance`, and
//! the patient's employers (`employer_data`), in the legacy envelope.
//!
//! Where OpenEMR is defective Hearth is not: creating and updating a company works
//! (OpenEMR answers 500, its controller calls a validator method that does not exist);
//! statuses are real; a policy update changes only the fields sent. `$swap-insurance` stays
//! a GET as OpenEMR routes it, but needs its own scope and the write ACL, changes nothing
//! when the policy already has the type (so a repeated GET is harmless), refuses a swap
//! that would break the one-policy-per-type-and-day rule with a 409, and is never cached.

use hearth_emr::prelude::*;
use hearth_sdk::{new_uuid, time};

/// The insurance resource.
pub struct Insurance;

impl Resource for Insurance {
    const NAME: &'static str = "insurance";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Insurance companies and types, patients' insurance policies and employers";
    const WORDS: &'static [Words] = &[
        Words::new(
            "insurance_company",
            "Insurance companies",
            "insurance companies",
        ),
        Words::new("insurance_type", "Insurance types", "insurance claim types"),
        Words::new("insurance", "Insurance", "patients' insurance policies"),
        Words::new("employer", "Employers", "patients' employers"),
    ];
    const READS: &'static [&'static str] =
        &["patient_data", "insurance_type_codes", "list_options"];
    const WRITES: &'static [&'static str] = &[
        "insurance_companies",
        "addresses",
        "insurance_data",
        "employer_data",
    ];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/insurance_company", "insurance_company.s", list_companies)
            .acl("acct/bill")
            .bare()
            .summary("List insurance companies")
            .params(emr::LIST_PARAMS)
            .filters(COMPANY_FILTERS)
            .answers_list(COMPANY),
        Route::get(
            "/api/insurance_company/:iid",
            "insurance_company.r",
            get_company,
        )
        .acl("acct/bill")
        .bare()
        .summary("Read an insurance company")
        .answers(COMPANY),
        Route::get("/api/insurance_type", "insurance_type.s", insurance_types)
            .acl("acct/bill")
            .bare()
            .summary("The insurance claim types, by id")
            .answers(Schema::Any),
        Route::post("/api/insurance_company", "insurance_company.c", create_company)
            .acl("acct/bill:write")
            .bare()
            .summary("Add an insurance company")
            .accepts(Schema::Body(&[COMPANY_COLUMNS, ADDRESS_COLUMNS], &["name"]))
            .answers(IID),
        Route::put(
            "/api/insurance_company/:iid",
            "insurance_company.u",
            update_company,
        )
        .acl("acct/bill:write")
        .bare()
        .summary("Change an insurance company")
        .accepts(Schema::Body(&[COMPANY_COLUMNS, ADDRESS_COLUMNS], &[]))
        .answers(IID),
        Route::get("/api/patient/:puuid/employer", "employer.s", list_employers)
            .acl("patients/demo")
            .legacy()
            .summary("List a patient's employers")
            .params(emr::LIST_PARAMS)
            .answers_list(EMPLOYER),
        Route::get("/api/patient/:puuid/insurance", "insurance.s", list_policies)
            .acl("patients/demo")
            .legacy()
            .summary("List a patient's insurance policies")
            .params(emr::LIST_PARAMS)
            .filters(POLICY_FILTERS)
            .answers_list(POLICY),
        Route::get(
            "/api/patient/:puuid/insurance/$swap-insurance",
            "insurance.$swap-insurance",
            swap,
        )
        .acl("patients/demo:write")
        .legacy()
        .summary("Make a policy the patient's current one of a type, swapping the current one into its place")
        .params(SWAP_PARAMS)
        .answers(Schema::Any),
        Route::get(
            "/api/patient/:puuid/insurance/:uuid",
            "insurance.r",
            get_policy,
        )
        .acl("patients/demo")
        .legacy()
        .summary("Read a patient's insurance policy")
        .answers(POLICY),
        Route::put(
            "/api/patient/:puuid/insurance/:uuid",
            "insurance.u",
            update_policy,
        )
        .acl("patients/demo:write")
        .legacy()
        .summary("Change a patient's insurance policy")
        .accepts(Schema::Body(&[POLICY_COLUMNS], &[]))
        .answers(POLICY),
        Route::post("/api/patient/:puuid/insurance", "insurance.c", create_policy)
            .acl("patients/demo:write")
            .legacy()
            .summary("Add an insurance policy to a patient")
            .accepts(Schema::Body(&[POLICY_COLUMNS], POLICY_REQUIRED))
            .answers(POLICY),
    ];
}

hearth_sdk::export!(Insurance);

// ---- Insurance companies -------------------------------------------------------------

/// What a company body may set in `insurance_companies`.
const COMPANY_COLUMNS: &[Column] = &[
    Column::text("name"),
    Column::text("attn"),
    Column::text("cms_id"),
    Column::int("ins_type_code"),
    Column::text("x12_receiver_id"),
    Column::int("x12_default_partner_id"),
    Column::text("alt_cms_id"),
    Column::int("inactive"),
];

/// What a company body may set in its `addresses` row.
const ADDRESS_COLUMNS: &[Column] = &[
    Column::text("line1"),
    Column::text("line2"),
    Column::text("city"),
    Column::text("state"),
    Column::text("zip"),
    Column::text("country"),
];

/// The columns a company list filters on exactly.
const COMPANY_FILTERS: &[Column] = &[
    Column::int("id"),
    Column::text("uuid"),
    Column::text("name"),
    Column::text("cms_id"),
    Column::int("ins_type_code"),
    Column::int("inactive"),
];

/// A company as answered (InsuranceCompanyService::getAll's fields).
const COMPANY: Schema = Schema::Row(&[emr::IDS, COMPANY_COLUMNS, ADDRESS_COLUMNS]);

/// `{"iid"}`: what creating or changing a company answers (and the new uuid).
const IID: Schema = Schema::Object(&[
    Prop::new("iid", Schema::Integer).required(),
    Prop::new("uuid", Schema::Format("uuid")),
]);

const COMPANY_SELECT: &str = "SELECT i.id, i.uuid, i.name, i.attn, i.cms_id, i.ins_type_code, \
    i.x12_receiver_id, i.x12_default_partner_id, i.alt_cms_id, i.inactive, a.line1, a.line2, \
    a.city, a.state, a.zip, a.country FROM insurance_companies i \
    LEFT JOIN addresses a ON a.foreign_id = i.id";

const COMPANY_SORT: Sort = Sort {
    alias: "i",
    keys: &[
        SortKey::column("id"),
        SortKey::column("name"),
        SortKey::column("cms_id"),
        SortKey::column("ins_type_code"),
        SortKey::column("inactive"),
        SortKey::renamed("city", "a.city"),
        SortKey::renamed("state", "a.state"),
    ],
    default: "name",
    tiebreak: "id",
};

/// `GET /api/insurance_company`: every company (filtered, sorted, paged).
fn list_companies(req: &Request) -> Result<Response> {
    let mut search = Search::on("i");
    search
        .filter_exact(req.query_pairs(), COMPANY_FILTERS)?
        .sort_by(req, &COMPANY_SORT)?;
    crud::page(req, &search, COMPANY_SELECT, Json::from_row)
}

fn company(id: i64) -> Result<Json> {
    let mut search = Search::on("i");
    search.equals("id", id);
    crud::find(&search, COMPANY_SELECT, Json::from_row)
}

/// `GET /api/insurance_company/:iid`: one company by its numeric id, or a 404.
fn get_company(req: &Request) -> Result<Response> {
    Ok(req.ok(company(req.id("iid")?)?))
}

/// `GET /api/insurance_type`: the claim types as OpenEMR answers them, an object from
/// the type's id to its name.
fn insurance_types(req: &Request) -> Result<Response> {
    let rows = store::query("SELECT id, type FROM insurance_type_codes ORDER BY id", &[])?;
    let mut types = Json::object();
    for row in rows.iter() {
        let id = row.int("id").unwrap_or_default().to_string();
        types.field(&id, row.text("type").unwrap_or_default());
    }
    Ok(req.ok(types.end()))
}

/// InsuranceCompanyValidator's rules (Hearth adds lengths for the address).
fn company_rules(v: &mut Validator<'_>, insert: bool) {
    v.field("name", "name", insert).length_between(2, 255);
    v.optional("attn", "attn").length_between(2, 255);
    v.optional("cms_id", "cms_id").length_between(2, 15);
    v.optional("ins_type_code", "ins_type_code")
        .numeric()
        .exists_in("insurance_type_codes", Column::int("id"));
    v.optional("x12_receiver_id", "x12_receiver_id")
        .length_between(2, 25);
    v.optional("x12_default_partner_id", "x12_default_partner_id")
        .numeric();
    v.optional("alt_cms_id", "alt_cms_id").length_between(2, 15);
    v.optional("inactive", "inactive").one_of(&["0", "1"]);
    for key in ["line1", "line2", "city", "state", "zip", "country"] {
        v.optional_allow_empty(key, key).length_between(0, 255);
    }
}

/// The body of a company: its columns and its address columns.
fn company_body(req: &Request, insert: bool) -> Result<(Fields, Fields)> {
    let fields = req.fields(COMPANY_COLUMNS, |v| company_rules(v, insert))?;
    let address = Fields::from_json(&req.json_object()?, ADDRESS_COLUMNS)?;
    Ok((fields, address))
}

/// Writes the company's address: a new `addresses` row, or the given columns of its
/// existing one.
fn save_address(iid: i64, address: &Fields) -> Result<()> {
    if address.is_empty() {
        return Ok(());
    }
    let mut update = Update::table("addresses");
    update.fields(address).filter("foreign_id", iid);
    if update.run()? == 0 {
        Insert::into("addresses")
            .set("foreign_id", iid)
            .fields(address)
            .insert_id()?;
    }
    Ok(())
}

/// `POST /api/insurance_company`: 400 for a body that breaks a rule, else 201
/// `{"iid", "uuid"}`. The address is stored when the body names a city and a state, as
/// OpenEMR does.
fn create_company(req: &Request) -> Result<Response> {
    let (fields, address) = company_body(req, true)?;
    let uuid = new_uuid();
    let now = time::now().datetime();
    let iid = Insert::into("insurance_companies")
        .set("uuid", uuid.as_str())
        .set("date_created", now.as_str())
        .set("last_updated", now.as_str())
        .fields(&fields)
        .insert_id()?;
    let filled = |key: &str| matches!(address.get(key), Some(Value::Text(t)) if !t.is_empty());
    if filled("city") && filled("state") {
        save_address(iid, &address)?;
    }
    Ok(req.created(Json::object().field("iid", iid).field("uuid", uuid).end()))
}

/// `PUT /api/insurance_company/:iid`: 404 for no such company, 400 for a body that
/// breaks a rule, else writes the given fields and answers 200 `{"iid"}`.
fn update_company(req: &Request) -> Result<Response> {
    let iid = req.id("iid")?;
    let (fields, address) = company_body(req, false)?;
    Update::table("insurance_companies")
        .set("last_updated", time::now().datetime())
        .fields(&fields)
        .filter("id", iid)
        .apply()?;
    save_address(iid, &address)?;
    Ok(req.ok(Json::object().field("iid", iid).end()))
}

// ---- Employers -----------------------------------------------------------------------

const EMPLOYER: Schema = Schema::Row(&[
    emr::IDS,
    &[
        Column::text("puuid"),
        Column::int("pid"),
        Column::text("name"),
        Column::text("street"),
        Column::text("street_line_2"),
        Column::text("postal_code"),
        Column::text("city"),
        Column::text("state"),
        Column::text("country"),
        Column::datetime("date"),
        Column::date("start_date"),
        Column::date("end_date"),
        Column::text("occupation"),
        Column::text("industry"),
    ],
]);

const EMPLOYER_SELECT: &str = "SELECT e.id, e.uuid, p.uuid AS puuid, e.pid, e.name, e.street, \
    e.street_line_2, e.postal_code, e.city, e.state, e.country, e.date, e.start_date, \
    e.end_date, e.occupation, e.industry FROM employer_data e JOIN patient_data p ON p.pid = e.pid";

const EMPLOYER_SORT: Sort = Sort {
    alias: "e",
    keys: &[
        SortKey::column("id"),
        SortKey::column("date"),
        SortKey::column("name"),
        SortKey::column("start_date"),
        SortKey::column("end_date"),
    ],
    default: "-date",
    tiebreak: "-id",
};

/// `GET /api/patient/:puuid/employer`: the patient's employers, newest first (400 for a
/// malformed uuid, 404 for no such patient).
fn list_employers(req: &Request) -> Result<Response> {
    let patient = emr::path_patient(req, "puuid")?;
    let mut search = Search::on("e");
    search.equals("pid", patient.pid);
    search
        .filter_exact(req.query_pairs(), &[Column::int("id")])?
        .sort_by(req, &EMPLOYER_SORT)?;
    crud::page(req, &search, EMPLOYER_SELECT, Json::from_row)
}

// ---- Patients' policies --------------------------------------------------------------

/// The policy types, in their order.
const TYPES: &[&str] = &["primary", "secondary", "tertiary"];

/// What a policy body may set.
const POLICY_COLUMNS: &[Column] = &[
    Column::text("type"),
    Column::int("provider"),
    Column::text("plan_name"),
    Column::text("policy_number"),
    Column::text("group_number"),
    Column::text("subscriber_lname"),
    Column::text("subscriber_mname"),
    Column::text("subscriber_fname"),
    Column::text("subscriber_relationship"),
    Column::text("subscriber_ss"),
    Column::date("subscriber_DOB"),
    Column::text("subscriber_street"),
    Column::text("subscriber_postal_code"),
    Column::text("subscriber_city"),
    Column::text("subscriber_state"),
    Column::text("subscriber_country"),
    Column::text("subscriber_phone"),
    Column::text("subscriber_employer"),
    Column::text("subscriber_employer_street"),
    Column::text("subscriber_employer_postal_code"),
    Column::text("subscriber_employer_state"),
    Column::text("subscriber_employer_country"),
    Column::text("subscriber_employer_city"),
    Column::text("copay"),
    Column::date("date"),
    Column::text("subscriber_sex"),
    Column::text("accept_assignment"),
    Column::text("policy_type"),
    Column::date("date_end"),
];

/// What a create must send (CoverageValidator; `type` defaults to primary).
const POLICY_REQUIRED: &[&str] = &[
    "provider",
    "policy_number",
    "subscriber_lname",
    "subscriber_fname",
    "subscriber_relationship",
    "subscriber_DOB",
    "subscriber_street",
    "subscriber_postal_code",
    "subscriber_city",
    "subscriber_state",
    "subscriber_sex",
    "accept_assignment",
    "date",
];

/// The columns a policy list filters on exactly.
const POLICY_FILTERS: &[Column] = &[
    Column::text("type"),
    Column::int("provider"),
    Column::text("policy_number"),
    Column::text("group_number"),
    Column::text("plan_name"),
];

/// A policy as answered: every `insurance_data` column, the patient's and the
/// company's uuids.
const POLICY: Schema = Schema::Row(&[
    emr::IDS,
    POLICY_COLUMNS,
    &[
        Column::int("pid"),
        Column::text("puuid"),
        Column::text_or_null("insureruuid"),
    ],
]);

const SWAP_PARAMS: &[Param] = &[
    Param::query(
        "type",
        Schema::Enum(&["primary", "secondary", "tertiary"]),
        "The type the policy takes",
    ),
    Param::query(
        "uuid",
        Schema::Format("uuid"),
        "The policy that becomes the patient's current one of that type",
    ),
];

const POLICY_SELECT: &str = "SELECT d.*, p.uuid AS puuid, c.uuid AS insureruuid \
    FROM insurance_data d JOIN patient_data p ON p.pid = d.pid \
    LEFT JOIN insurance_companies c ON c.id = d.provider";

/// OpenEMR's order: by type, then the newest start first.
const POLICY_SORT: Sort = Sort {
    alias: "d",
    keys: &[
        SortKey::column("id"),
        SortKey::column("type"),
        SortKey::column("date"),
        SortKey::column("date_end"),
        SortKey::column("policy_number"),
        SortKey::column("provider"),
        SortKey::column("plan_name"),
    ],
    default: "type,-date",
    tiebreak: "-id",
};

/// `GET /api/patient/:puuid/insurance`: the patient's policies.
fn list_policies(req: &Request) -> Result<Response> {
    let patient = emr::path_patient(req, "puuid")?;
    let mut search = Search::on("d");
    search.equals("pid", patient.pid);
    search
        .filter_exact(req.query_pairs(), POLICY_FILTERS)?
        .sort_by(req, &POLICY_SORT)?;
    crud::page(req, &search, POLICY_SELECT, Json::from_row)
}

/// The policy `uuid` of patient `pid`, or a 404.
fn policy(pid: i64, uuid: &str) -> Result<Json> {
    let mut search = Search::on("d");
    search.equals("pid", pid).equals("uuid", uuid);
    crud::find(&search, POLICY_SELECT, Json::from_row)
}

/// `GET /api/patient/:puuid/insurance/:uuid`: one of the patient's policies.
fn get_policy(req: &Request) -> Result<Response> {
    let patient = emr::path_patient(req, "puuid")?;
    Ok(req.ok(policy(patient.pid, &req.uuid("uuid")?)?))
}

/// The patient's name and SSN, for the rules of a subscriber who is the patient.
struct Insured {
    fname: String,
    lname: String,
    ss: String,
}

fn insured(pid: i64) -> Result<Insured> {
    let row = store::query_one(
        "SELECT fname, lname, ss FROM patient_data WHERE pid = $1",
        params![pid],
    )?
    .ok_or(ApiError::NotFound)?;
    let text = |column: &str| row.text(column).unwrap_or_default().trim().to_owned();
    Ok(Insured {
        fname: text("fname"),
        lname: text("lname"),
        ss: text("ss"),
    })
}

/// A body value as text (numbers as their digits).
fn text_of(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// CoverageValidator's rules (`insert`: every required field must be sent; on update each
/// is optional). `stored` is the policy before an update, for the rules that read more
/// than one field.
fn policy_rules(
    v: &mut Validator<'_>,
    insert: bool,
    patient: &Insured,
    stored: Option<&serde_json::Map<String, serde_json::Value>>,
) {
    v.optional("type", "type").one_of(TYPES);
    v.field("provider", "provider", insert)
        .numeric()
        .exists_in("insurance_companies", Column::int("id"));
    v.field("policy_number", "policy_number", insert)
        .length_between(2, 255);
    v.field("subscriber_lname", "subscriber_lname", insert)
        .length_between(2, 255);
    v.field("subscriber_fname", "subscriber_fname", insert)
        .length_between(1, 255);
    v.field("subscriber_relationship", "subscriber_relationship", insert)
        .list_option("sub_relation");
    v.field("subscriber_DOB", "subscriber_DOB", insert)
        .datetime("Y-m-d");
    for key in [
        "subscriber_street",
        "subscriber_postal_code",
        "subscriber_city",
    ] {
        v.field(key, key, insert).length_between(2, 255);
    }
    v.field("subscriber_state", "subscriber_state", insert)
        .list_option("state");
    v.field("subscriber_sex", "subscriber_sex", insert)
        .list_option("sex");
    v.field("accept_assignment", "accept_assignment", insert)
        .one_of(&["TRUE", "FALSE"]);
    v.field("date", "date", insert).datetime("Y-m-d");
    v.optional("date_end", "date_end").datetime("Y-m-d");
    for key in ["plan_name", "group_number", "subscriber_mname"] {
        v.optional_allow_empty(key, key).length_between(0, 255);
    }
    v.optional_allow_empty("copay", "copay").numeric();
    // A subscriber who is the patient carries the patient's name and SSN.
    let input = v.input();
    let value =
        |key: &str| text_of(input.get(key)).or_else(|| stored.and_then(|s| text_of(s.get(key))));
    if value("subscriber_relationship").as_deref() == Some("self") {
        let same = |key: &str, expected: &str| {
            value(key).is_none_or(|given| given.eq_ignore_ascii_case(expected))
        };
        if !same("subscriber_fname", &patient.fname) || !same("subscriber_lname", &patient.lname) {
            v.error(
                "subscriber_relationship",
                "Callback::INVALID_VALUE",
                "subscriber_relationship is self, but the subscriber's name is not the patient's",
            );
        }
        let ss = value("subscriber_ss").unwrap_or_default();
        if !ss.is_empty() && !patient.ss.is_empty() && ss != patient.ss {
            v.error(
                "subscriber_ss",
                "Callback::INVALID_VALUE",
                "subscriber_ss must be the patient's when subscriber_relationship is self",
            );
        }
    }
    let (start, end) = (value("date"), value("date_end"));
    if let (Some(start), Some(end)) = (start, end)
        && !end.is_empty()
        && end < start
    {
        v.error(
            "date_end",
            "Callback::INVALID_VALUE",
            "date_end must not be before date",
        );
    }
}

/// A 400 unless patient `pid` has no other policy (than `except`) of `kind` starting on
/// `date` (OpenEMR's unique key).
fn unique_start(pid: i64, kind: &str, date: &Value, except: Option<i64>) -> Result<()> {
    if *date == Value::Null {
        return Ok(());
    }
    let sql = "SELECT id FROM insurance_data WHERE pid = $1 AND type = $2 AND date = $3 \
               AND id <> $4 LIMIT 1";
    let taken = store::query_one(
        sql,
        params![pid, kind, date.clone(), except.unwrap_or_default()],
    )?;
    match taken {
        None => Ok(()),
        Some(_) => Err(ApiError::invalid(
            "date",
            "Record::DUPLICATE",
            &format!("the patient already has a {kind} policy starting on this date"),
        )),
    }
}

/// `POST /api/patient/:puuid/insurance`: 404 for no such patient, 400 for a body that
/// breaks a rule, else 201 with the new policy (OpenEMR: 200).
fn create_policy(req: &Request) -> Result<Response> {
    let patient = emr::path_patient(req, "puuid")?;
    let who = insured(patient.pid)?;
    let mut fields = req.fields(POLICY_COLUMNS, |v| policy_rules(v, true, &who, None))?;
    fields.set_default("type", "primary");
    let kind = match fields.get("type") {
        Some(Value::Text(kind)) => kind.clone(),
        _ => "primary".to_owned(),
    };
    let date = fields.get("date").cloned().unwrap_or(Value::Null);
    unique_start(patient.pid, &kind, &date, None)?;
    let uuid = new_uuid();
    Insert::into("insurance_data")
        .set("uuid", uuid.as_str())
        .set("pid", patient.pid)
        .set("last_updated", time::now().datetime())
        .fields(&fields)
        .insert_id()?;
    Ok(req.created(policy(patient.pid, &uuid)?))
}

/// `PUT /api/patient/:puuid/insurance/:uuid` (OpenEMR names it `:insuranceUuid`; one name
/// for the read and the update keeps the API description's paths distinct): 404 for no such patient or
/// policy, 400 for a body that breaks a rule, else writes the fields sent and answers the
/// policy.
fn update_policy(req: &Request) -> Result<Response> {
    let patient = emr::path_patient(req, "puuid")?;
    let uuid = req.uuid("uuid")?;
    let stored = policy(patient.pid, &uuid)?.to_value();
    let stored = stored.as_object().cloned().unwrap_or_default();
    let who = insured(patient.pid)?;
    let fields = req.fields(POLICY_COLUMNS, |v| {
        policy_rules(v, false, &who, Some(&stored))
    })?;
    let kind = match fields.get("type") {
        Some(Value::Text(kind)) => kind.clone(),
        _ => text_of(stored.get("type")).unwrap_or_default(),
    };
    let date = match fields.get("date") {
        Some(date) => date.clone(),
        None => text_of(stored.get("date")).map_or(Value::Null, Value::from),
    };
    let id = stored.get("id").and_then(serde_json::Value::as_i64);
    unique_start(patient.pid, &kind, &date, id)?;
    Update::table("insurance_data")
        .set("last_updated", time::now().datetime())
        .fields(&fields)
        .filter("uuid", uuid.as_str())
        .filter("pid", patient.pid)
        .apply()?;
    Ok(req.ok(policy(patient.pid, &uuid)?))
}

/// A policy row's id, type and start date.
struct Slot {
    id: i64,
    kind: String,
    date: Option<String>,
}

fn slot(row: &store::OneRow) -> Slot {
    Slot {
        id: row.int("id").unwrap_or_default(),
        kind: row.text("type").unwrap_or_default().to_owned(),
        date: row
            .text("date")
            .map(|d| d.get(..10).unwrap_or(d).to_owned()),
    }
}

/// A 409 when patient `pid` has a policy other than `except` of `kind` starting on
/// `date`: moving a policy there would break OpenEMR's one-policy-per-type-and-day key.
fn free(pid: i64, kind: &str, date: Option<&str>, except: &[i64]) -> Result<()> {
    let Some(date) = date else {
        return Ok(());
    };
    let sql = "SELECT id FROM insurance_data WHERE pid = $1 AND type = $2 AND date = $3 \
               AND id <> $4 AND id <> $5 LIMIT 1";
    let first = except.first().copied().unwrap_or_default();
    let second = except.get(1).copied().unwrap_or(first);
    match store::query_one(sql, params![pid, kind, date, first, second])? {
        None => Ok(()),
        Some(row) => Err(ApiError::Conflict(format!(
            "policy {} is already the patient's {kind} policy starting on {date}",
            row.int("id").unwrap_or_default()
        ))),
    }
}

/// `GET /api/patient/:puuid/insurance/$swap-insurance?type=&uuid=`: policy `uuid` becomes
/// the patient's current policy of `type`; the policy that was (the newest of that type)
/// takes the moved policy's old type. Answers `{"src", "target"}` after the swap.
fn swap(req: &Request) -> Result<Response> {
    let patient = emr::path_patient(req, "puuid")?;
    let kind = req.query("type").unwrap_or_default();
    if !TYPES.contains(&kind) {
        return Err(ApiError::invalid(
            "type",
            "InArray::NOT_IN_ARRAY",
            "type must be one of primary, secondary, tertiary",
        ));
    }
    let uuid = req.query("uuid").unwrap_or_default().to_ascii_lowercase();
    if !hearth_sdk::request::is_uuid(&uuid) {
        return Err(ApiError::invalid(
            "uuid",
            "Uuid::INVALID_UUID",
            "uuid must be a valid UUID (valid format)",
        ));
    }
    let read = "SELECT id, type, date FROM insurance_data WHERE pid = $1 AND uuid = $2";
    let source = store::query_one(read, params![patient.pid, uuid.as_str()])?
        .map(|row| slot(&row))
        .ok_or(ApiError::NotFound)?;
    let no_store = |response: Response| response.header("cache-control", "no-store");
    if source.kind == kind {
        let data = Json::object()
            .field("src", policy(patient.pid, &uuid)?)
            .field("target", Json::null())
            .end();
        return Ok(no_store(req.ok(data)));
    }
    let current = "SELECT id, uuid, type, date FROM insurance_data WHERE pid = $1 AND type = $2 \
                   ORDER BY (CASE WHEN date IS NULL THEN 1 ELSE 0 END), date DESC, id DESC LIMIT 1";
    let target_row = store::query_one(current, params![patient.pid, kind])?;
    let target = target_row.as_ref().map(slot);
    let target_uuid = target_row
        .as_ref()
        .and_then(|row| row.text("uuid").map(str::to_owned));
    let ids: Vec<i64> = [Some(source.id), target.as_ref().map(|t| t.id)]
        .into_iter()
        .flatten()
        .collect();
    free(patient.pid, kind, source.date.as_deref(), &ids)?;
    if let Some(target) = &target {
        free(patient.pid, &source.kind, target.date.as_deref(), &ids)?;
        // Out of the way first: (type, date) is unique, a NULL date never collides.
        Update::table("insurance_data")
            .set("date", Value::Null)
            .filter("id", target.id)
            .apply()?;
    }
    let now = time::now().datetime();
    Update::table("insurance_data")
        .set("type", kind)
        .set("last_updated", now.as_str())
        .filter("id", source.id)
        .apply()?;
    if let Some(target) = &target {
        let date = target.date.clone().map_or(Value::Null, Value::from);
        Update::table("insurance_data")
            .set("type", source.kind.as_str())
            .set("date", date)
            .set("last_updated", now.as_str())
            .filter("id", target.id)
            .apply()?;
    }
    let target = match target_uuid {
        Some(target) => policy(patient.pid, &target)?,
        None => Json::null(),
    };
    let data = Json::object()
        .field("src", policy(patient.pid, &uuid)?)
        .field("target", target)
        .end();
    Ok(no_store(req.ok(data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const PUUID: &str = "90cde167-0000-4000-8000-000000000001";

    fn patient() -> Rows {
        Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), PUUID.into()]])
    }

    #[test]
    fn a_company_needs_a_name_and_nothing_is_written_without_one() {
        let mut host = MockHost::new();
        let response = host.call::<Insurance>(TestRequest::post(
            "/api/insurance_company",
            json!({"attn": "Claims"}),
        ));
        assert_eq!(response.status, 400, "{}", response.text());
        assert!(response.body_json()["name"].is_object());
        assert!(host.writes().is_empty());
    }

    #[test]
    fn a_swap_needs_a_type_and_a_uuid() {
        let mut host = MockHost::new().on_query("FROM patient_data", patient());
        let path = format!("/api/patient/{PUUID}/insurance/$swap-insurance");
        let response = host.call::<Insurance>(TestRequest::get(&format!(
            "{path}?type=fourth&uuid={PUUID}"
        )));
        assert_eq!(response.status, 400, "{}", response.text());
        let response = host.call::<Insurance>(TestRequest::get(&format!("{path}?type=primary")));
        assert_eq!(response.status, 400, "{}", response.text());
        assert!(host.writes().is_empty());
    }
}
