//! Hot reload: watch `plugins.toml` and the plugin folder, and reload the registry when
//! either changes.
//!
//! The watch is on the two folders, not the files, so a file replaced by rename (how
//! builds and careful deploys write) is seen as well as one written in place. Only events
//! on the manifest itself and on `*.wasm` files count; other files in those folders (the
//! data folder's databases, say) never trigger a reload. Events are debounced: the reload
//! starts once no relevant event came for [`DEBOUNCE`] (or [`MAX_DELAY`] after the first),
//! so a file written in several chunks is read once, whole. A reload that finds a half
//! written file keeps the last good version and the next event loads the finished one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Registry;

/// Quiet time after the last relevant event before a reload starts.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// The longest a reload waits behind a stream of events.
pub const MAX_DELAY: Duration = Duration::from_millis(500);

/// True when an event of `kind` may mean new content.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The folders to watch and how to tell relevant paths.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Targets {
    manifest: PathBuf,
    plugin_dir: PathBuf,
}

impl Targets {
    fn of(registry: &Registry) -> Targets {
        let manifest = absolute(registry.manifest_path());
        let plugin_dir = registry
            .plugin_dir()
            .map(|d| absolute(&d))
            .unwrap_or_else(|| manifest.parent().unwrap_or(Path::new("/")).to_path_buf());
        Targets {
            manifest,
            plugin_dir,
        }
    }

    fn folders(&self) -> Vec<PathBuf> {
        let mut folders = vec![self.plugin_dir.clone()];
        if let Some(parent) = self.manifest.parent()
            && parent != self.plugin_dir
        {
            folders.push(parent.to_path_buf());
        }
        folders
    }

    fn relevant(&self, path: &Path) -> bool {
        let path = absolute(path);
        if path == self.manifest {
            return true;
        }
        path.parent() == Some(self.plugin_dir.as_path())
            && path.extension().is_some_and(|e| e == "wasm")
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Registry {
    /// Starts watching the manifest and the plugin folder; every relevant change reloads.
    /// The watch stops when the registry is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<()> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let _ = sender.send(event);
            })
            .context("starting the plugin file watcher")?;
        let targets = Targets::of(self);
        for folder in targets.folders() {
            watcher
                .watch(&folder, RecursiveMode::NonRecursive)
                .with_context(|| format!("watching {}", folder.display()))?;
        }
        *self.watcher.lock() = Some(watcher);
        tokio::spawn(run(Arc::downgrade(self), receiver, targets));
        Ok(())
    }
}

async fn run(
    registry: Weak<Registry>,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut targets: Targets,
) {
    let relevant = |event: &notify::Result<notify::Event>, targets: &Targets| match event {
        Ok(event) => {
            changes_content(&event.kind) && event.paths.iter().any(|p| targets.relevant(p))
        }
        // A lost event may hide a change: reload to be sure.
        Err(_) => true,
    };
    while let Some(event) = events.recv().await {
        if !relevant(&event, &targets) {
            continue;
        }
        let first = Instant::now();
        let mut quiet_until = first + DEBOUNCE;
        loop {
            let until = quiet_until.min(first + MAX_DELAY);
            match tokio::time::timeout_at(until, events.recv()).await {
                Ok(Some(event)) => {
                    if relevant(&event, &targets) {
                        quiet_until = Instant::now() + DEBOUNCE;
                    }
                }
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let report = registry.reload().await;
        if !report.changed.is_empty() {
            tracing::info!("hot reload: now serving {}", report.changed.join(", "));
        }
        // `dir` in the manifest may have moved the plugin folder.
        let now = Targets::of(&registry);
        if now != targets {
            if let Some(watcher) = registry.watcher.lock().as_mut() {
                for folder in targets.folders() {
                    let _ = watcher.unwatch(&folder);
                }
                for folder in now.folders() {
                    if let Err(error) = watcher.watch(&folder, RecursiveMode::NonRecursive) {
                        tracing::error!("watching {}: {error}", folder.display());
                    }
                }
            }
            targets = now;
        }
    }
}
