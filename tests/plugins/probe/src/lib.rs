//! The red-team probe (tests only): granted what the allergy plugin is granted (reads
//! `patient_data`, writes `lists`), it runs whatever SQL a test hands it and answers what
//! the host said, so the suite can try every way around the grants on both databases.
//!
//! `GET /api/probe?sql=…` runs the statement in a GET request (read-only);
//! `POST /api/probe` with `{"sql": "…"}` (or `{"sql": ["…", "…"]}`, run in order in one
//! request) runs it in a request that may write. The answer is 200 with `results`, one per
//! statement: `{"error": "denied: …"}` or `{"rows": [...]}`.

use hearth_sdk::prelude::*;

/// The probe.
pub struct Probe;

impl Resource for Probe {
    const NAME: &'static str = "test-probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Runs the SQL it is handed (red-team tests only)";
    const READS: &'static [&'static str] = &["patient_data"];
    // `form_vitals` and `issue_encounter` too: versioned tables, whose history the
    // red-team suite tries to forge.
    const WRITES: &'static [&'static str] = &["lists", "form_vitals", "issue_encounter"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/probe", "patient.s", read),
        Route::post("/api/probe", "patient.c", write),
    ];
}

hearth_sdk::export!(Probe);

fn read(req: &Request) -> Result<Response> {
    let sql = req.query("sql").unwrap_or_default().to_owned();
    Ok(Response::ok(run(&[sql])))
}

fn write(req: &Request) -> Result<Response> {
    let body = req.json_object()?;
    let statements: Vec<String> = match body.get("sql") {
        Some(serde_json::Value::String(sql)) => vec![sql.clone()],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => return Err(ApiError::BadRequest("sql is required".into())),
    };
    Ok(Response::ok(run(&statements)))
}

fn run(statements: &[String]) -> Json {
    let mut results = Json::array();
    for sql in statements {
        let mut result = Json::object();
        // The rows' members as the host renders them: all this probe reads.
        match store::query_with(sql, params![], store::Form::Json) {
            Ok(rows) => {
                let mut list = Json::array();
                for row in rows.iter() {
                    list.push(Json::raw(format!("{{{}}}", row.json_members())));
                }
                result.field("rows", list.end());
            }
            Err(error) => {
                result.field("error", error.to_string());
            }
        }
        results.push(result.end());
    }
    let mut data = Json::object();
    data.field("results", results.end());
    data.end()
}
