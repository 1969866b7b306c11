//! The log capability: a plugin's `log` lines and its console output (stdout and stderr
//! through the WASI stubs), tagged with the site, plugin and request, and capped per line
//! and per request so a plugin cannot flood the host's log.

use wasmtime::component::HasData;

use super::request::RequestCtx;
use crate::plugins::bindings::log;

/// The longest log line a plugin may write; longer lines are cut.
pub const LOG_LINE_BYTES: usize = 4 * 1024;
/// The most a plugin may log in one request; later lines are dropped (one note says so).
pub const LOG_REQUEST_BYTES: usize = 64 * 1024;
/// Bytes of console output kept per request.
pub const CONSOLE_LIMIT: usize = 16 * 1024;

/// What the plugin has written in this request.
#[derive(Default)]
pub struct LogCtx {
    /// What the plugin wrote to stdout and stderr (a panic message, say), up to
    /// [`CONSOLE_LIMIT`] bytes.
    pub console: Vec<u8>,
    /// Bytes the plugin has logged through the `log` interface in this request.
    pub logged: usize,
}

impl LogCtx {
    /// Keeps console output while there is room for it; the rest is dropped.
    pub fn capture(&mut self, bytes: &[u8]) {
        let room = CONSOLE_LIMIT.saturating_sub(self.console.len());
        self.console
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Counts `message` against the request's cap and cuts it to a line's length.
    /// Answers the line to write, or none once the request's cap is used up, and whether
    /// this line used it up.
    fn admit(&mut self, mut message: String) -> Option<(String, bool)> {
        if self.logged >= LOG_REQUEST_BYTES {
            return None;
        }
        if message.len() > LOG_LINE_BYTES {
            let mut end = LOG_LINE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            let cut = message.len() - end;
            message.truncate(end);
            message.push_str(&format!(
                " … ({cut} bytes cut: a log line holds {LOG_LINE_BYTES})"
            ));
        }
        self.logged += message.len();
        Some((message, self.logged >= LOG_REQUEST_BYTES))
    }
}

/// What the `log` interface works on: its own context and the request's identity.
pub struct LogView<'a> {
    /// The log's context.
    pub ctx: &'a mut LogCtx,
    /// Who is logging.
    pub request: &'a RequestCtx,
}

/// Links the `log` interface to [`LogView`].
pub struct LogHost;

impl HasData for LogHost {
    type Data<'a> = LogView<'a>;
}

impl log::Host for LogView<'_> {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let Some((message, full)) = self.ctx.admit(message) else {
            return Ok(());
        };
        let site = self.request.site_name();
        let plugin = &*self.request.plugin;
        let request = self.request.request_id.as_str();
        if full {
            tracing::warn!(
                site,
                plugin,
                request,
                "the plugin logged {LOG_REQUEST_BYTES} bytes in this request; its further log lines are dropped"
            );
        }
        match level {
            log::Level::Trace => tracing::trace!(site, plugin, request, "{message}"),
            log::Level::Debug => tracing::debug!(site, plugin, request, "{message}"),
            log::Level::Info => tracing::info!(site, plugin, request, "{message}"),
            log::Level::Warn => tracing::warn!(site, plugin, request, "{message}"),
            log::Level::Error => tracing::error!(site, plugin, request, "{message}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::{CONSOLE_LIMIT, LOG_LINE_BYTES, LOG_REQUEST_BYTES, LogCtx, LogView};
    use crate::plugins::bindings::log::{Host as _, Level};
    use crate::plugins::host::request::RequestCtx;

    /// Everything the tracing subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn plugin_log_lines_and_the_log_of_a_request_are_capped() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let mut ctx = LogCtx::default();
            let request = RequestCtx::describing();
            let mut view = LogView {
                ctx: &mut ctx,
                request: &request,
            };
            let line = "é".repeat(50_000);
            for _ in 0..200 {
                view.write(Level::Info, line.clone()).unwrap();
            }
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let longest = text.lines().map(str::len).max().unwrap();
        assert!(longest < LOG_LINE_BYTES + 300, "a line of {longest} bytes");
        assert!(text.contains("bytes cut"), "a cut line says so");
        assert!(
            text.contains("further log lines are dropped"),
            "the request's cap says so"
        );
        assert!(
            text.len() < LOG_REQUEST_BYTES + 2 * LOG_LINE_BYTES + 10_000,
            "{} bytes logged for 20 MB asked",
            text.len()
        );
    }

    #[test]
    fn a_cut_line_ends_on_a_character_boundary() {
        let mut ctx = LogCtx::default();
        // 'é' is two bytes: the cut at LOG_LINE_BYTES + 1 falls inside one.
        let message = format!("x{}", "é".repeat(LOG_LINE_BYTES));
        let (line, full) = ctx.admit(message).unwrap();
        assert!(line.starts_with('x'));
        assert!(line.contains("bytes cut"), "{}", &line[line.len() - 60..]);
        assert!(!full);
        assert_eq!(ctx.logged, line.len());
    }

    #[test]
    fn console_output_is_kept_up_to_its_limit() {
        let mut ctx = LogCtx::default();
        ctx.capture(b"thread 'main' panicked\n");
        ctx.capture(&vec![b'.'; CONSOLE_LIMIT * 2]);
        ctx.capture(b"never kept");
        assert_eq!(ctx.console.len(), CONSOLE_LIMIT);
        assert!(ctx.console.starts_with(b"thread 'main' panicked\n"));
    }
}
