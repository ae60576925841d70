//! When the manifests source looks at its folder again: on filesystem
//! events (inotify, through the `notify` crate) where they work, on a fixed
//! interval where they do not.
//!
//! With events the folder costs nothing while idle: it is scanned when an
//! event says something under it changed (after the burst settles, so a
//! writer renaming many files is scanned once), and every [`RESCAN`] as a
//! safety net for changes no event reports (a network filesystem written
//! from another machine). Every event wakes a full scan, including an
//! event-queue overflow, so nothing is lost: the scan compares every file's
//! size, time and inode with what was read.
//!
//! Polling is the fallback: when the watch cannot be set up (no inotify
//! instances or watches left, a filesystem without events), when the
//! watcher stops, or while the folder itself is missing; each poll tries to
//! watch again.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// How long the folder must stay quiet after an event before the scan.
const SETTLE: Duration = Duration::from_millis(10);
/// The longest a burst of events delays the scan.
const SETTLE_MAX: Duration = Duration::from_millis(100);
/// How often the folder is scanned while events say nothing.
const RESCAN: Duration = Duration::from_secs(30);

/// A watch on the folder: the watcher, and the channel its thread wakes.
struct Events {
    _watcher: RecommendedWatcher,
    woken: Receiver<()>,
    /// The folder watched: a folder replaced under the same name is not.
    folder: Option<u64>,
}

impl Events {
    fn watch(root: &Path) -> notify::Result<Self> {
        let (wake, woken) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Reads (ours included) change nothing; an error (a queue
                // overflow) may hide a change, so it wakes a scan too.
                if !matches!(event, Ok(ref e) if matches!(e.kind, EventKind::Access(_))) {
                    let _ = wake.send(());
                }
            })?;
        let folder = folder_id(root);
        watcher.watch(root, RecursiveMode::Recursive)?;
        Ok(Self {
            _watcher: watcher,
            woken,
            folder,
        })
    }
}

/// Decides when the source scans next. See the module docs.
pub(super) struct Waker {
    root: PathBuf,
    poll: Duration,
    events: Option<Events>,
}

impl Waker {
    /// Watches `root` for events, or polls it every `poll` if it cannot.
    pub(super) fn new(root: &Path, poll: Duration) -> Self {
        let events = match Events::watch(root) {
            Ok(events) => {
                tracing::debug!(dir = %root.display(), "watching the manifests folder for events");
                Some(events)
            }
            Err(error) => {
                tracing::warn!(dir = %root.display(), %error, interval = ?poll, "cannot watch the manifests folder for events; polling it");
                None
            }
        };
        Self {
            root: root.to_path_buf(),
            poll,
            events,
        }
    }

    /// Returns when the folder may have changed.
    pub(super) fn wait(&mut self) {
        let Some(events) = &self.events else {
            std::thread::sleep(self.poll);
            if let Ok(events) = Events::watch(&self.root) {
                tracing::info!(dir = %self.root.display(), "watching the manifests folder for events again");
                self.events = Some(events);
            }
            return;
        };
        match events.woken.recv_timeout(RESCAN) {
            Ok(()) => {
                let until = Instant::now() + SETTLE_MAX;
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() || events.woken.recv_timeout(SETTLE.min(left)).is_err() {
                        break;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                tracing::warn!(dir = %self.root.display(), interval = ?self.poll, "the manifests folder's watcher stopped; polling it");
                self.events = None;
            }
        }
    }

    /// After a scan: if the folder is gone or was replaced, its watch went
    /// with it: poll until it can be watched again.
    pub(super) fn recheck(&mut self) {
        let replaced = self
            .events
            .as_ref()
            .is_some_and(|e| e.folder.is_none() || folder_id(&self.root) != e.folder);
        if replaced {
            self.events = None;
            tracing::warn!(dir = %self.root.display(), interval = ?self.poll, "the manifests folder is gone or was replaced; polling it");
        }
    }
}

/// The folder's inode (resolving symlinks), if it is there.
#[cfg(unix)]
fn folder_id(root: &Path) -> Option<u64> {
    std::fs::metadata(root)
        .ok()
        .filter(std::fs::Metadata::is_dir)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

#[cfg(not(unix))]
fn folder_id(root: &Path) -> Option<u64> {
    root.is_dir().then_some(0)
}
