//! A FHIR type whose search stalls part-way through (tests only), so the Bulk Data export
//! tests can show what an export does when one type's page keeps timing out: it retries
//! the page, then records the failure in the `error` file and the manifest, and goes on
//! with the other types.
//!
//! `GET /fhir/Basic` answers [`TOTAL`] made-up `Basic` resources (no database), paged by
//! `_count` and an offset `_cursor`; `_summary=count` answers the total. A page that starts
//! at or after [`STALL_AT`] never answers: it spins until the host's deadline stops it.

use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// How many resources the search holds.
pub const TOTAL: u32 = 25;

/// The offset from which every page stalls.
pub const STALL_AT: u32 = 12;

/// The stalling type.
pub struct Stall;

impl Resource for Stall {
    const NAME: &'static str = "test-stall";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "A FHIR search that stalls part-way through (tests only)";
    const ROUTES: &'static [Route] = &[Route::get("/fhir/Basic", "Basic.s", search)];

    fn fhir_types() -> Vec<FhirType> {
        vec![FhirType {
            resource_type: "Basic".to_owned(),
            profiles: Vec::new(),
            search_params: Vec::new(),
        }]
    }
}

hearth_sdk::export!(Stall);

fn search(req: &Request) -> Result<Response> {
    let base = format!("{}/Basic", req.base_url());
    if req.query("_summary") == Some("count") {
        let body = format!(
            r#"{{"resourceType":"Bundle","type":"searchset","total":{TOTAL},"link":[{{"relation":"self","url":"{base}?_summary=count"}}]}}"#
        );
        return Ok(fhir(body));
    }
    let number = |name: &str, default: u32| -> Result<u32> {
        match req.query(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("{name} must be a number"))),
        }
    };
    let count = number("_count", 10)?.clamp(1, 1000);
    let from = number("_cursor", 0)?;
    if from >= STALL_AT {
        stall();
    }
    let to = (from + count).min(TOTAL);
    let entries: Vec<String> = (from..to)
        .map(|i| {
            format!(
                r#"{{"fullUrl":"{base}/b-{i}","resource":{{"resourceType":"Basic","id":"b-{i}","code":{{"text":"stall test {i}"}}}},"search":{{"mode":"match"}}}}"#
            )
        })
        .collect();
    let mut links =
        format!(r#"{{"relation":"self","url":"{base}?_count={count}&_cursor={from}"}}"#);
    if to < TOTAL {
        links.push_str(&format!(
            r#",{{"relation":"next","url":"{base}?_count={count}&_cursor={to}"}}"#
        ));
    }
    Ok(fhir(format!(
        r#"{{"resourceType":"Bundle","type":"searchset","link":[{links}],"entry":[{}]}}"#,
        entries.join(",")
    )))
}

fn fhir(body: String) -> Response {
    Response::json(200, Json::raw(body)).header("content-type", "application/fhir+json")
}

/// Spins until the host's deadline stops the call.
fn stall() -> ! {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
