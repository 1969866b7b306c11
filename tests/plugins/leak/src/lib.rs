//! The leak probe (tests only): a plugin that tries every way a guest has to carry data
//! from one request to the next, so the suite can prove that a request never sees anything
//! an earlier one left behind — whoever made it, and however the host recycles instances.
//!
//! `POST /api/leak` with `{"secret": "<32 lowercase hex digits>", "then": …}` stores the
//! secret in an atomic `static`, a `static mut` buffer, a `thread_local!`, a `OnceLock`, a
//! leaked heap block, a 3 MiB block that makes linear memory grow, a page it grows by hand
//! with `memory.grow`, and the stack. Then, by `then`: nothing (200), `"check"` (200 with
//! what a scan finds right after storing: the control that proves the scan sees each
//! place), `"fail"` (400), `"trap"` (a panic) or `"spin"` (loops until the host stops it).
//!
//! Every answer carries `seen`: what the request found when it started, before it stored
//! anything — the statics' values, linear memory's size, where the stack was, and every
//! marked secret a scan of the whole linear memory (data, heap, stack, grown pages) found.
//! `GET /api/leak` only reports `seen`.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hearth_sdk::prelude::*;

/// The leak probe.
pub struct Leak;

impl Resource for Leak {
    const NAME: &'static str = "test-leak";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Tries to carry data between requests (tests only)";
    const ROUTES: &'static [Route] = &[
        Route::get("/api/leak", "patient.s", look),
        Route::post("/api/leak", "patient.c", store_secret),
    ];
}

hearth_sdk::export!(Leak);

/// Length of a secret: 32 lowercase hex digits.
const SECRET_LEN: usize = 32;
const MARKER_LEN: usize = 16;
const MASK: u8 = 0xa5;

/// The marker written before every stored copy, kept masked so the component's data never
/// holds it in clear: a scan finds only the copies some request wrote.
static MASKED_MARKER: [u8; MARKER_LEN] = masked(b"~hearth-leak-v1~");

const fn masked(text: &[u8; MARKER_LEN]) -> [u8; MARKER_LEN] {
    let mut out = [0; MARKER_LEN];
    let mut at = 0;
    while at < MARKER_LEN {
        out[at] = text[at] ^ MASK;
        at += 1;
    }
    out
}

fn marker() -> [u8; MARKER_LEN] {
    let mut out = black_box(MASKED_MARKER);
    for byte in &mut out {
        *byte ^= MASK;
    }
    out
}

// The places a guest can keep something between calls of one instance.
static COUNTER: AtomicU64 = AtomicU64::new(0);
static mut RAW: [u8; MARKER_LEN + SECRET_LEN] = [0; MARKER_LEN + SECRET_LEN];
thread_local! {
    static LOCAL: RefCell<String> = const { RefCell::new(String::new()) };
}
static ONCE: OnceLock<String> = OnceLock::new();

fn look(_req: &Request) -> Result<Response> {
    let seen = seen();
    let mut data = Json::object();
    data.field("seen", seen);
    Ok(Response::ok(data.end()))
}

fn store_secret(req: &Request) -> Result<Response> {
    let seen = seen();
    let body = req.json_object()?;
    let secret = body
        .get("secret")
        .and_then(|v| v.as_str())
        .filter(|s| {
            s.len() == SECRET_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| ApiError::BadRequest("secret must be 32 lowercase hex digits".into()))?
        .to_owned();
    let then = body.get("then").and_then(|v| v.as_str()).unwrap_or("");
    let mut marked = [0u8; MARKER_LEN + SECRET_LEN];
    marked[..MARKER_LEN].copy_from_slice(&marker());
    marked[MARKER_LEN..].copy_from_slice(secret.as_bytes());

    let number = u64::from_str_radix(&secret[..16], 16).unwrap_or(u64::MAX) | 1;
    COUNTER.store(number, Ordering::Relaxed);
    // SAFETY: an instance runs one request at a time on one thread.
    unsafe { (&raw mut RAW).write(marked) };
    LOCAL.with(|local| *local.borrow_mut() = secret.clone());
    let _ = ONCE.set(secret.clone());
    black_box(Box::leak(Box::new(marked)));
    // More than the allocator's static arena holds: linear memory grows.
    let mut big = Vec::with_capacity(3 << 20);
    while big.len() + marked.len() <= big.capacity() {
        big.extend_from_slice(&marked);
    }
    std::mem::forget(black_box(big));
    grow_and_write(&marked);
    // A copy on the stack, kept until the answer is built.
    let on_stack = black_box(marked);

    let answer = match then {
        "check" => {
            let mut data = Json::object();
            data.field("seen", seen).field("after", self::seen());
            Ok(Response::ok(data.end()))
        }
        "fail" => Err(ApiError::BadRequest(
            "failing on purpose after storing".into(),
        )),
        "trap" => panic!("trapping on purpose after storing"),
        "spin" => loop {
            black_box(&on_stack);
        },
        _ => {
            let mut data = Json::object();
            data.field("seen", seen).field("stored", true);
            Ok(Response::ok(data.end()))
        }
    };
    black_box(&on_stack);
    answer
}

/// What this instance holds that an earlier request could have left.
fn seen() -> Json {
    let stack_marker = 0u8;
    let stack = black_box(&stack_marker) as *const u8 as usize;
    let pages = memory_pages();
    let raw_nonzero = {
        // SAFETY: as in `store_secret`.
        let raw = unsafe { (&raw const RAW).read() };
        raw.iter().filter(|b| **b != 0).count()
    };
    let local = LOCAL.with(|local| local.borrow().clone());
    let mut found = Json::array();
    for secret in scan() {
        found.push(secret);
    }
    let mut out = Json::object();
    out.field("counter", COUNTER.load(Ordering::Relaxed))
        .field("static_mut_bytes", raw_nonzero)
        .field("thread_local", local)
        .field("once", ONCE.get().cloned())
        .field("memory_pages", pages)
        .field("stack", stack)
        .field("found", found.end());
    out.end()
}

#[cfg(target_arch = "wasm32")]
fn memory_pages() -> usize {
    core::arch::wasm32::memory_size(0)
}

#[cfg(target_arch = "wasm32")]
fn grow_and_write(marked: &[u8]) {
    let previous = core::arch::wasm32::memory_grow(0, 1);
    if previous != usize::MAX {
        let at = (previous * 65_536) as *mut u8;
        for (offset, byte) in marked.iter().enumerate() {
            // SAFETY: the page was just added to linear memory and nothing else owns it.
            unsafe { at.add(offset).write_volatile(*byte) };
        }
    }
}

/// Every marked secret anywhere in linear memory (but the marker this scan compares with).
#[cfg(target_arch = "wasm32")]
fn scan() -> Vec<String> {
    let marker = marker();
    let own = marker.as_ptr() as usize;
    let size = memory_pages() * 65_536;
    let read = |at: usize| -> u8 {
        // SAFETY: `at` lies inside linear memory (below its current size); the scan reads
        // memory outside Rust's model on purpose, hence volatile reads.
        unsafe { (at as *const u8).read_volatile() }
    };
    let mut found = Vec::new();
    let mut at = 1;
    while at + MARKER_LEN + SECRET_LEN <= size {
        if read(at) == marker[0] && at != own && (1..MARKER_LEN).all(|i| read(at + i) == marker[i])
        {
            let secret: Vec<u8> = (0..SECRET_LEN).map(|i| read(at + MARKER_LEN + i)).collect();
            if secret
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            {
                found.push(String::from_utf8(secret).unwrap_or_default());
            }
            at += MARKER_LEN;
        } else {
            at += 1;
        }
    }
    found
}

// Native builds (the workspace's lints and unit tests) have no linear memory to look at.
#[cfg(not(target_arch = "wasm32"))]
fn memory_pages() -> usize {
    0
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_and_write(_marked: &[u8]) {}

#[cfg(not(target_arch = "wasm32"))]
fn scan() -> Vec<String> {
    Vec::new()
}
