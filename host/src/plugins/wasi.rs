//! The slice of WASI 0.2 a Rust plugin links in, served without a WASI context.
//!
//! Rust's standard library on `wasm32-wasip2` imports stdio streams, the environment,
//! `exit`, clocks and random numbers, even when a plugin never uses them. A full WASI
//! context per request costs time, and grants far more than a plugin needs. Instead these
//! functions are defined once on the linker:
//!
//! - stdout and stderr are captured (up to 16 KiB) and logged with the request, so a
//!   panic message reaches the log; stdin is closed;
//! - the environment and arguments are empty, `exit` traps;
//! - clocks and random numbers come from the host;
//! - there is no filesystem and no network: a plugin importing them is refused at load
//!   time with a message that names the import.

use wasmtime::component::{ComponentType, Lift, Linker, Lower, Resource, ResourceType};

use super::host::State;

/// `wasi:io/error.error`.
pub struct IoError;
/// `wasi:io/poll.pollable`.
pub struct Pollable;
/// `wasi:io/streams.input-stream`.
pub struct InputStream;
/// `wasi:io/streams.output-stream`.
pub struct OutputStream;
/// `wasi:cli/terminal-input.terminal-input`.
pub struct TerminalInput;
/// `wasi:cli/terminal-output.terminal-output`.
pub struct TerminalOutput;

/// `wasi:io/streams.stream-error`.
#[derive(ComponentType, Lift, Lower)]
#[component(variant)]
pub enum StreamError {
    /// The last operation failed.
    #[component(name = "last-operation-failed")]
    LastOperationFailed(Resource<IoError>),
    /// The stream is closed.
    #[component(name = "closed")]
    Closed,
}

/// `wasi:clocks/wall-clock.datetime`.
#[derive(ComponentType, Lift, Lower, Clone, Copy)]
#[component(record)]
pub struct Datetime {
    seconds: u64,
    nanoseconds: u32,
}

/// Bytes of console output kept per request.
pub use super::host::CONSOLE_LIMIT;

const V: &str = "0.2.6";

type Result<T> = wasmtime::Result<T>;

/// Adds every stub to `linker`.
pub fn add_to_linker(linker: &mut Linker<State>) -> Result<()> {
    let noop = |_: wasmtime::StoreContextMut<'_, State>, _: u32| Ok(());

    let mut error = linker.instance(&format!("wasi:io/error@{V}"))?;
    error.resource("error", ResourceType::host::<IoError>(), noop)?;
    error.func_wrap(
        "[method]error.to-debug-string",
        |_, (_,): (Resource<IoError>,)| Ok((String::new(),)),
    )?;

    let mut poll = linker.instance(&format!("wasi:io/poll@{V}"))?;
    poll.resource("pollable", ResourceType::host::<Pollable>(), noop)?;
    poll.func_wrap(
        "[method]pollable.ready",
        |_, (_,): (Resource<Pollable>,)| Ok((true,)),
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_, (_,): (Resource<Pollable>,)| Ok(()),
    )?;
    poll.func_wrap("poll", |_, (list,): (Vec<Resource<Pollable>>,)| {
        Ok(((0..list.len() as u32).collect::<Vec<u32>>(),))
    })?;

    let mut streams = linker.instance(&format!("wasi:io/streams@{V}"))?;
    streams.resource("input-stream", ResourceType::host::<InputStream>(), noop)?;
    streams.resource("output-stream", ResourceType::host::<OutputStream>(), noop)?;
    for name in [
        "[method]input-stream.read",
        "[method]input-stream.blocking-read",
    ] {
        streams.func_wrap(name, |_, (_, _): (Resource<InputStream>, u64)| {
            Ok((std::result::Result::<Vec<u8>, StreamError>::Err(
                StreamError::Closed,
            ),))
        })?;
    }
    for name in [
        "[method]input-stream.skip",
        "[method]input-stream.blocking-skip",
    ] {
        streams.func_wrap(name, |_, (_, _): (Resource<InputStream>, u64)| {
            Ok((std::result::Result::<u64, StreamError>::Err(
                StreamError::Closed,
            ),))
        })?;
    }
    streams.func_wrap(
        "[method]input-stream.subscribe",
        |_, (_,): (Resource<InputStream>,)| Ok((Resource::<Pollable>::new_own(0),)),
    )?;
    streams.func_wrap(
        "[method]output-stream.check-write",
        |_, (_,): (Resource<OutputStream>,)| {
            Ok((std::result::Result::<u64, StreamError>::Ok(4096),))
        },
    )?;
    for name in [
        "[method]output-stream.write",
        "[method]output-stream.blocking-write-and-flush",
    ] {
        streams.func_wrap(
            name,
            |mut store: wasmtime::StoreContextMut<'_, State>,
             (_, bytes): (Resource<OutputStream>, Vec<u8>)| {
                store.data_mut().log.capture(&bytes);
                Ok((std::result::Result::<(), StreamError>::Ok(()),))
            },
        )?;
    }
    for name in [
        "[method]output-stream.flush",
        "[method]output-stream.blocking-flush",
    ] {
        streams.func_wrap(name, |_, (_,): (Resource<OutputStream>,)| {
            Ok((std::result::Result::<(), StreamError>::Ok(()),))
        })?;
    }
    for name in [
        "[method]output-stream.write-zeroes",
        "[method]output-stream.blocking-write-zeroes-and-flush",
    ] {
        streams.func_wrap(name, |_, (_, _): (Resource<OutputStream>, u64)| {
            Ok((std::result::Result::<(), StreamError>::Ok(()),))
        })?;
    }
    streams.func_wrap(
        "[method]output-stream.subscribe",
        |_, (_,): (Resource<OutputStream>,)| Ok((Resource::<Pollable>::new_own(0),)),
    )?;

    let mut environment = linker.instance(&format!("wasi:cli/environment@{V}"))?;
    environment.func_wrap("get-environment", |_, (): ()| {
        Ok((Vec::<(String, String)>::new(),))
    })?;
    environment.func_wrap("get-arguments", |_, (): ()| Ok((Vec::<String>::new(),)))?;
    environment.func_wrap("initial-cwd", |_, (): ()| Ok((None::<String>,)))?;

    let mut exit = linker.instance(&format!("wasi:cli/exit@{V}"))?;
    exit.func_wrap(
        "exit",
        |_, (_,): (std::result::Result<(), ()>,)| -> Result<()> {
            Err(wasmtime::Error::msg("the plugin called exit"))
        },
    )?;

    let mut stdin = linker.instance(&format!("wasi:cli/stdin@{V}"))?;
    stdin.func_wrap("get-stdin", |_, (): ()| {
        Ok((Resource::<InputStream>::new_own(0),))
    })?;
    let mut stdout = linker.instance(&format!("wasi:cli/stdout@{V}"))?;
    stdout.func_wrap("get-stdout", |_, (): ()| {
        Ok((Resource::<OutputStream>::new_own(1),))
    })?;
    let mut stderr = linker.instance(&format!("wasi:cli/stderr@{V}"))?;
    stderr.func_wrap("get-stderr", |_, (): ()| {
        Ok((Resource::<OutputStream>::new_own(2),))
    })?;

    let mut terminal_input = linker.instance(&format!("wasi:cli/terminal-input@{V}"))?;
    terminal_input.resource(
        "terminal-input",
        ResourceType::host::<TerminalInput>(),
        noop,
    )?;
    let mut terminal_output = linker.instance(&format!("wasi:cli/terminal-output@{V}"))?;
    terminal_output.resource(
        "terminal-output",
        ResourceType::host::<TerminalOutput>(),
        noop,
    )?;
    let mut terminal_stdin = linker.instance(&format!("wasi:cli/terminal-stdin@{V}"))?;
    terminal_stdin.func_wrap("get-terminal-stdin", |_, (): ()| {
        Ok((None::<Resource<TerminalInput>>,))
    })?;
    for (interface, function) in [
        ("terminal-stdout", "get-terminal-stdout"),
        ("terminal-stderr", "get-terminal-stderr"),
    ] {
        let mut instance = linker.instance(&format!("wasi:cli/{interface}@{V}"))?;
        instance.func_wrap(function, |_, (): ()| {
            Ok((None::<Resource<TerminalOutput>>,))
        })?;
    }

    let mut wall = linker.instance(&format!("wasi:clocks/wall-clock@{V}"))?;
    wall.func_wrap("now", |_, (): ()| {
        let now = time::OffsetDateTime::now_utc();
        Ok((Datetime {
            seconds: now.unix_timestamp().max(0) as u64,
            nanoseconds: now.nanosecond(),
        },))
    })?;
    wall.func_wrap("resolution", |_, (): ()| {
        Ok((Datetime {
            seconds: 0,
            nanoseconds: 1_000,
        },))
    })?;
    let mut monotonic = linker.instance(&format!("wasi:clocks/monotonic-clock@{V}"))?;
    monotonic.func_wrap("now", |_, (): ()| Ok((monotonic_nanos(),)))?;
    monotonic.func_wrap("resolution", |_, (): ()| Ok((1_000u64,)))?;
    for name in ["subscribe-instant", "subscribe-duration"] {
        monotonic.func_wrap(name, |_, (_,): (u64,)| {
            Ok((Resource::<Pollable>::new_own(0),))
        })?;
    }

    let mut random = linker.instance(&format!("wasi:random/random@{V}"))?;
    random.func_wrap("get-random-bytes", |_, (len,): (u64,)| random_bytes(len))?;
    random.func_wrap("get-random-u64", |_, (): ()| Ok((rand::random::<u64>(),)))?;
    let mut insecure = linker.instance(&format!("wasi:random/insecure@{V}"))?;
    insecure.func_wrap("get-insecure-random-bytes", |_, (len,): (u64,)| {
        random_bytes(len)
    })?;
    insecure.func_wrap("get-insecure-random-u64", |_, (): ()| {
        Ok((rand::random::<u64>(),))
    })?;
    let mut seed = linker.instance(&format!("wasi:random/insecure-seed@{V}"))?;
    seed.func_wrap("insecure-seed", |_, (): ()| {
        Ok(((rand::random::<u64>(), rand::random::<u64>()),))
    })?;
    Ok(())
}

fn random_bytes(len: u64) -> Result<(Vec<u8>,)> {
    if len > 1 << 20 {
        return Err(wasmtime::Error::msg(
            "asked for more than 1 MiB of random bytes",
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    rand::Rng::fill(&mut rand::thread_rng(), bytes.as_mut_slice());
    Ok((bytes,))
}

fn monotonic_nanos() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}
