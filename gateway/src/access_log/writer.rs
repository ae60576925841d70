//! The writer thread: takes the workers' buffers whole and writes them to
//! where the ConfigMap says (stdout, a file, or syslog over UDP), so a
//! request never waits on a write. It follows the target the current
//! table names, reopens a file on SIGUSR1 (nginx's `reopen`) or when the
//! path stops naming the file it has open (a rotation), and drops and
//! counts the lines it cannot write.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::Target;
use super::buffer::Buffers;
use super::syslog::Syslog;

/// How long lines gather while they keep coming.
pub(crate) const GATHER: Duration = Duration::from_millis(10);

/// How long the writer sleeps when nothing comes (a line wakes it).
const IDLE: Duration = Duration::from_secs(1);

/// How often an open file's path is checked for a rotation, and a target
/// that failed to open is tried again.
const RECHECK: Duration = Duration::from_secs(1);

/// What the request side tells the writer.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Write what is buffered and stop.
    pub(crate) stop: AtomicBool,
    /// Reopen the file (SIGUSR1).
    pub(crate) reopen: AtomicBool,
}

/// Where the writer writes now.
enum Sink {
    Stdout(io::Stdout),
    Stderr(io::Stderr),
    File {
        path: PathBuf,
        file: File,
        inode: u64,
    },
    Syslog(Syslog),
    /// The target could not be opened: its lines are dropped and counted
    /// until it can.
    Closed,
}

impl Sink {
    fn open(target: &Target) -> Sink {
        let opened = match target {
            Target::Stdout => return Sink::Stdout(io::stdout()),
            Target::Stderr => return Sink::Stderr(io::stderr()),
            Target::File(path) => open_file(path),
            Target::Syslog { host, port } => Syslog::connect(host, *port).map(Sink::Syslog),
        };
        opened.unwrap_or_else(|error| {
            tracing::warn!(?target, %error, "cannot open the access log target; lines are dropped until it can be");
            Sink::Closed
        })
    }

    /// Writes one batch of whole lines; the lines lost on failure.
    fn write(&mut self, batch: &[u8]) -> Result<(), io::Error> {
        match self {
            Sink::Stdout(out) => out.lock().write_all(batch),
            Sink::Stderr(out) => out.lock().write_all(batch),
            Sink::File { file, .. } => file.write_all(batch),
            Sink::Syslog(syslog) => syslog.send_lines(batch, SystemTime::now()),
            Sink::Closed => Err(io::Error::other("not open")),
        }
    }

    fn flush(&mut self) {
        let _ = match self {
            Sink::Stdout(out) => out.flush(),
            Sink::Stderr(out) => out.flush(),
            _ => Ok(()),
        };
    }

    /// Whether a file's path now names another file (or none).
    fn rotated(&self) -> bool {
        match self {
            Sink::File { path, inode, .. } => {
                std::fs::metadata(path).map_or(true, |meta| meta.ino() != *inode)
            }
            Sink::Closed => true,
            _ => false,
        }
    }
}

fn open_file(path: &Path) -> io::Result<Sink> {
    let file = File::options().create(true).append(true).open(path)?;
    let inode = file.metadata()?.ino();
    Ok(Sink::File {
        path: path.to_owned(),
        file,
        inode,
    })
}

/// The writer loop; returns when `control.stop` is set, after writing what
/// was buffered. `target` names where lines go now.
pub(crate) fn run(
    buffers: &Buffers,
    control: &Control,
    target: &(dyn Fn() -> Target + Send + Sync),
) {
    buffers.set_writer();
    let mut current = target();
    let mut sink = Sink::open(&current);
    let mut checked = Instant::now();
    let mut spare = Vec::new();
    let mut warned: Option<Instant> = None;
    loop {
        let stopping = control.stop.load(Ordering::SeqCst);
        let wanted = target();
        let reopen = control.reopen.swap(false, Ordering::SeqCst);
        let recheck = checked.elapsed() >= RECHECK;
        if wanted != current || reopen || (recheck && sink.rotated()) {
            sink.flush();
            sink = Sink::open(&wanted);
            current = wanted;
        }
        if recheck {
            checked = Instant::now();
        }
        let taken = buffers.drain(&mut spare, |batch| {
            if let Err(error) = sink.write(batch) {
                let lines = batch.iter().filter(|b| **b == b'\n').count() as u64;
                buffers.count_dropped(lines);
                if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    warned = Some(Instant::now());
                    tracing::warn!(%error, lines, "access log lines could not be written");
                }
            }
        });
        if taken > 0 {
            sink.flush();
        }
        if stopping {
            sink.flush();
            return;
        }
        if taken > 0 {
            std::thread::park_timeout(GATHER);
        } else if buffers.go_idle() {
            std::thread::park_timeout(IDLE);
            buffers.wake_up();
        }
    }
}

/// Starts the writer thread.
pub(crate) fn spawn(
    buffers: Arc<Buffers>,
    control: Arc<Control>,
    target: Box<dyn Fn() -> Target + Send + Sync>,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("access-log".to_owned())
        .spawn(move || run(&buffers, &control, &*target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn writes_to_a_file_follows_its_rotation_and_stops_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let buffers = Arc::new(Buffers::new(1 << 20));
        let control = Arc::new(Control::default());
        let target = Target::File(path.clone());
        let handle = spawn(
            buffers.clone(),
            control.clone(),
            Box::new(move || target.clone()),
        )
        .unwrap();
        let lines = |path: &Path| {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let wait_for = |path: &Path, want: &[&str]| {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let got = lines(path);
                if got == want {
                    return;
                }
                assert!(Instant::now() < deadline, "{got:?} want {want:?}");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        buffers.append(|out| out.extend_from_slice(b"one"));
        wait_for(&path, &["one"]);
        // Rotated away: the next lines go to a new file at the path.
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        control.reopen.store(true, Ordering::SeqCst);
        buffers.wake();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !path.exists() {
            assert!(Instant::now() < deadline, "not reopened");
            std::thread::sleep(Duration::from_millis(5));
        }
        buffers.append(|out| out.extend_from_slice(b"two"));
        wait_for(&path, &["two"]);
        assert_eq!(lines(&rotated), ["one"]);
        buffers.append(|out| out.extend_from_slice(b"three"));
        control.stop.store(true, Ordering::SeqCst);
        buffers.wake();
        handle.join().unwrap();
        assert_eq!(lines(&path), ["two", "three"], "written before stopping");
    }

    #[test]
    fn the_target_follows_the_table_and_unwritable_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.log");
        let target = Arc::new(Mutex::new(Target::File(
            dir.path().join("missing/dir/a.log"),
        )));
        let buffers = Arc::new(Buffers::new(1 << 20));
        let control = Arc::new(Control::default());
        let current = target.clone();
        let handle = spawn(
            buffers.clone(),
            control.clone(),
            Box::new(move || current.lock().unwrap().clone()),
        )
        .unwrap();
        buffers.append(|out| out.extend_from_slice(b"lost"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while buffers.dropped() == 0 {
            assert!(Instant::now() < deadline, "not counted");
            std::thread::sleep(Duration::from_millis(5));
        }
        *target.lock().unwrap() = Target::File(good.clone());
        buffers.append(|out| out.extend_from_slice(b"kept"));
        control.stop.store(true, Ordering::SeqCst);
        buffers.wake();
        handle.join().unwrap();
        assert_eq!(std::fs::read_to_string(&good).unwrap(), "kept\n");
        assert_eq!(buffers.dropped(), 1);
    }
}
