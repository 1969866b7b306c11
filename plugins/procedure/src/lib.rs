//! OpenEMR procedure orders (`procedure_order`, its tests in `procedure_order_code`),
//! with their reports (`procedure_report`) and results (`procedure_result`): the
//! standard API's read-only routes `GET /api/procedure` and `GET /api/procedure/:uuid`,
//! in OpenEMR's legacy envelope and ProcedureService's shape — one object per order
//! (its first test's name and code, the diagnosis, the provider, the patient and the
//! encounter) holding its reports, each holding its results.
//!
//! OpenEMR reads from the reports, so an order without a report yet is missing from its
//! list; Hearth lists every order (its `reports` empty until one arrives), a page of
//! orders at a time, newest first. Results OpenEMR marks as not reportable (`DNR`, `TNP`)
//! are left out, as OpenEMR leaves them out.

use hearth_emr::prelude::*;

/// The procedure resource.
pub struct Procedure;

impl Resource for Procedure {
    const NAME: &'static str = "procedure";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Procedure orders with their reports and results (OpenEMR procedure_order)";
    const WORDS: &'static [Words] = &[Words::new(
        "procedure",
        "Procedures",
        "procedure orders and their results",
    )];
    const READS: &'static [&'static str] = &[
        "procedure_order",
        "procedure_order_code",
        "procedure_report",
        "procedure_result",
        "patient_data",
        "users",
        "form_encounter",
    ];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/procedure", "procedure.s", list)
            .acl("patients/med")
            .legacy()
            .summary("List procedure orders with their reports and results")
            .params(LIST_PARAMS)
            .filters(FILTERS)
            .answers_list(ORDER),
        Route::get("/api/procedure/:uuid", "procedure.r", get_one)
            .acl("patients/med")
            .legacy()
            .summary("Read a procedure order with its reports and results")
            .answers(ORDER),
    ];
}

hearth_sdk::export!(Procedure);

/// Paging, sorting and the patient's uuid.
const LIST_PARAMS: &[Param] = &[
    Param::query(
        "_sort",
        Schema::String,
        "Comma-separated field names; a leading - sorts descending",
    ),
    Param::query(
        "_limit",
        Schema::Numeric,
        "Orders per page (every order when absent)",
    ),
    Param::query("_offset", Schema::Numeric, "Orders to skip"),
    Param::query("puuid", Schema::Format("uuid"), "The patient's uuid"),
];

/// The `procedure_order` columns a list filters on exactly.
const FILTERS: &[Column] = &[
    Column::int("procedure_order_id"),
    Column::text("uuid"),
    Column::int("patient_id"),
    Column::int("provider_id"),
    Column::int("encounter_id"),
    Column::text("order_status"),
    Column::text("order_priority"),
    Column::int("activity"),
    Column::text("procedure_order_type"),
];

/// A result of a report.
const RESULT: Schema = Schema::Row(&[&[
    Column::int("id"),
    Column::text("uuid"),
    Column::text_or_null("code"),
    Column::text_or_null("text"),
    Column::text_or_null("units"),
    Column::text_or_null("result"),
    Column::text_or_null("range"),
    Column::text_or_null("abnormal"),
    Column::text_or_null("comments"),
    Column::int("document_id"),
    Column::text_or_null("status"),
    Column::text_or_null("date"),
]]);

/// An order as answered: ProcedureService's fields (and the order's dates, status and
/// priority), its provider, patient and encounter, and its reports with their results.
const ORDER: Schema = Schema::Object(&[
    Prop::new("uuid", Schema::Format("uuid")).required(),
    Prop::new("name", Schema::Nullable(&Schema::String)),
    Prop::new("code", Schema::Nullable(&Schema::String)),
    Prop::new("standard_code", Schema::Nullable(&Schema::String)),
    Prop::new("diagnosis", Schema::Nullable(&Schema::String)),
    Prop::new("activity", Schema::Nullable(&Schema::Integer)),
    Prop::new("order_status", Schema::Nullable(&Schema::String)),
    Prop::new("order_priority", Schema::Nullable(&Schema::String)),
    Prop::new("date_ordered", Schema::Nullable(&Schema::String)),
    Prop::new("date_collected", Schema::Nullable(&Schema::String)),
    Prop::new(
        "provider",
        Schema::Object(&[
            Prop::new("id", Schema::Integer),
            Prop::new("uuid", Schema::Nullable(&Schema::Format("uuid"))),
            Prop::new("fname", Schema::Nullable(&Schema::String)),
            Prop::new("mname", Schema::Nullable(&Schema::String)),
            Prop::new("lname", Schema::Nullable(&Schema::String)),
            Prop::new("npi", Schema::Nullable(&Schema::String)),
        ]),
    ),
    Prop::new(
        "patient",
        Schema::Object(&[
            Prop::new("pid", Schema::Nullable(&Schema::Integer)),
            Prop::new("uuid", Schema::Nullable(&Schema::Format("uuid"))),
        ]),
    ),
    Prop::new(
        "encounter",
        Schema::Object(&[
            Prop::new("id", Schema::Integer),
            Prop::new("uuid", Schema::Nullable(&Schema::Format("uuid"))),
            Prop::new("date", Schema::Nullable(&Schema::String)),
        ]),
    ),
    Prop::new(
        "reports",
        Schema::Array(&Schema::Object(&[
            Prop::new("id", Schema::Integer),
            Prop::new("uuid", Schema::Nullable(&Schema::Format("uuid"))),
            Prop::new("date", Schema::Nullable(&Schema::String)),
            Prop::new("notes", Schema::Nullable(&Schema::String)),
            Prop::new("status", Schema::Nullable(&Schema::String)),
            Prop::new("results", Schema::Array(&RESULT)),
        ])),
    ),
]);

/// The order with its first test, patient, encounter and provider.
const SELECT: &str = "SELECT po.procedure_order_id, po.uuid, po.order_diagnosis, po.activity, \
    po.order_status, po.order_priority, po.date_ordered, po.date_collected, \
    poc.procedure_name, poc.procedure_code, \
    p.pid, p.uuid AS puuid, fe.encounter AS eid, fe.uuid AS euuid, fe.date AS encounter_date, \
    u.id AS provider_id, u.uuid AS provider_uuid, u.fname AS provider_fname, \
    u.mname AS provider_mname, u.lname AS provider_lname, u.npi AS provider_npi \
    FROM procedure_order po JOIN patient_data p ON p.pid = po.patient_id \
    LEFT JOIN procedure_order_code poc ON poc.procedure_order_id = po.procedure_order_id \
    AND poc.procedure_order_seq = (SELECT MIN(c.procedure_order_seq) FROM procedure_order_code c \
    WHERE c.procedure_order_id = po.procedure_order_id) \
    LEFT JOIN form_encounter fe ON fe.encounter = po.encounter_id AND fe.pid = po.patient_id \
    LEFT JOIN users u ON u.id = po.provider_id AND u.npi <> ''";

/// The reports and results of the orders `ids`, in order.
fn reports_sql(count: usize) -> String {
    let marks: Vec<String> = (1..=count).map(|i| format!("${i}")).collect();
    format!(
        "SELECT pr.procedure_order_id, pr.procedure_report_id, pr.uuid AS report_uuid, \
         pr.date_report, pr.report_notes, pr.report_status, \
         r.procedure_result_id, r.uuid AS result_uuid, r.result_code, r.result_text, r.units, \
         r.result, r.\"range\", r.abnormal, r.comments, r.document_id, r.result_status, r.date \
         FROM procedure_report pr \
         LEFT JOIN procedure_result r ON r.procedure_report_id = pr.procedure_report_id \
         AND r.result NOT IN ('DNR', 'TNP') \
         WHERE pr.procedure_order_id IN ({}) \
         ORDER BY pr.procedure_order_id, pr.procedure_order_seq, pr.procedure_report_id, \
         r.procedure_result_id",
        marks.join(", ")
    )
}

const SORT: Sort = Sort {
    alias: "po",
    keys: &[
        SortKey::column("procedure_order_id"),
        SortKey::column("date_ordered"),
        SortKey::column("date_collected"),
        SortKey::column("order_status"),
        SortKey::column("order_priority"),
        SortKey::renamed("patient_id", "po.patient_id"),
    ],
    default: "-date_ordered",
    tiebreak: "-procedure_order_id",
};

/// `GET /api/procedure`: a page of orders, each with its reports and results.
fn list(req: &Request) -> Result<Response> {
    let mut search = Search::on("po");
    search.filter_exact(req.query_pairs(), FILTERS)?;
    if let Some(puuid) = req.query("puuid") {
        if !hearth_sdk::request::is_uuid(puuid) {
            return Err(ApiError::invalid(
                "puuid",
                "Uuid::INVALID_UUID",
                "puuid must be a valid UUID (valid format)",
            ));
        }
        search.condition("p.uuid = $?", vec![Value::from(puuid.to_ascii_lowercase())]);
    }
    search.sort_by(req, &SORT)?;
    let listing = crud::listing(req, &search, SELECT)?;
    let orders: Vec<Row<'_>> = listing.rows().collect();
    let items = nest(&orders)?;
    Ok(req.list(items, listing.links()))
}

/// `GET /api/procedure/:uuid`: one order, or a 404.
fn get_one(req: &Request) -> Result<Response> {
    let mut search = Search::on("po");
    search.equals("uuid", req.uuid("uuid")?);
    let rows = search.query(SELECT, 1, 0)?;
    let orders: Vec<Row<'_>> = rows.iter().collect();
    if orders.is_empty() {
        return Err(ApiError::NotFound);
    }
    let items = nest(&orders)?;
    let first = items
        .to_value()
        .as_array()
        .and_then(|a| a.first().cloned())
        .unwrap_or_default();
    Ok(req.ok(Json::from_value(&first)))
}

/// The orders as ProcedureService answers them, with their reports and results (one
/// query for the whole page).
fn nest(orders: &[Row<'_>]) -> Result<Json> {
    let ids: Vec<Value> = orders
        .iter()
        .filter_map(|o| o.int("procedure_order_id"))
        .map(Value::Integer)
        .collect();
    let reports = if ids.is_empty() {
        Rows::default()
    } else {
        store::query(&reports_sql(ids.len()), &ids)?
    };
    let mut items = Json::array();
    for order in orders {
        let id = order.int("procedure_order_id");
        let mut out = Json::object();
        out.field("uuid", order.text("uuid"))
            .field("name", order.text("procedure_name"))
            .field("code", order.text("procedure_code"))
            .field("standard_code", standard_code(order.text("procedure_code")))
            .field("diagnosis", order.text("order_diagnosis"))
            .field("activity", order.int("activity"))
            .field("order_status", order.text("order_status"))
            .field("order_priority", order.text("order_priority"))
            .field("date_ordered", order.text("date_ordered"))
            .field("date_collected", order.text("date_collected"));
        if let Some(provider) = order.int("provider_id") {
            out.field(
                "provider",
                Json::object()
                    .field("id", provider)
                    .field("uuid", order.text("provider_uuid"))
                    .field("fname", order.text("provider_fname"))
                    .field("mname", order.text("provider_mname"))
                    .field("lname", order.text("provider_lname"))
                    .field("npi", order.text("provider_npi"))
                    .end(),
            );
        }
        out.field(
            "patient",
            Json::object()
                .field("pid", order.int("pid"))
                .field("uuid", order.text("puuid"))
                .end(),
        );
        if let Some(eid) = order.int("eid") {
            out.field(
                "encounter",
                Json::object()
                    .field("id", eid)
                    .field("uuid", order.text("euuid"))
                    .field("date", order.text("encounter_date"))
                    .end(),
            );
        }
        let mut list = Json::array();
        let mine: Vec<Row<'_>> = reports
            .iter()
            .filter(|r| r.int("procedure_order_id") == id)
            .collect();
        let mut at = 0;
        while at < mine.len() {
            let report = mine[at].int("procedure_report_id");
            let mut results = Json::array();
            let first = &mine[at];
            while at < mine.len() && mine[at].int("procedure_report_id") == report {
                let r = &mine[at];
                if let Some(result) = r.int("procedure_result_id") {
                    results.push(
                        Json::object()
                            .field("id", result)
                            .field("uuid", r.text("result_uuid"))
                            .field("code", r.text("result_code"))
                            .field("text", r.text("result_text"))
                            .field("units", r.text("units"))
                            .field("result", r.text("result"))
                            .field("range", r.text("range"))
                            .field("abnormal", r.text("abnormal"))
                            .field("comments", r.text("comments"))
                            .field("document_id", r.int("document_id"))
                            .field("status", r.text("result_status"))
                            .field("date", r.text("date"))
                            .end(),
                    );
                }
                at += 1;
            }
            list.push(
                Json::object()
                    .field("id", report)
                    .field("uuid", first.text("report_uuid"))
                    .field("date", first.text("date_report"))
                    .field("notes", first.text("report_notes"))
                    .field("status", first.text("report_status"))
                    .field("results", results.end())
                    .end(),
            );
        }
        out.field("reports", list.end());
        items.push(out.end());
    }
    Ok(items.end())
}

/// The order code as a standard code: OpenEMR's compendium codes are the lab's own; a
/// code in LOINC's form (digits, a dash, a check digit) is `LOINC:<code>`.
fn standard_code(code: Option<&str>) -> Option<String> {
    let code = code?.trim();
    let (digits, check) = code.split_once('-')?;
    let loinc = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && check.len() == 1
        && check.bytes().all(|b| b.is_ascii_digit());
    loinc.then(|| format!("LOINC:{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-0000000000d1";

    #[test]
    fn an_order_holds_its_reports_and_their_results() {
        let order = Rows::from_values(
            &[
                "procedure_order_id",
                "uuid",
                "procedure_name",
                "procedure_code",
                "pid",
                "puuid",
            ],
            vec![vec![
                7.into(),
                UUID.into(),
                "Lipid panel".into(),
                "57698-3".into(),
                3.into(),
                "90cde167-0000-4000-8000-0000000000aa".into(),
            ]],
        );
        let reports = Rows::from_values(
            &[
                "procedure_order_id",
                "procedure_report_id",
                "report_uuid",
                "procedure_result_id",
                "result_code",
                "result",
            ],
            vec![
                vec![
                    7.into(),
                    1.into(),
                    "90cde167-0000-4000-8000-0000000000d2".into(),
                    10.into(),
                    "2093-3".into(),
                    "190".into(),
                ],
                vec![
                    7.into(),
                    1.into(),
                    "90cde167-0000-4000-8000-0000000000d2".into(),
                    11.into(),
                    "2571-8".into(),
                    "120".into(),
                ],
            ],
        );
        let mut host = MockHost::new()
            .on_query("FROM procedure_report", reports)
            .on_query("FROM procedure_order", order);
        let response = host.call::<Procedure>(TestRequest::get(&format!("/api/procedure/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let data = &response.body_json()["data"];
        assert_eq!(data["standard_code"], "LOINC:57698-3");
        assert_eq!(data["reports"].as_array().unwrap().len(), 1);
        assert_eq!(data["reports"][0]["results"][1]["code"], "2571-8");
        assert_eq!(standard_code(Some("CBC")), None);
    }
}
