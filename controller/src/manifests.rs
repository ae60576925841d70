//! The manifests-folder source: every `*.yaml`, `*.yml` and `*.json` file
//! under a directory, read as Kubernetes objects and watched for changes.
//!
//! The folder is scanned when filesystem events (inotify) say something
//! under it changed, and every 30 s as a safety net; where events cannot be
//! had it is polled (every 250 ms by default), see [`wake`]. A scan costs
//! one `stat` per file; a file is read again only when its size,
//! modification time or inode changed. A Kubernetes ConfigMap volume swaps
//! its files by renaming a `..data` symlink in the folder itself, which is
//! an event like any other.
//!
//! This source plays the API server's part for the objects it reads: a
//! namespaced object without a namespace goes to `default`, and an object
//! without `creationTimestamp` gets the time it was first seen, so that
//! "oldest wins" works the same way as in a cluster.
//!
//! Robustness: a file that does not parse keeps its last good objects (a
//! half-written file must not delete routes) and is logged once per change;
//! a file that changes while it is being read is read again at the next
//! poll. Writers that rename complete files into place never expose a
//! partial file at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::thread;
use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use self::documents::Skipped;

use crate::objects::{Object, ObjectKey};
use crate::reconcile::{Change, SourceUpdate};

pub mod documents;
mod wake;

/// Largest manifest file read, in bytes; larger files are skipped.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// How a file looked when last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Fingerprint {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: inode(&meta),
        })
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

#[derive(Debug)]
struct FileEntry {
    fingerprint: Fingerprint,
    /// The objects of the last version that parsed.
    objects: Vec<Object>,
}

/// Why a manifest file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    /// The file is not UTF-8 text.
    #[error("not UTF-8 text")]
    NotText,
    /// The file is not valid YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// The file is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The state of the manifests folder as last scanned.
#[derive(Debug)]
pub struct ManifestDir {
    root: PathBuf,
    files: BTreeMap<PathBuf, FileEntry>,
    /// What was last sent, by key; an object read without
    /// `creationTimestamp` keeps the one it was first published with.
    published: BTreeMap<ObjectKey, Object>,
}

impl ManifestDir {
    /// A source for the folder `root` (nothing is read yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            files: BTreeMap::new(),
            published: BTreeMap::new(),
        }
    }

    /// Reads what changed since the last scan and returns the object
    /// changes, in a stable order. If the folder itself cannot be read,
    /// nothing changes (the last state keeps serving).
    pub fn scan(&mut self) -> Vec<Change> {
        let listing = match list_files(&self.root) {
            Ok(listing) => listing,
            Err(error) => {
                tracing::warn!(dir = %self.root.display(), %error, "cannot list the manifests folder; keeping the last state");
                return Vec::new();
            }
        };
        let mut dirty = false;
        self.files.retain(|path, _| {
            let keep = listing.contains_key(path);
            dirty |= !keep;
            keep
        });
        let now = Time(jiff::Timestamp::now());
        for (path, fingerprint) in listing {
            if self
                .files
                .get(&path)
                .is_some_and(|f| f.fingerprint == fingerprint)
            {
                continue;
            }
            match read_file(&path, fingerprint) {
                ReadOutcome::Changing => {}
                ReadOutcome::Parsed(objects) => {
                    let objects = self.adopt(objects, &now);
                    self.files.insert(
                        path,
                        FileEntry {
                            fingerprint,
                            objects,
                        },
                    );
                    dirty = true;
                }
                ReadOutcome::Failed(error) => {
                    let kept = self.files.get(&path).map_or(0, |f| f.objects.len());
                    tracing::warn!(file = %path.display(), %error, kept_objects = kept, "manifest file skipped");
                    let objects = self
                        .files
                        .remove(&path)
                        .map(|f| f.objects)
                        .unwrap_or_default();
                    self.files.insert(
                        path,
                        FileEntry {
                            fingerprint,
                            objects,
                        },
                    );
                }
            }
        }
        if dirty { self.diff() } else { Vec::new() }
    }

    /// Gives freshly read objects the creation time first seen for their
    /// key (what the API server would have set), and the published value of
    /// every object that did not change: an unchanged object is then held
    /// once, however often its file (a List of thousands) is read again,
    /// and compares equal by pointer.
    fn adopt(&mut self, objects: Vec<Object>, now: &Time) -> Vec<Object> {
        objects
            .into_iter()
            .map(|mut object| {
                let key = object.key();
                if object.metadata().creation_timestamp.is_none() {
                    let seen = self
                        .published
                        .get(&key)
                        .and_then(|old| old.metadata().creation_timestamp.clone());
                    object.metadata_mut().creation_timestamp =
                        Some(seen.unwrap_or_else(|| now.clone()));
                }
                match self.published.get(&key) {
                    Some(old) if *old == object => old.clone(),
                    _ => object,
                }
            })
            .collect()
    }

    /// Merges all files (first file in path order wins a duplicate object)
    /// and returns the changes against what was published.
    fn diff(&mut self) -> Vec<Change> {
        let mut desired: BTreeMap<ObjectKey, Object> = BTreeMap::new();
        for (path, file) in &self.files {
            for object in &file.objects {
                let key = object.key();
                if desired.contains_key(&key) {
                    tracing::warn!(file = %path.display(), object = %key, "object defined again in a later file; the first definition is used");
                    continue;
                }
                desired.insert(key, object.clone());
            }
        }
        let mut changes = Vec::new();
        for key in self.published.keys() {
            if !desired.contains_key(key) {
                changes.push(Change::Delete(key.clone()));
            }
        }
        for (key, object) in &desired {
            let unchanged = self
                .published
                .get(key)
                .is_some_and(|old| old.ptr_eq(object) || old == object);
            if !unchanged {
                changes.push(Change::Apply(object.clone()));
            }
        }
        self.published = desired;
        changes
    }

    /// Scans once, then again whenever the folder may have changed (see
    /// the `wake` module: on filesystem events, or every `poll` where there are
    /// none), on a thread of its own, sending the first full list (marked
    /// synced) and then each non-empty batch of changes, until the receiver
    /// is gone.
    pub fn spawn(
        mut self,
        updates: Sender<SourceUpdate>,
        poll: Duration,
    ) -> std::io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("manifests".to_owned())
            .spawn(move || {
                // Watch first: a change during the first scan is not missed.
                let mut waker = wake::Waker::new(&self.root, poll);
                let mut update = SourceUpdate {
                    changes: self.scan(),
                    synced: true,
                };
                loop {
                    if (update.synced || !update.changes.is_empty())
                        && updates.send(update).is_err()
                    {
                        return;
                    }
                    waker.wait();
                    update = SourceUpdate {
                        changes: self.scan(),
                        synced: false,
                    };
                    waker.recheck();
                }
            })
    }
}

/// Lists manifest files under `root`, recursively. Hidden entries (names
/// starting with `.`, such as editor swap files and the `..data` folders of
/// ConfigMap volumes) are skipped; symlinks to files are followed, symlinks
/// to folders are not (no loops).
fn list_files(root: &Path) -> std::io::Result<BTreeMap<PathBuf, Fingerprint>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if dir == root => return Err(error),
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot list folder");
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if is_manifest(&path)
                && let Ok(fingerprint) = Fingerprint::of(&path)
            {
                files.insert(path, fingerprint);
            }
        }
    }
    Ok(files)
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

enum ReadOutcome {
    Parsed(Vec<Object>),
    /// The file changed while it was read: try again at the next poll.
    Changing,
    Failed(FileError),
}

fn read_file(path: &Path, before: Fingerprint) -> ReadOutcome {
    if before.len > MAX_FILE_BYTES {
        return ReadOutcome::Failed(FileError::TooLarge);
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => return ReadOutcome::Failed(error.into()),
    };
    if Fingerprint::of(path).ok() != Some(before) || bytes.len() as u64 != before.len {
        return ReadOutcome::Changing;
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return ReadOutcome::Failed(FileError::NotText);
    };
    let json = path.extension().and_then(|e| e.to_str()) == Some("json");
    match documents::parse(&text, json) {
        Ok(parsed) => ReadOutcome::Parsed(objects_of(path, parsed)),
        Err(error) => ReadOutcome::Failed(error),
    }
}

/// Logs what a file's documents skipped and returns its objects.
fn objects_of(path: &Path, parsed: documents::Parsed) -> Vec<Object> {
    for skipped in &parsed.skipped {
        match skipped {
            Skipped::NotObject => {
                tracing::warn!(file = %path.display(), "document is not an object; skipped");
            }
            Skipped::Invalid(error) => {
                tracing::warn!(file = %path.display(), %error, "object skipped");
            }
        }
    }
    parsed.objects
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        // Write then rename, as a careful writer does.
        let tmp = dir.join(format!(".{}.tmp", name.replace('/', "_")));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    fn service(name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: 80\n"
        )
    }

    fn summary(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Apply(o) => format!("apply {}", o.key()),
                Change::Delete(k) => format!("delete {k}"),
            })
            .collect()
    }

    #[test]
    fn reads_multi_document_yaml_json_lists_and_subfolders() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.yaml",
            &format!("{}---\n{}\n---\n", service("one"), service("two")),
        );
        write(
            dir.path(),
            "sub/b.json",
            r#"{"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "x"}}]}"#,
        );
        write(dir.path(), "ignored.txt", &service("ignored"));
        write(
            dir.path(),
            "deploy.yml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n",
        );
        let mut source = ManifestDir::new(dir.path());
        let changes = source.scan();
        assert_eq!(
            summary(&changes),
            [
                "apply Service default/one",
                "apply Service default/two",
                "apply ConfigMap x/cm"
            ]
        );
        assert!(source.scan().is_empty(), "unchanged files are not re-read");
        let Change::Apply(object) = &changes[0] else {
            panic!()
        };
        assert!(object.metadata().creation_timestamp.is_some());
    }

    #[test]
    fn changes_and_deletes_are_reported_and_timestamps_are_stable() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", &service("one"));
        let mut source = ManifestDir::new(dir.path());
        let Change::Apply(first) = source.scan().remove(0) else {
            panic!()
        };
        write(
            dir.path(),
            "a.yaml",
            &format!("{}  - port: 81\n", service("one")),
        );
        let changes = source.scan();
        assert_eq!(summary(&changes), ["apply Service default/one"]);
        let Change::Apply(second) = &changes[0] else {
            panic!()
        };
        assert_eq!(
            first.metadata().creation_timestamp,
            second.metadata().creation_timestamp
        );
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        assert_eq!(summary(&source.scan()), ["delete Service default/one"]);
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_objects_and_others_serve() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", &service("one"));
        write(dir.path(), "b.yaml", "key: [unclosed\n");
        let mut source = ManifestDir::new(dir.path());
        assert_eq!(summary(&source.scan()), ["apply Service default/one"]);
        write(
            dir.path(),
            "a.yaml",
            "kind: Service\n  bad: indentation\n:::\n",
        );
        assert!(source.scan().is_empty(), "last good version kept");
        write(dir.path(), "a.yaml", &service("renamed"));
        assert_eq!(
            summary(&source.scan()),
            [
                "delete Service default/one",
                "apply Service default/renamed"
            ]
        );
    }

    #[test]
    fn a_bad_object_is_skipped_and_its_neighbours_kept() {
        let dir = tempfile::tempdir().unwrap();
        let bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports: 7\n";
        write(
            dir.path(),
            "a.yaml",
            &format!("{bad}---\n{}", service("good")),
        );
        let mut source = ManifestDir::new(dir.path());
        assert_eq!(summary(&source.scan()), ["apply Service default/good"]);
    }

    #[test]
    fn events_wake_the_source_without_polling() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", &service("one"));
        let (tx, rx) = std::sync::mpsc::channel();
        // An hour between polls: only an event can bring the change.
        ManifestDir::new(dir.path())
            .spawn(tx, Duration::from_secs(3600))
            .unwrap();
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(first.synced);
        assert_eq!(summary(&first.changes), ["apply Service default/one"]);
        write(dir.path(), "sub/b.yaml", &service("two"));
        let next = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(summary(&next.changes), ["apply Service default/two"]);
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        let next = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(summary(&next.changes), ["delete Service default/one"]);
    }

    #[test]
    fn a_changed_list_keeps_the_unchanged_objects_it_published() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.yaml",
            &format!("{}---\n{}", service("one"), service("two")),
        );
        let mut source = ManifestDir::new(dir.path());
        let Change::Apply(one) = source.scan().remove(0) else {
            panic!()
        };
        write(
            dir.path(),
            "a.yaml",
            &format!("{}---\n{}  - port: 81\n", service("one"), service("two")),
        );
        assert_eq!(summary(&source.scan()), ["apply Service default/two"]);
        let held = &source.files.values().next().unwrap().objects[0];
        assert!(
            held.ptr_eq(&one),
            "the unchanged object is shared, not held twice"
        );
    }

    #[test]
    fn first_file_wins_a_duplicate_and_a_missing_folder_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", &service("dup"));
        write(
            dir.path(),
            "b.yaml",
            &format!("{}  - port: 99\n", service("dup")),
        );
        let mut source = ManifestDir::new(dir.path());
        let changes = source.scan();
        assert_eq!(changes.len(), 1);
        let Change::Apply(Object::Service(svc)) = &changes[0] else {
            panic!()
        };
        assert_eq!(svc.spec.as_ref().unwrap().ports.as_ref().unwrap().len(), 1);
        let gone = ManifestDir::new(dir.path().join("missing")).scan();
        assert!(gone.is_empty());
    }
}
