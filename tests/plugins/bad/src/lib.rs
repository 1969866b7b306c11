//! A plugin that misbehaves on purpose, so tests can prove the host contains it: each
//! route breaks one rule, and `/api/bad/ok` shows the plugin (and the server) still serve.

use hearth_sdk::prelude::*;

/// The misbehaving plugin.
pub struct Bad;

impl Resource for Bad {
    const NAME: &'static str = "test-bad";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Misbehaves on purpose (tests only)";
    const READS: &'static [&'static str] = &["patient_data"];
    const WRITES: &'static [&'static str] = &["sequences"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/bad/ok", "patient.s", ok),
        Route::get("/api/bad/loop", "patient.s", spin),
        Route::get("/api/bad/slow-query", "patient.s", slow_query),
        Route::get("/api/bad/memory", "patient.s", hog),
        Route::get("/api/bad/panic", "patient.s", panic),
        Route::get("/api/bad/undeclared-read", "patient.s", undeclared_read),
        Route::get("/api/bad/host-table", "patient.s", host_table),
        Route::post("/api/bad/undeclared-write", "patient.c", undeclared_write),
        Route::get("/api/bad/write-in-get", "patient.s", write_in_get),
        Route::post("/api/bad/write-then-fail", "patient.c", write_then_fail),
        Route::post("/api/bad/write-then-trap", "patient.c", write_then_trap),
        Route::get("/api/bad/huge-response", "patient.s", huge_response),
        Route::get("/api/bad/hold/:ms", "patient.s", hold),
    ];
}

hearth_sdk::export!(Bad);

fn ok(_: &Request) -> Result<Response> {
    let rows = store::query("SELECT COUNT(*) AS n FROM patient_data", params![])?;
    let mut data = Json::object();
    data.field(
        "patients",
        rows.get(0).and_then(|r| r.int("n")).unwrap_or(0),
    );
    Ok(Response::ok(data.end()))
}

fn spin(_: &Request) -> Result<Response> {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn slow_query(_: &Request) -> Result<Response> {
    // Endless inside the database, not in wasm: the deadline must cover host calls too.
    store::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) AS c FROM n",
        params![],
    )?;
    Ok(Response::ok(Json::null()))
}

fn hog(_: &Request) -> Result<Response> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&chunks);
    }
}

fn panic(_: &Request) -> Result<Response> {
    panic!("this plugin panics on purpose");
}

/// Answers 200 with the error the plugin saw, so a test can check the plugin saw it.
fn report(result: std::result::Result<impl Sized, hearth_sdk::StoreError>) -> Result<Response> {
    let mut data = Json::object();
    match result {
        Ok(_) => data.field("error", None::<&str>),
        Err(error) => data.field("error", error.to_string()),
    };
    Ok(Response::ok(data.end()))
}

fn undeclared_read(_: &Request) -> Result<Response> {
    report(store::query("SELECT username FROM users", params![]))
}

fn host_table(_: &Request) -> Result<Response> {
    report(store::query("SELECT password FROM users_secure", params![]))
}

fn undeclared_write(_: &Request) -> Result<Response> {
    report(store::execute(
        "UPDATE patient_data SET fname = 'x'",
        params![],
    ))
}

fn write_in_get(_: &Request) -> Result<Response> {
    report(store::execute(
        "UPDATE sequences SET value = value + 1 WHERE name = 'pid'",
        params![],
    ))
}

fn write_then_fail(_: &Request) -> Result<Response> {
    store::execute(
        "UPDATE sequences SET value = value + 1000 WHERE name = 'pid'",
        params![],
    )?;
    Err(ApiError::Internal(
        "failing after a write, on purpose".into(),
    ))
}

fn write_then_trap(_: &Request) -> Result<Response> {
    store::execute(
        "UPDATE sequences SET value = value + 1000 WHERE name = 'pid'",
        params![],
    )?;
    panic!("trapping after a write, on purpose");
}

fn huge_response(_: &Request) -> Result<Response> {
    Ok(Response::json(
        200,
        Json::raw(format!("\"{}\"", "x".repeat(2 << 20))),
    ))
}

/// Keeps its instance for `ms` milliseconds of wall-clock time, then answers 200: a slow
/// request, for the limit on concurrent instances.
fn hold(req: &Request) -> Result<Response> {
    let ms = req.id("ms")? as u64;
    let started = std::time::Instant::now();
    let mut x: u64 = 1;
    while started.elapsed() < std::time::Duration::from_millis(ms) {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    let mut data = Json::object();
    data.field("held_ms", ms as i64);
    Ok(Response::ok(data.end()))
}
