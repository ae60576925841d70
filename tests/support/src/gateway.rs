//! A harness around one `edge-gateway` process.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client;
use crate::wait::POLL_INTERVAL;

/// How long [`Gateway::start`] waits for both listening lines.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Gateway::wait_ready`] waits for `/healthz` to answer 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

type Buffer = Arc<Mutex<Vec<u8>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running `edge-gateway` process serving a manifests folder.
///
/// Started with `--manifests DIR --bind-address 127.0.0.1 --http-port 0
/// --metrics-port 0 --post-shutdown-grace-period 0` plus extra arguments; the addresses come from its
/// `listening http|https|metrics ADDR` stdout lines. Its stderr (the logs) is
/// captured. The process is killed when the harness is dropped; if the test
/// is panicking at that moment, the captured logs are printed (the test
/// harness shows them with the failure).
pub struct Gateway {
    child: Mutex<Child>,
    pid: u32,
    http_addr: SocketAddr,
    https_addr: SocketAddr,
    metrics_addr: SocketAddr,
    stdout: Buffer,
    stderr: Buffer,
}

impl Gateway {
    /// Starts `binary` (pass `env!("CARGO_BIN_EXE_edge-gateway")`) on
    /// `manifests_dir`, appending `extra_args`, and waits (asynchronously, up
    /// to [`START_TIMEOUT`]) until both listeners are bound. It does not wait
    /// for readiness: see [`Gateway::wait_ready`].
    ///
    /// Panics, showing the collected stderr, if the process fails to start,
    /// exits, or does not print both listening lines in time.
    pub async fn start(
        binary: impl AsRef<Path>,
        manifests_dir: impl AsRef<Path>,
        extra_args: &[&str],
    ) -> Gateway {
        Gateway::start_with_env(binary, manifests_dir, extra_args, &[]).await
    }

    /// Like [`Gateway::start`] with extra environment variables for the
    /// process (e.g. `("RUST_LOG", "debug")`).
    pub async fn start_with_env(
        binary: impl AsRef<Path>,
        manifests_dir: impl AsRef<Path>,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let source = [
            OsStr::new("--manifests"),
            manifests_dir.as_ref().as_os_str(),
        ];
        Gateway::spawn(binary.as_ref(), &source, extra_args, env).await
    }

    /// Starts `binary` on the Kubernetes API described by `kubeconfig`
    /// (for example the fake API server's), with `extra_args` and `env`.
    pub async fn start_with_kubeconfig(
        binary: impl AsRef<Path>,
        kubeconfig: impl AsRef<Path>,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let source = [OsStr::new("--kubeconfig"), kubeconfig.as_ref().as_os_str()];
        Gateway::spawn(binary.as_ref(), &source, extra_args, env).await
    }

    async fn spawn(
        binary: &Path,
        source: &[&OsStr],
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let mut command = Command::new(binary);
        command
            .args(source)
            .args([
                "--bind-address",
                "127.0.0.1",
                "--http-port",
                "0",
                "--https-port",
                "0",
                "--metrics-port",
                "0",
                // ingress-nginx's default is 10 s; tests stop at once.
                "--post-shutdown-grace-period",
                "0",
            ])
            .args(extra_args)
            .envs(env.iter().map(|(k, v)| (OsStr::new(k), OsStr::new(v))))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let pid = child.id();

        let stderr: Buffer = Arc::default();
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr_thread = {
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || drain_bytes(stderr_pipe, &stderr))
        };

        let stdout: Buffer = Arc::default();
        let stdout_pipe = child.stdout.take().expect("piped stdout");
        let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
        {
            let stdout = Arc::clone(&stdout);
            std::thread::spawn(move || drain_lines(stdout_pipe, &stdout, &lines_tx));
        }

        let deadline = Instant::now() + START_TIMEOUT;
        let mut http_addr = None;
        let mut https_addr = None;
        let mut metrics_addr = None;
        let failure = loop {
            if let (Some(http), Some(https), Some(metrics)) = (http_addr, https_addr, metrics_addr)
            {
                return Gateway {
                    child: Mutex::new(child),
                    pid,
                    http_addr: http,
                    https_addr: https,
                    metrics_addr: metrics,
                    stdout,
                    stderr,
                };
            }
            match tokio::time::timeout_at(deadline, lines_rx.recv()).await {
                Ok(Some(line)) => {
                    let line = line.trim();
                    if let Some(addr) = line.strip_prefix("listening http ") {
                        http_addr = Some(parse_addr(addr, line));
                    } else if let Some(addr) = line.strip_prefix("listening https ") {
                        https_addr = Some(parse_addr(addr, line));
                    } else if let Some(addr) = line.strip_prefix("listening metrics ") {
                        metrics_addr = Some(parse_addr(addr, line));
                    }
                }
                Ok(None) => {
                    break "closed its stdout (exited?) before printing both listening lines"
                        .to_owned();
                }
                Err(_) => {
                    break format!("did not print both listening lines within {START_TIMEOUT:?}");
                }
            }
        };

        // Failed: stop the process, let the stderr reader reach EOF, report.
        let _ = child.kill();
        let status = child.wait();
        let drained = Instant::now() + Duration::from_secs(2);
        while !stderr_thread.is_finished() && Instant::now() < drained {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        panic!(
            "edge-gateway {failure}; exit status: {status:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&lock(&stdout)),
            String::from_utf8_lossy(&lock(&stderr)),
        );
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The address of the HTTP (proxy) listener.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The HTTPS listener's address.
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The address of the metrics/health listener.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The address of a listener announced on stdout as `listening WHAT
    /// ADDR` (`webhook` is announced before the others, so it is known
    /// once [`Gateway::start`] returns).
    pub fn listening(&self, what: &str) -> Option<SocketAddr> {
        let prefix = format!("listening {what} ");
        self.stdout().lines().find_map(|line| {
            line.trim()
                .strip_prefix(&prefix)
                .map(|a| parse_addr(a, line))
        })
    }

    /// Everything the process wrote to stderr so far (its logs).
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stderr)).into_owned()
    }

    /// How many times `substring` occurs in [`Gateway::logs`].
    pub fn log_count(&self, substring: &str) -> usize {
        self.logs().matches(substring).count()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stdout)).into_owned()
    }

    /// Waits until the logs contain `substring`.
    ///
    /// Panics, showing the logs, if they do not within `deadline`.
    pub async fn wait_for_log(&self, substring: &str, deadline: Duration) {
        let end = Instant::now() + deadline;
        loop {
            if self.logs().contains(substring) {
                return;
            }
            if Instant::now() >= end {
                panic!(
                    "the gateway logs did not contain {substring:?} within {deadline:?}\n--- stderr ---\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Polls `GET /healthz` on the metrics address until it answers 200.
    ///
    /// Panics, showing the logs, if the process exits or after
    /// [`READY_TIMEOUT`].
    pub async fn wait_ready(&self) {
        let end = Instant::now() + READY_TIMEOUT;
        let host = self.metrics_addr.to_string();
        loop {
            if let Some(status) = self.exit_status() {
                panic!(
                    "the gateway exited ({status}) before becoming ready\n--- stderr ---\n{}",
                    self.logs()
                );
            }
            let attempt = tokio::time::timeout_at(
                end.max(Instant::now() + Duration::from_millis(100)),
                client::try_request(self.metrics_addr, "GET", &host, "/healthz", &[], Vec::new()),
            )
            .await;
            let last = match attempt {
                Ok(Ok(response)) if response.status == 200 => return,
                Ok(Ok(response)) => format!("status {}: {}", response.status, response.text()),
                Ok(Err(error)) => error,
                Err(_) => "request timed out".to_owned(),
            };
            if Instant::now() >= end {
                panic!(
                    "the gateway was not ready within {READY_TIMEOUT:?}; last /healthz: {last}\n--- stderr ---\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Sends signal `sig` (a name such as `"TERM"`, `"SIGTERM"`, `"HUP"`)
    /// with `kill(1)`.
    ///
    /// Panics if the process has already been reaped or `kill` fails.
    pub fn signal(&self, sig: &str) {
        if let Some(status) = self.exit_status() {
            panic!("cannot send {sig} to the gateway: it already exited ({status})");
        }
        let name = sig.trim_start_matches('-');
        let name = name.strip_prefix("SIG").unwrap_or(name);
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap_or_else(|error| panic!("cannot run kill: {error}"));
        assert!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.pid
        );
    }

    /// The exit status if the process has exited, without blocking.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    /// Waits (polling) up to `deadline` for the process to exit; `None` if it
    /// is still running then.
    pub async fn wait_exit(&self, deadline: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Kills the process (if still running) and reaps it. Idempotent; also
    /// done on drop.
    pub fn stop(&self) {
        let mut child = lock(&self.child);
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "--- edge-gateway (pid {}) stderr ---\n{}--- end of edge-gateway stderr ---",
                    self.pid,
                    self.logs()
                );
            }
        }
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("pid", &self.pid)
            .field("http_addr", &self.http_addr)
            .field("https_addr", &self.https_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

fn parse_addr(addr: &str, line: &str) -> SocketAddr {
    addr.trim()
        .parse()
        .unwrap_or_else(|error| panic!("bad address in gateway output {line:?}: {error}"))
}

/// Copies `pipe` into `buffer` until EOF.
fn drain_bytes(mut pipe: impl Read, buffer: &Mutex<Vec<u8>>) {
    let mut chunk = [0_u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => lock(buffer).extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Copies `pipe` into `buffer` until EOF and sends each line to `lines`
/// (while anyone listens).
fn drain_lines(pipe: impl Read, buffer: &Mutex<Vec<u8>>, lines: &mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                lock(buffer).extend_from_slice(&line);
                let _ = lines.send(String::from_utf8_lossy(&line).into_owned());
            }
        }
    }
}
