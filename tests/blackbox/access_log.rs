//! The access log as the ConfigMap shapes it: `log-format-upstream` with
//! its escape keys compared with the lines Debian's nginx writes for the
//! same requests and `log_format`; a file target reopened on SIGUSR1;
//! syslog over UDP; `skip-access-log-urls`, the default backend,
//! `disable-access-log`; an unknown variable refused by name.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::{EchoBackend, Gateway, IngressBuilder, eventually, free_port, get, raw};

use crate::config_map::config_map;
use crate::{Setup, service_for};

const CONFIGMAP: &[&str] = &["--configmap", "ingress-nginx/ingress-nginx-controller"];
const SHOWS: Duration = Duration::from_secs(10);

/// A log format whose every value is the same for nginx and the gateway
/// when both get the same request bytes.
const FORMAT: &str = r#"$remote_addr - $remote_user "$request" $status "$http_referer" "$http_user_agent" $request_method $uri $is_args $args q=$arg_q c=$cookie_c "$http_x_note" $server_protocol $scheme $host $proxy_protocol_addr"#;

/// The requests both get: escapes (quote, backslash, tab, a byte above
/// 0x7E) in headers, the query and a cookie, Basic credentials. (No header
/// is repeated: nginx joins repeated `$http_*` values with ", " since 1.23,
/// as ingress-nginx's nginx and the gateway do, and Debian 12's is 1.22.)
const REQUESTS: &[&[u8]] = &[
    b"GET /p/a%20b?q=%22x%22&z=1 HTTP/1.1\r\nHost: cmp.test\r\nUser-Agent: a\"b\\c\td\xe9\r\nReferer: http://r.test/?x=\"y\"\r\nCookie: c=v1; d=2\r\nX-Note: one\r\nAuthorization: Basic dXNlcjpwdw==\r\nConnection: close\r\n\r\n",
    b"GET /plain HTTP/1.1\r\nHost: cmp.test\r\nConnection: close\r\n\r\n",
];

/// The gateway with an echo backend for `cmp.test` and the ConfigMap
/// `settings`.
async fn gateway(ip: [u8; 4], settings: &[(&str, &str)]) -> (Setup, EchoBackend) {
    let backend = EchoBackend::start(ip).await;
    let mut docs = service_for("alog", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("alog", "app")
            .class("nginx")
            .host("cmp.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(config_map(settings));
    (Setup::start_with(&docs, CONFIGMAP).await, backend)
}

/// The access log lines on the gateway's stdout.
fn stdout_lines(gateway: &Gateway) -> Vec<String> {
    gateway
        .stdout()
        .lines()
        .filter(|l| !l.starts_with("listening "))
        .map(str::to_owned)
        .collect()
}

/// Waits until `read` gives at least `count` lines.
async fn lines(count: usize, read: impl Fn() -> Vec<String>) -> Vec<String> {
    eventually(SHOWS, || {
        let lines = read();
        async move {
            if lines.len() >= count {
                Ok(lines)
            } else {
                Err(format!("{} lines, want {count}: {lines:?}", lines.len()))
            }
        }
    })
    .await
}

/// The lines of the file at `path` (bytes that are not UTF-8 shown as
/// U+FFFD: nginx's JSON escaping writes bytes above 0x7F as they came).
fn file_lines(path: &Path) -> Vec<String> {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default())
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Debian's nginx, answering 200 on every path, writing `FORMAT` with
/// the default escaping to `default.log` and with `escape=json` to
/// `json.log`; killed when dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Nginx {
    async fn start() -> Nginx {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let addr = SocketAddr::from(([127, 0, 95, 9], free_port([127, 0, 95, 9])));
        let p = dir.path().display();
        let format = FORMAT.replace('\\', "\\\\").replace('\'', "\\'");
        let config = format!(
            "pid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{}}\nhttp {{\n  client_body_temp_path {p};\n  proxy_temp_path {p};\n  fastcgi_temp_path {p};\n  uwsgi_temp_path {p};\n  scgi_temp_path {p};\n  log_format plain '{format}';\n  log_format json escape=json '{format}';\n  access_log {p}/default.log plain;\n  access_log {p}/json.log json;\n  server {{\n    listen {addr};\n    location / {{ return 200 \"ok\"; }}\n  }}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx can run (Debian package nginx)");
        let nginx = Nginx { child, dir, addr };
        eventually(SHOWS, || async move {
            tokio::net::TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(|e| format!("nginx not listening on {addr}: {e}"))
        })
        .await;
        nginx
    }

    fn log(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn lines_match_what_nginx_writes_for_the_same_log_format() {
    let nginx = Nginx::start().await;
    let (plain, _b1) = gateway([127, 0, 95, 1], &[("log-format-upstream", FORMAT)]).await;
    let (json, _b2) = gateway(
        [127, 0, 95, 2],
        &[
            ("log-format-upstream", FORMAT),
            ("log-format-escape-json", "true"),
        ],
    )
    .await;
    for request in REQUESTS {
        for addr in [nginx.addr, plain.http(), json.http()] {
            let response = raw(addr, request).await;
            assert!(
                response.starts_with(b"HTTP/1.1 200"),
                "{addr}: {}",
                String::from_utf8_lossy(&response)
            );
        }
    }
    let n = REQUESTS.len();
    let expected = lines(n, || file_lines(&nginx.log("default.log"))).await;
    let expected_json = lines(n, || file_lines(&nginx.log("json.log"))).await;
    assert_eq!(lines(n, || stdout_lines(&plain.gateway)).await, expected);
    assert_eq!(
        lines(n, || stdout_lines(&json.gateway)).await,
        expected_json
    );
    // The comparison is not vacuous: nginx escaped what it had to.
    assert!(
        expected[0].contains(r#""a\x22b\x5Cc\x09d\xE9""#),
        "{expected:?}"
    );
    assert!(
        expected_json[0].contains(r#""a\"b\\c\td"#),
        "{expected_json:?}"
    );
}

#[tokio::test]
async fn a_file_target_is_reopened_on_usr1_and_filters_apply() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("access.log");
    let format = r#"{"uri":"$request_uri","status":$status,"upstream":"$proxy_upstream_name","ns":"$namespace","ua":"$http_user_agent"}"#;
    let (s, _backend) = gateway(
        [127, 0, 95, 3],
        &[
            ("log-format-upstream", format),
            ("log-format-escape-json", "true"),
            ("http-access-log-path", path.to_str().expect("a UTF-8 path")),
            ("skip-access-log-urls", "/skip,~^/hidden/"),
            ("enable-access-log-for-default-backend", "true"),
        ],
    )
    .await;
    for (host, path) in [
        ("cmp.test", "/skip"),
        ("cmp.test", "/hidden/1"),
        ("cmp.test", "/a?x=1"),
        ("nowhere.test", "/b"),
    ] {
        get(s.http(), host, path).await;
    }
    let logged = lines(2, || file_lines(&path)).await;
    let values: Vec<serde_json::Value> = logged
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(values.len(), 2, "skipped URLs are not logged: {logged:?}");
    assert_eq!(values[0]["uri"], "/a?x=1");
    assert_eq!(values[0]["upstream"], "alog-svc-80");
    assert_eq!(values[0]["ns"], "alog");
    assert_eq!(values[1]["uri"], "/b");
    assert_eq!(values[1]["status"], 404);
    assert_eq!(values[1]["upstream"], "upstream-default-backend");
    assert!(stdout_lines(&s.gateway).is_empty());

    // logrotate: the file is renamed, then nginx is told to reopen.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).expect("rotate");
    s.gateway.signal("USR1");
    eventually(SHOWS, || async {
        get(s.http(), "cmp.test", "/after").await;
        if file_lines(&path).iter().any(|l| l.contains("/after")) {
            Ok(())
        } else {
            Err(format!(
                "no /after line in the new file: {:?}",
                file_lines(&path)
            ))
        }
    })
    .await;
    // The rotated file keeps its lines; until the signal is handled a
    // line or two of /after may still land in it, as with nginx.
    let kept = file_lines(&rotated);
    assert_eq!(kept[..2], logged[..], "{kept:?}");
    assert!(kept[2..].iter().all(|l| l.contains("/after")), "{kept:?}");
}

#[tokio::test]
async fn syslog_gets_the_default_format_when_a_variable_is_unknown() {
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    receiver
        .set_read_timeout(Some(SHOWS))
        .expect("read timeout");
    let port = receiver.local_addr().expect("address").port().to_string();
    let (s, _backend) = gateway(
        [127, 0, 95, 4],
        &[
            ("log-format-upstream", "$remote_addr $no_such_variable"),
            ("enable-syslog", "true"),
            ("syslog-host", "127.0.0.1"),
            ("syslog-port", &port),
        ],
    )
    .await;
    assert!(
        s.gateway.logs().contains("no_such_variable"),
        "the diagnostic names the variable: {}",
        s.gateway.logs()
    );
    get(s.http(), "cmp.test", "/via-syslog").await;
    let mut datagram = [0u8; 4096];
    let n = receiver.recv(&mut datagram).expect("a syslog datagram");
    let message = String::from_utf8_lossy(&datagram[..n]).into_owned();
    assert!(message.starts_with("<190>"), "{message}");
    let (_, line) = message
        .split_once(" nginx: ")
        .unwrap_or_else(|| panic!("{message}"));
    // upstreaminfo applies.
    assert!(
        line.starts_with("127.0.0.1 - - [") && line.contains("\"GET /via-syslog HTTP/1.1\" 200 "),
        "{line}"
    );
    assert!(line.contains(" [alog-svc-80] [] "), "{line}");
    assert!(stdout_lines(&s.gateway).is_empty());
}

#[tokio::test]
async fn disable_access_log_silences_every_ingress() {
    let (s, _backend) = gateway([127, 0, 95, 5], &[("disable-access-log", "true")]).await;
    let (on, _b) = gateway([127, 0, 95, 6], &[]).await;
    for setup in [&s, &on] {
        assert_eq!(get(setup.http(), "cmp.test", "/x").await.status, 200);
    }
    // The same request on the other gateway is written: by then, this
    // one's would have been too (both write at once when idle).
    lines(1, || stdout_lines(&on.gateway)).await;
    get(on.http(), "cmp.test", "/y").await;
    lines(2, || stdout_lines(&on.gateway)).await;
    assert!(
        stdout_lines(&s.gateway).is_empty(),
        "{:?}",
        stdout_lines(&s.gateway)
    );
}
