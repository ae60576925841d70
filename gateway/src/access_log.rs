//! The access log: one line per request on stdout, as ingress-nginx writes
//! it (JSON, or its `upstreaminfo` text format), formatted and written on a
//! thread of its own. The request path only hands over a record through a
//! channel bounded in records ([`QUEUE`]) and in bytes ([`QUEUE_BYTES`])
//! and never waits: when the writer falls behind, records are dropped and
//! counted (`edge_gateway_access_log_dropped_lines_total`) rather than
//! slowing requests down or growing memory.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use http::header::HeaderValue;
use http::{Method, Uri, Version};

/// Records buffered between the request path and the writer.
pub const QUEUE: usize = 16_384;

/// Bytes of records buffered at most, counting what a record carries from
/// the request (target, Host, Referer, User-Agent, request id) plus a
/// fixed part: long headers cannot make the queue hold hundreds of MiB.
pub const QUEUE_BYTES: usize = 16 << 20;

/// What a record counts for in [`QUEUE_BYTES`] besides its variable parts.
const ENTRY_BYTES: usize = 256;

/// How long the writer lets records gather while they keep coming.
const GATHER: Duration = Duration::from_millis(10);

/// The line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// ingress-nginx's `upstreaminfo` text format.
    Text,
}

/// What one finished request leaves in the log.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) time: SystemTime,
    pub(crate) client: SocketAddr,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) status: u16,
    pub(crate) body_bytes: u64,
    pub(crate) request_bytes: u64,
    pub(crate) request_time: Duration,
    pub(crate) referer: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) namespace: Option<Arc<str>>,
    pub(crate) ingress: Option<Arc<str>>,
    pub(crate) service: Option<Arc<str>>,
    /// ingress-nginx's `$proxy_upstream_name`.
    pub(crate) upstream_name: Option<Box<str>>,
    /// ingress-nginx's `$proxy_alternative_upstream_name`: the canary's
    /// upstream when the canary served the request.
    pub(crate) alternative_upstream_name: Option<Arc<str>>,
    pub(crate) upstream_addr: Option<SocketAddr>,
    pub(crate) upstream_status: Option<u16>,
    pub(crate) upstream_response_time: Option<Duration>,
}

impl Entry {
    /// What the record counts for in [`QUEUE_BYTES`].
    fn weight(&self) -> usize {
        let value = |v: &Option<HeaderValue>| v.as_ref().map_or(0, HeaderValue::len);
        ENTRY_BYTES
            + self.uri.path_and_query().map_or(0, |pq| pq.as_str().len())
            + value(&self.host)
            + value(&self.referer)
            + value(&self.user_agent)
            + value(&self.request_id)
    }
}

/// The log writer's handle.
#[derive(Debug)]
pub struct AccessLog {
    sender: SyncSender<Entry>,
    dropped: AtomicU64,
    /// The weight of the records queued (see [`QUEUE_BYTES`]).
    queued: Arc<AtomicUsize>,
}

impl AccessLog {
    /// Starts the writer thread, writing to stdout.
    pub fn start(format: AccessLogFormat) -> io::Result<Arc<AccessLog>> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let writer_queued = queued.clone();
        std::thread::Builder::new()
            .name("access-log".to_owned())
            .spawn(move || write_loop(&receiver, format, &mut io::stdout(), &writer_queued))?;
        Ok(Arc::new(AccessLog {
            sender,
            dropped: AtomicU64::new(0),
            queued,
        }))
    }

    /// Hands a record to the writer, or drops it if the writer is behind
    /// (the queue is full in records or in bytes).
    pub(crate) fn log(&self, entry: Entry) {
        let weight = entry.weight();
        let before = self.queued.fetch_add(weight, Ordering::Relaxed);
        let sent = before + weight <= QUEUE_BYTES
            && !matches!(
                self.sender.try_send(entry),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
            );
        if !sent {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Writes records as they come, flushing whenever the queue runs dry, so
/// lines appear promptly without a syscall each under load. While records
/// keep coming, the writer drains the queue every [`GATHER`] instead of
/// waiting on it: a waiting writer must be woken by the request path, a
/// futex call and a context switch for every record.
fn write_loop(
    receiver: &Receiver<Entry>,
    format: AccessLogFormat,
    out: &mut dyn Write,
    queued: &AtomicUsize,
) {
    let mut buffer = io::BufWriter::with_capacity(64 * 1024, out);
    let mut line = String::with_capacity(512);
    let mut write = |entry: &Entry, buffer: &mut io::BufWriter<&mut dyn Write>| {
        queued.fetch_sub(entry.weight(), Ordering::Relaxed);
        line.clear();
        match format {
            AccessLogFormat::Json => json_line(entry, &mut line),
            AccessLogFormat::Text => text_line(entry, &mut line),
        }
        line.push('\n');
        buffer.write_all(line.as_bytes())
    };
    loop {
        let first = match receiver.recv_timeout(Duration::from_millis(100)) {
            Ok(entry) => entry,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if write(&first, &mut buffer).is_err() {
            return;
        }
        // Take what else is queued, let it all out in one write, and while
        // more keeps coming, let it gather before the next round.
        loop {
            let mut taken = 0_usize;
            while let Ok(more) = receiver.try_recv() {
                if write(&more, &mut buffer).is_err() {
                    return;
                }
                taken += 1;
            }
            if buffer.flush().is_err() {
                return;
            }
            if taken == 0 {
                break;
            }
            std::thread::sleep(GATHER);
        }
    }
    let _ = buffer.flush();
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.3}", d.as_secs_f64()))
}

fn header(value: Option<&HeaderValue>) -> &str {
    value.and_then(|v| v.to_str().ok()).unwrap_or("-")
}

/// `$remote_addr - $remote_user [$time_local] "$request" $status
/// $body_bytes_sent "$http_referer" "$http_user_agent" $request_length
/// $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name]
/// $upstream_addr $upstream_response_length $upstream_response_time
/// $upstream_status $req_id`
fn text_line(e: &Entry, out: &mut String) {
    let time = jiff::Timestamp::try_from(e.time)
        .map(|t| t.strftime("%d/%b/%Y:%H:%M:%S %z").to_string())
        .unwrap_or_default();
    let target = e.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let _ = write!(
        out,
        "{} - - [{}] \"{} {} {:?}\" {} {} \"{}\" \"{}\" {} {} [{}] [{}] {} - {} {} {}",
        e.client.ip(),
        time,
        e.method,
        Escaped(target.as_bytes()),
        e.version,
        e.status,
        e.body_bytes,
        Escaped(header_bytes(e.referer.as_ref())),
        Escaped(header_bytes(e.user_agent.as_ref())),
        e.request_bytes,
        seconds(Some(e.request_time)),
        e.upstream_name.as_deref().unwrap_or(""),
        e.alternative_upstream_name.as_deref().unwrap_or(""),
        e.upstream_addr
            .map_or_else(|| "-".to_owned(), |a| a.to_string()),
        seconds(e.upstream_response_time),
        e.upstream_status
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        Escaped(header_bytes(e.request_id.as_ref())),
    );
}

fn header_bytes(value: Option<&HeaderValue>) -> &[u8] {
    value.map_or(b"-", HeaderValue::as_bytes)
}

fn json_line(e: &Entry, out: &mut String) {
    let target = e.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut line = JsonLine::start(out);
    match jiff::Timestamp::try_from(e.time) {
        Ok(time) => line.plain("time", format_args!("{time}")),
        Err(_) => line.text("time", ""),
    }
    line.plain("remote_addr", format_args!("{}", e.client.ip()));
    line.text("request_id", header(e.request_id.as_ref()));
    line.text("method", e.method.as_str());
    line.text("host", header(e.host.as_ref()));
    line.text("path", e.uri.path());
    line.text("request", target);
    line.plain("request_proto", format_args!("{:?}", e.version));
    line.plain("status", format_args!("{}", e.status));
    line.plain("bytes_sent", format_args!("{}", e.body_bytes));
    line.plain("request_length", format_args!("{}", e.request_bytes));
    line.seconds("request_time", Some(e.request_time));
    line.text("http_referer", header(e.referer.as_ref()));
    line.text("http_user_agent", header(e.user_agent.as_ref()));
    line.text("namespace", e.namespace.as_deref().unwrap_or(""));
    line.text("ingress", e.ingress.as_deref().unwrap_or(""));
    line.text("service", e.service.as_deref().unwrap_or(""));
    line.text(
        "proxy_upstream_name",
        e.upstream_name.as_deref().unwrap_or(""),
    );
    line.text(
        "proxy_alternative_upstream_name",
        e.alternative_upstream_name.as_deref().unwrap_or(""),
    );
    match e.upstream_addr {
        Some(addr) => line.plain("upstream_addr", format_args!("{addr}")),
        None => line.text("upstream_addr", ""),
    }
    match e.upstream_status {
        Some(status) => line.plain("upstream_status", format_args!("{status}")),
        None => line.text("upstream_status", ""),
    }
    line.seconds("upstream_response_time", e.upstream_response_time);
    out.push('}');
}

/// One JSON object being written field by field straight into the line,
/// with no string per field: the writer thread formats every request.
struct JsonLine<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> JsonLine<'a> {
    fn start(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    /// `"name":"` after a comma when needed.
    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":\"");
    }

    /// A string from the request or the configuration, escaped.
    fn text(&mut self, name: &str, value: &str) {
        self.key(name);
        escape_json(value, self.out);
        self.out.push('"');
    }

    /// A value whose text never needs escaping (numbers, addresses,
    /// timestamps, protocol names).
    fn plain(&mut self, name: &str, value: std::fmt::Arguments<'_>) {
        self.key(name);
        let _ = self.out.write_fmt(value);
        self.out.push('"');
    }

    /// A duration in seconds with milliseconds, or `-`.
    fn seconds(&mut self, name: &str, value: Option<Duration>) {
        match value {
            Some(d) => self.plain(name, format_args!("{:.3}", d.as_secs_f64())),
            None => self.text(name, "-"),
        }
    }
}

/// A value as nginx writes it in a text log line (`escape=default`): `"`,
/// `\\`, control bytes and bytes above 0x7E as `\\xXX`, so that no client
/// can end a field or forge a line.
struct Escaped<'a>(&'a [u8]);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for &b in self.0 {
            if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                write!(f, "\\x{b:02X}")?;
            } else {
                f.write_char(char::from(b))?;
            }
        }
        Ok(())
    }
}

fn escape_json(value: &str, out: &mut String) {
    // Almost every value is printable ASCII without quotes or backslashes.
    if !value
        .bytes()
        .any(|b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\')
    {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000),
            client: SocketAddr::from(([10, 0, 0, 1], 5000)),
            method: Method::POST,
            uri: Uri::from_static("/api/v1/predict/1?x=1"),
            version: Version::HTTP_11,
            host: Some(HeaderValue::from_static("localhost")),
            status: 200,
            body_bytes: 42,
            request_bytes: 180,
            request_time: Duration::from_millis(12),
            referer: None,
            user_agent: Some(HeaderValue::from_static("oha/1 \"quoted\"")),
            request_id: Some(HeaderValue::from_static("abc123")),
            namespace: Some("user-1".into()),
            ingress: Some("model-serving-1".into()),
            service: Some("model-serving-1".into()),
            upstream_name: Some("user-1-model-serving-1-80".into()),
            alternative_upstream_name: None,
            upstream_addr: Some(SocketAddr::from(([127, 0, 0, 11], 8080))),
            upstream_status: Some(200),
            upstream_response_time: Some(Duration::from_millis(11)),
        }
    }

    #[test]
    fn text_lines_follow_upstreaminfo() {
        let mut line = String::new();
        text_line(&entry(), &mut line);
        assert_eq!(
            line,
            "10.0.0.1 - - [24/Nov/2025:16:00:00 +0000] \"POST /api/v1/predict/1?x=1 HTTP/1.1\" 200 42 \"-\" \
             \"oha/1 \\x22quoted\\x22\" 180 0.012 [user-1-model-serving-1-80] [] 127.0.0.11:8080 - 0.011 200 abc123"
        );
        let mut canary = entry();
        canary.alternative_upstream_name = Some("user-1-model-serving-1-canary-80".into());
        let mut line = String::new();
        text_line(&canary, &mut line);
        assert!(
            line.contains("[user-1-model-serving-1-80] [user-1-model-serving-1-canary-80] "),
            "{line}"
        );
    }

    #[test]
    fn text_lines_escape_as_nginx_does() {
        let mut e = entry();
        e.user_agent = Some(HeaderValue::from_bytes(b"a\"b\\c\te\xe9").unwrap());
        e.referer = Some(HeaderValue::from_static("\" 200 0 \"x"));
        let mut line = String::new();
        text_line(&e, &mut line);
        assert!(line.contains("\"\\x22 200 0 \\x22x\""), "{line}");
        assert!(line.contains("\"a\\x22b\\x5Cc\\x09e\\xE9\""), "{line}");
        assert_eq!(line.matches('"').count(), 6, "{line}");
    }

    #[test]
    fn the_queue_is_bounded_in_bytes() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let log = AccessLog {
            sender,
            dropped: AtomicU64::new(0),
            queued: Arc::new(AtomicUsize::new(0)),
        };
        let mut big = entry();
        let agent = "a".repeat(60 * 1024);
        big.user_agent = Some(HeaderValue::from_str(&agent).unwrap());
        let fits = QUEUE_BYTES / big.weight();
        for _ in 0..fits + 10 {
            let mut e = entry();
            e.user_agent = big.user_agent.clone();
            log.log(e);
        }
        assert_eq!(log.dropped(), 10);
        // Writing frees the bytes: the next record is queued again.
        let mut out = Vec::new();
        let first = receiver.recv().unwrap();
        queued_write(&first, &log.queued, &mut out);
        log.log(entry());
        assert_eq!(log.dropped(), 10);
    }

    /// What the writer does for one record, for the byte accounting.
    fn queued_write(entry: &Entry, queued: &AtomicUsize, out: &mut Vec<u8>) {
        queued.fetch_sub(entry.weight(), Ordering::Relaxed);
        let mut line = String::new();
        text_line(entry, &mut line);
        out.extend_from_slice(line.as_bytes());
    }

    #[test]
    fn json_lines_are_valid_and_escaped() {
        let mut line = String::new();
        let mut e = entry();
        e.uri = Uri::from_static("/a%22b");
        json_line(&e, &mut line);
        assert!(
            line.starts_with("{\"time\":\"2025-11-24T16:00:00Z\""),
            "{line}"
        );
        assert!(
            line.contains("\"http_user_agent\":\"oha/1 \\\"quoted\\\"\""),
            "{line}"
        );
        assert!(line.contains("\"upstream_addr\":\"127.0.0.11:8080\""));
        assert!(line.ends_with('}'));
    }

    #[test]
    fn json_lines_parse_back_to_every_field() {
        let mut e = entry();
        e.user_agent = Some(HeaderValue::from_static("bot \"x\" \\ y"));
        e.upstream_addr = None;
        e.upstream_status = None;
        e.upstream_response_time = None;
        let mut line = String::new();
        json_line(&e, &mut line);
        let parsed: serde_json::Value = serde_json::from_str(&line).expect(&line);
        let field = |name: &str| parsed[name].as_str().unwrap_or("<missing>").to_owned();
        assert_eq!(field("time"), "2025-11-24T16:00:00Z");
        assert_eq!(field("remote_addr"), "10.0.0.1");
        assert_eq!(field("request_proto"), "HTTP/1.1");
        assert_eq!(field("request"), "/api/v1/predict/1?x=1");
        assert_eq!(field("status"), "200");
        assert_eq!(field("bytes_sent"), "42");
        assert_eq!(field("request_length"), "180");
        assert_eq!(field("request_time"), "0.012");
        assert_eq!(field("http_user_agent"), "bot \"x\" \\ y");
        assert_eq!(field("upstream_addr"), "");
        assert_eq!(field("upstream_status"), "");
        assert_eq!(field("upstream_response_time"), "-");
        assert_eq!(parsed.as_object().map(serde_json::Map::len), Some(22));
        let mut escaped = String::new();
        escape_json("a\u{1}\"\\é\u{85}z", &mut escaped);
        assert_eq!(escaped, "a\\u0001\\\"\\\\é\\u0085z");
    }

    #[test]
    fn the_writer_writes_and_flushes() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(4);
        sender.send(entry()).unwrap();
        sender.send(entry()).unwrap();
        drop(sender);
        let mut out = Vec::new();
        write_loop(
            &receiver,
            AccessLogFormat::Json,
            &mut out,
            &AtomicUsize::new(usize::MAX / 2),
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn records_sent_while_the_writer_gathers_are_all_written() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let writer = std::thread::spawn(move || {
            let mut out = Vec::new();
            write_loop(
                &receiver,
                AccessLogFormat::Text,
                &mut out,
                &AtomicUsize::new(usize::MAX / 2),
            );
            out
        });
        for burst in 0..5 {
            for _ in 0..100 {
                sender.send(entry()).unwrap();
            }
            if burst % 2 == 0 {
                std::thread::sleep(GATHER / 2);
            }
        }
        drop(sender);
        let out = writer.join().unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 500);
    }
}
