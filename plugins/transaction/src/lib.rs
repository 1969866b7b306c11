//! OpenEMR transactions (`transactions`, the layout form's fields in `lbt_data`):
//! `GET|POST /api/patient/:pid/transaction` and `PUT /api/transaction/:tid`, in OpenEMR's
//! legacy envelope, with PatientTransactionService's fields and rules.
//!
//! A transaction is a `transactions` row (its `title` is the form type, e.g. `LBTref`, a
//! referral) and one `lbt_data` row per field. The body's names map to OpenEMR's field
//! ids: `body`, `referralDate` → `refer_date`, `referDiagnosis` → `refer_diag`,
//! `referByNpi`/`referToNpi` → `refer_from`/`refer_to` (the id of the user with that NPI),
//! `riskLevel` → `refer_risk_level` (lower case), `includeVitals` → `refer_vitals`,
//! `authorization`, `visits`, `validFrom`, `validThrough` → `refer_…`.
//!
//! Unlike OpenEMR, a body that breaks the rules is a 400 and writes nothing (OpenEMR
//! inserts anyway), an NPI that names no user is a 400 (OpenEMR stores an empty id),
//! the type must be one of the site's transaction forms, and an update also writes a
//! field the transaction did not have yet (OpenEMR only rewrites existing rows).

use hearth_emr::prelude::*;

/// The transaction resource.
pub struct Transaction;

impl Resource for Transaction {
    const NAME: &'static str = "transaction";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Patient transactions and referrals (OpenEMR transactions)";
    const WORDS: &'static [Words] = &[Words::new(
        "transaction",
        "Transactions",
        "patient transactions and referrals",
    )];
    const READS: &'static [&'static str] = &["patient_data", "users", "list_options"];
    const WRITES: &'static [&'static str] = &["transactions", "lbt_data"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/patient/:pid/transaction", "transaction.s", list)
            .acl("patients/trans")
            .legacy()
            .summary("List a patient's transactions")
            .params(emr::LIST_PARAMS)
            .answers_list(RECORD),
        Route::post("/api/patient/:pid/transaction", "transaction.c", create)
            .acl("patients/trans:write")
            .legacy()
            .summary("Add a transaction (a referral) to a patient")
            .accepts(Schema::Body(&[BODY], &[]))
            .answers(CREATED),
        Route::put("/api/transaction/:tid", "transaction.u", update)
            .acl("patients/trans:write")
            .legacy()
            .summary("Update a transaction's fields")
            .accepts(Schema::Body(&[BODY], &[]))
            .answers_list(RECORD),
    ];
}

hearth_sdk::export!(Transaction);

/// The body's fields.
const BODY: &[Column] = &[
    Column::text("type"),
    Column::text("groupname"),
    Column::text("body"),
    Column::text("referralDate"),
    Column::text("referDiagnosis"),
    Column::text("referByNpi"),
    Column::text("referToNpi"),
    Column::text("riskLevel"),
    Column::text("includeVitals"),
    Column::text("authorization"),
    Column::text("visits"),
    Column::text("validFrom"),
    Column::text("validThrough"),
    Column::text("message"),
    Column::text("title"),
];

/// The `lbt_data` fields a transaction answers, in OpenEMR's order.
const FIELDS: &[&str] = &[
    "body",
    "refer_date",
    "refer_diag",
    "refer_from",
    "refer_to",
    "refer_risk_level",
    "refer_vitals",
    "refer_authorization",
    "refer_visits",
    "refer_validFrom",
    "refer_validThrough",
];

/// Body names that are stored as they are (besides the NPIs, looked up).
const PLAIN: &[(&str, &str)] = &[
    ("body", "body"),
    ("referralDate", "refer_date"),
    ("referDiagnosis", "refer_diag"),
    ("includeVitals", "refer_vitals"),
    ("authorization", "refer_authorization"),
    ("visits", "refer_visits"),
    ("validFrom", "refer_validFrom"),
    ("validThrough", "refer_validThrough"),
];

const RECORD: Schema = Schema::Row(&[
    &[
        Column::int("id"),
        Column::int("form_id"),
        Column::datetime("date"),
        Column::int("pid"),
        Column::text("user"),
        Column::text("title"),
        Column::text("groupname"),
        Column::int("authorized"),
    ],
    &[
        Column::text("body"),
        Column::text("refer_date"),
        Column::text("refer_diag"),
        Column::text("refer_from"),
        Column::text("refer_to"),
        Column::text("refer_risk_level"),
        Column::text("refer_vitals"),
        Column::text("refer_authorization"),
        Column::text("refer_visits"),
        Column::text("refer_validFrom"),
        Column::text("refer_validThrough"),
    ],
]);

const CREATED: Schema = Schema::Array(&Schema::Object(&[
    Prop::new("id", Schema::Integer).required(),
    Prop::new("form_id", Schema::Integer).required(),
]));

/// A transaction with each field as a column (`MAX(CASE …)` per field, as OpenEMR reads
/// them), as a derived table `t` that searches add conditions to.
fn select() -> String {
    let mut sql = String::from(
        "SELECT t.* FROM (SELECT tr.id, tr.id AS form_id, tr.date, tr.pid, tr.\"user\", \
         tr.title, tr.groupname, tr.authorized",
    );
    for field in FIELDS {
        sql.push_str(&format!(
            ", COALESCE(MAX(CASE WHEN d.field_id = '{field}' THEN d.field_value END), '') \
             AS \"{field}\""
        ));
    }
    sql.push_str(
        " FROM transactions tr LEFT JOIN lbt_data d ON d.form_id = tr.id GROUP BY tr.id, \
         tr.date, tr.pid, tr.\"user\", tr.title, tr.groupname, tr.authorized) t",
    );
    sql
}

/// Newest first unless asked otherwise.
const SORT: Sort = Sort {
    alias: "t",
    keys: &[
        SortKey::column("id"),
        SortKey::column("date"),
        SortKey::column("title"),
    ],
    default: "-date",
    tiebreak: "-id",
};

fn list(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let mut search = Search::on("t");
    search.equals("pid", patient.pid).sort_by(req, &SORT)?;
    crud::page(req, &search, &select(), Json::from_row)
}

/// The rules: PatientTransactionService's for a referral (`LBTref`), and for every type
/// that the type is a transaction form and each date and NPI is real.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("type", "type", insert).list_option("transactions");
    let referral = v.input().get("type").and_then(|t| t.as_str()) == Some("LBTref");
    let required = insert && referral;
    v.field("referralDate", "referralDate", required)
        .datetime("Y-m-d");
    v.field("body", "body", required).length_between(2, 150);
    v.field("groupname", "groupname", required)
        .length_between(1, 255);
    v.field("referByNpi", "referByNpi", required).rule(
        |value| value.as_str().is_some_and(|npi| user_by_npi(npi).is_some()),
        "Callback::INVALID_VALUE",
        "referByNpi names no user",
    );
    v.optional("referToNpi", "referToNpi").rule(
        |value| value.as_str().is_some_and(|npi| user_by_npi(npi).is_some()),
        "Callback::INVALID_VALUE",
        "referToNpi names no user",
    );
    for key in ["validFrom", "validThrough"] {
        v.optional(key, key).datetime("Y-m-d");
    }
    v.optional("riskLevel", "riskLevel").length_between(1, 255);
}

/// The id of the user with `npi`.
fn user_by_npi(npi: &str) -> Option<i64> {
    let npi = npi.trim();
    if npi.is_empty() {
        return None;
    }
    store::query_one("SELECT id FROM users WHERE npi = $1", params![npi])
        .ok()
        .flatten()
        .and_then(|row| row.int("id"))
}

fn text<'a>(fields: &'a Fields, key: &str) -> Option<&'a str> {
    match fields.get(key) {
        Some(Value::Text(t)) => Some(t.as_str()),
        _ => None,
    }
}

/// The `lbt_data` values the body gives: (field id, value).
fn values(fields: &Fields) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (key, field) in PLAIN {
        if let Some(value) = text(fields, key) {
            out.push((*field, value.to_owned()));
        }
    }
    for (key, field) in [("referByNpi", "refer_from"), ("referToNpi", "refer_to")] {
        if let Some(id) = text(fields, key).and_then(user_by_npi) {
            out.push((field, id.to_string()));
        }
    }
    if let Some(risk) = text(fields, "riskLevel") {
        out.push(("refer_risk_level", risk.to_lowercase()));
    }
    out
}

/// Writes a field of transaction `tid`: rewrites it, or adds it.
fn put_field(tid: i64, field: &str, value: &str) -> Result<()> {
    let changed = store::execute(
        "UPDATE lbt_data SET field_value = $1 WHERE form_id = $2 AND field_id = $3",
        params![value, tid, field],
    )?;
    if changed == 0 {
        store::execute(
            "INSERT INTO lbt_data (form_id, field_id, field_value) VALUES ($1, $2, $3)",
            params![tid, field, value],
        )?;
    }
    Ok(())
}

fn create(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let fields = req.fields(BODY, |v| rules(v, true))?;
    let mut insert = Insert::into("transactions");
    insert
        .set("date", hearth_sdk::time::now().datetime())
        .set("title", text(&fields, "type").unwrap_or(""))
        .set("pid", patient.pid)
        .set("user", req.caller().username.as_str())
        .set(
            "groupname",
            text(&fields, "groupname").unwrap_or(emr::GROUP),
        )
        .set("authorized", 1);
    let tid = insert.insert_id()?;
    for (field, value) in values(&fields) {
        store::execute(
            "INSERT INTO lbt_data (form_id, field_id, field_value) VALUES ($1, $2, $3)",
            params![tid, field, value.as_str()],
        )?;
    }
    let mut items = Json::array();
    items.push(Json::object().field("id", tid).field("form_id", tid).end());
    Ok(req.created(items.end()))
}

fn update(req: &Request) -> Result<Response> {
    let tid = req.id("tid")?;
    store::query_one("SELECT id FROM transactions WHERE id = $1", params![tid])?
        .ok_or(ApiError::NotFound)?;
    let fields = req.fields(BODY, |v| rules(v, false))?;
    if let Some(group) = text(&fields, "groupname") {
        Update::table("transactions")
            .set("groupname", group)
            .filter("id", tid)
            .apply()?;
    }
    if let Some(kind) = text(&fields, "type") {
        Update::table("transactions")
            .set("title", kind)
            .filter("id", tid)
            .apply()?;
    }
    for (field, value) in values(&fields) {
        put_field(tid, field, &value)?;
    }
    let sql = format!("{} WHERE t.id = $1", select());
    let rows = store::query(&sql, params![tid])?;
    let mut items = Json::array();
    for row in rows.iter() {
        items.push(Json::from_row(&row));
    }
    Ok(req.ok(items.end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_one_column() {
        let sql = select();
        for field in FIELDS {
            assert!(sql.contains(&format!("AS \"{field}\"")), "{field}");
        }
    }
}
