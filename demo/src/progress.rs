//! How far `hearth demo seed` has got, on standard error.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How far `hearth demo seed` has got, on standard error: a progress bar on a terminal;
/// elsewhere (a log file, CI) a plain line at most every [`Progress::PLAIN_EVERY`] and at
/// the end, so a file gets a readable record instead of redraws.
pub struct Progress {
    site: String,
    started: Instant,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
}

impl Progress {
    /// The least time between two plain lines.
    pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

    /// Progress of seeding `total` patients into `site`, as a bar when standard error is
    /// a terminal.
    pub fn new(site: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} {wide_bar} {human_pos}/{human_len} patients [{elapsed_precise}, ETA {eta}]",
            )
            .expect("a valid progress template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(format!("seeding {site}"));
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            site: site.to_owned(),
            started: Instant::now(),
            bar,
            last_line: None,
        }
    }

    /// Records that `done` of `total` patients are written.
    pub fn update(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            if done >= total {
                bar.finish();
                // The bar leaves the cursor on its line; the summary starts below it.
                eprintln!();
            }
            return;
        }
        let now = Instant::now();
        let due = self
            .last_line
            .is_none_or(|last| now - last >= Self::PLAIN_EVERY);
        if due || done >= total {
            eprintln!(
                "{}",
                plain_line(&self.site, done, total, now - self.started)
            );
            self.last_line = Some(now);
        }
    }
}

impl Drop for Progress {
    /// A run that failed leaves its bar where it stopped, not cleared.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.as_ref().filter(|bar| !bar.is_finished()) {
            bar.abandon();
        }
    }
}

/// `seeding default: 20000/100000 patients (20%), 12.3 s`.
pub fn plain_line(site: &str, done: u64, total: u64, elapsed: Duration) -> String {
    format!(
        "seeding {site}: {done}/{total} patients ({}%), {:.1} s",
        done * 100 / total.max(1),
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_progress_lines_say_how_far_and_how_long() {
        assert_eq!(
            plain_line("default", 20_000, 100_000, Duration::from_millis(12_340)),
            "seeding default: 20000/100000 patients (20%), 12.3 s"
        );
        assert_eq!(
            plain_line("x", 7, 7, Duration::ZERO),
            "seeding x: 7/7 patients (100%), 0.0 s"
        );
    }
}
