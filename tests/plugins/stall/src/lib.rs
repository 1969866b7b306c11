//! FHIR types whose searches stall part-way through or need much memory for large pages
//! (tests only), so the Bulk Data export tests can show what an export does when one
//! type's page keeps timing out (it retries the page, then records the failure in the
//! `error` file and the manifest, and goes on with the other types) and when a page is
//! too large for its plugin (it asks again for a smaller one).
//!
//! `GET /fhir/Basic` answers [`TOTAL`] made-up `Basic` resources (no database), paged by
//! `_count` and an offset `_cursor`; `_summary=count` answers the total. A page that starts
//! at or after [`STALL_AT`] never answers: it spins until the host's deadline stops it.
//!
//! `GET /fhir/Linkage` answers [`TOTAL`] made-up `Linkage` resources the same way, none of
//! them stalling; a page of more than [`LARGE`] of them takes [`LARGE_BYTES`] of memory
//! (past a 16 MiB `memory_mib`), as a page of large resources does, so an export shows it
//! goes on with smaller pages.
//!
//! `GET /fhir/Flag` answers [`TOTAL`] made-up `Flag` resources the same way, each naming
//! the instance's call that made it (`code.text`: `call N of its instance`), so an export
//! shows which pages one instance served; the page at offset [`TRAP_AT`] traps when it is
//! not its instance's first call, so an export shows a trapped instance is not used again.
//!
//! `GET /fhir/Media` answers [`TOTAL`] `Media` resources named by call as `Flag` does, and
//! keeps (leaks) memory for the rest of its instance's life: `media_leak_first_mib` MiB
//! (configuration) on an instance's first call, `media_leak_later_mib` on each later one,
//! so an export shows an instance grown past half its memory cap is not kept, and a page
//! that runs out of memory in a kept instance is asked again of a fresh one.

use std::sync::atomic::{AtomicU32, Ordering};

use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// How many resources the search holds.
pub const TOTAL: u32 = 25;

/// The offset from which every page stalls.
pub const STALL_AT: u32 = 12;

/// The most `Linkage` resources a page holds without its large buffer.
pub const LARGE: u32 = 4;

/// The memory a `Linkage` page of more than [`LARGE`] resources takes.
pub const LARGE_BYTES: usize = 32 << 20;

/// The offset of the `Flag` page that traps in an instance that served a call before.
pub const TRAP_AT: u32 = 12;

/// Calls this instance has handled.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// The stalling type.
pub struct Stall;

impl Resource for Stall {
    const NAME: &'static str = "test-stall";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR searches that stall part-way through or need much memory for large pages (tests only)";
    const ROUTES: &'static [Route] = &[
        Route::get("/fhir/Basic", "Basic.s", basic),
        Route::get("/fhir/Linkage", "Linkage.s", linkage),
        Route::get("/fhir/Flag", "Flag.s", flag),
        Route::get("/fhir/Media", "Media.s", media),
    ];
    const CONFIG_KEYS: &'static [&'static str] = &["media_leak_first_mib", "media_leak_later_mib"];

    fn fhir_types() -> Vec<FhirType> {
        ["Basic", "Linkage", "Flag", "Media"]
            .into_iter()
            .map(|t| FhirType {
                resource_type: t.to_owned(),
                profiles: Vec::new(),
                search_params: Vec::new(),
            })
            .collect()
    }
}

hearth_sdk::export!(Stall);

fn basic(req: &Request) -> Result<Response> {
    search(req, "Basic", |from, _| {
        if from >= STALL_AT {
            stall();
        }
    })
}

fn linkage(req: &Request) -> Result<Response> {
    search(req, "Linkage", |_, count| {
        if count > LARGE {
            // A page this large holds a buffer past the plugin's memory limit.
            let mut buffer = vec![0u8; LARGE_BYTES];
            buffer[LARGE_BYTES - 1] = 1;
            std::hint::black_box(&buffer);
        }
    })
}

fn flag(req: &Request) -> Result<Response> {
    let call = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let text = format!("call {call} of its instance, resource");
    search_as(req, "Flag", &text, |from, _| {
        if from == TRAP_AT && call > 1 {
            panic!("the Flag page at {TRAP_AT} traps in an instance used before");
        }
    })
}

fn media(req: &Request) -> Result<Response> {
    let call = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let key = if call == 1 {
        "media_leak_first_mib"
    } else {
        "media_leak_later_mib"
    };
    let mib: usize = hearth_sdk::config(key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if mib > 0 {
        // Kept for the instance's life, as a cache that only grows would be.
        std::mem::forget(vec![1u8; mib << 20]);
    }
    let text = format!("call {call} of its instance, resource");
    search_as(req, "Media", &text, |_, _| {})
}

/// A page of `resource_type`'s made-up resources; `before` is told the page's offset and
/// size first.
fn search(req: &Request, resource_type: &str, before: impl Fn(u32, u32)) -> Result<Response> {
    search_as(req, resource_type, "stall test", before)
}

/// [`search`] with resource `i`'s `code.text` `"{text} {i}"`.
fn search_as(
    req: &Request,
    resource_type: &str,
    text: &str,
    before: impl Fn(u32, u32),
) -> Result<Response> {
    let base = format!("{}/{resource_type}", req.base_url());
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
    before(from, count);
    let to = (from + count).min(TOTAL);
    let entries: Vec<String> = (from..to)
        .map(|i| {
            format!(
                r#"{{"fullUrl":"{base}/b-{i}","resource":{{"resourceType":"{resource_type}","id":"b-{i}","code":{{"text":"{text} {i}"}}}},"search":{{"mode":"match"}}}}"#
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
