//! The access log: one line per request, as ingress-nginx writes it.
//!
//! - **Format**: the ConfigMap's `log-format-upstream` (ingress-nginx's
//!   `upstreaminfo` by default) compiled once into a typed template
//!   ([`template`]), with `log-format-escape-json` / `-none`; or, with
//!   `--access-log json`, the gateway's fixed JSON line.
//! - **Where**: stdout (the default, as ingress-nginx's `access.log` is a
//!   symlink to it), a file (`http-access-log-path`, `access-log-path`), or
//!   syslog over UDP (`enable-syslog`, `syslog-host`, `syslog-port`).
//! - **What**: every request of a route unless its Ingress says
//!   `enable-access-log: "false"`, nothing with the ConfigMap's
//!   `disable-access-log`;
//!   requests no rule matched only with
//!   `enable-access-log-for-default-backend`; never a request whose
//!   `$request_uri` `skip-access-log-urls` lists (nginx `map` semantics).
//!
//! The line is rendered on the worker that finished the request, into a
//! per-worker buffer ([`buffer`]), with the route's own values rendered
//! when the table was published; a writer thread takes the buffers in
//! batches ([`writer`]). The buffers are bounded in bytes
//! ([`QUEUE_BYTES`]): when the writer falls behind, lines are dropped and
//! counted (`edge_gateway_access_log_dropped_lines_total`), never waited
//! for.

mod buffer;
mod clock;
pub(crate) mod render;
mod syslog;
mod writer;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use arc_swap::{ArcSwap, ArcSwapOption};
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};

pub use crate::log_format::{AccessLogConfig, Target, template};
pub use template::{Escape, LogFormat, TemplateError};

use crate::table::{BackendId, RouteAction, RouteId, RouteTable};
use buffer::Buffers;
use render::{Captured, Record, RouteInfo};
use template::Piece;
use writer::Control;

/// The bytes of lines buffered at most, all workers together: long
/// headers or a stalled writer cannot make the log hold more.
pub const QUEUE_BYTES: usize = 16 << 20;

/// ingress-nginx's upstream name for requests no rule matched.
const DEFAULT_UPSTREAM: &str = "upstream-default-backend";

/// Which line format the log writes (`--access-log`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// The ConfigMap's `log-format-upstream` (ingress-nginx's `upstreaminfo`
    /// unless set), escaped as its escape keys say.
    Nginx,
    /// The gateway's fixed JSON line.
    Json,
}

/// The table requests are served from, as the writer reads its target.
type Table = Arc<ArcSwap<RouteTable>>;

/// One route's pieces, rendered (and escaped) once.
type RoutePieces = Box<[Box<[u8]>]>;

/// The route pieces of one published table, per route.
#[derive(Debug)]
struct Prepared {
    table: Weak<RouteTable>,
    format: Arc<LogFormat>,
    routes: Box<[RoutePieces]>,
}

/// The access log's handle, shared by every worker.
#[derive(Debug)]
pub struct AccessLog {
    mode: AccessLogFormat,
    /// The JSON line, for [`AccessLogFormat::Json`].
    json: Arc<LogFormat>,
    buffers: Arc<Buffers>,
    control: Arc<Control>,
    prepared: ArcSwapOption<Prepared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AccessLog {
    /// Starts the writer thread, which writes where `table`'s ConfigMap
    /// settings say.
    pub fn start(mode: AccessLogFormat, table: Table) -> io::Result<Arc<AccessLog>> {
        let buffers = Arc::new(Buffers::new(QUEUE_BYTES));
        let control = Arc::new(Control::default());
        let target = move || table.load().globals().access_log.target.clone();
        let writer = writer::spawn(buffers.clone(), control.clone(), Box::new(target))?;
        Ok(Arc::new(AccessLog {
            mode,
            json: Arc::new(LogFormat::json_line()),
            buffers,
            control,
            prepared: ArcSwapOption::empty(),
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// Reopens the log file (SIGUSR1, nginx's `reopen`).
    pub fn reopen(&self) {
        self.control.reopen.store(true, Ordering::SeqCst);
        self.buffers.wake();
    }

    /// Writes what is buffered and stops the writer; lines logged later
    /// are dropped.
    pub fn close(&self) {
        self.control.stop.store(true, Ordering::SeqCst);
        self.buffers.wake();
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// The format lines of `table`'s requests are written in.
    pub(crate) fn format<'a>(&'a self, table: &'a RouteTable) -> &'a LogFormat {
        match self.mode {
            AccessLogFormat::Json => &self.json,
            AccessLogFormat::Nginx => &table.globals().access_log.format,
        }
    }

    /// Renders the route pieces of every route of `table`, just before it
    /// is published.
    pub fn prepare(&self, table: &Arc<RouteTable>) {
        let format = match self.mode {
            AccessLogFormat::Json => self.json.clone(),
            AccessLogFormat::Nginx => table.globals().access_log.format.clone(),
        };
        let routes = (0..table.routes().len())
            .map(|i| route_pieces(&format, &route_info(table, Some(RouteId(i)), None)))
            .collect();
        self.prepared.store(Some(Arc::new(Prepared {
            table: Arc::downgrade(table),
            format,
            routes,
        })));
    }

    /// Writes a finished request's line into this worker's buffer. `drawn`
    /// is the backend a weighted split drew, when the route has one.
    pub(crate) fn write(
        &self,
        table: &Arc<RouteTable>,
        route: Option<RouteId>,
        drawn: Option<BackendId>,
        record: &Record<'_>,
    ) {
        let format = self.format(table);
        let prepared = self.prepared.load();
        let pieces = prepared
            .as_ref()
            .filter(|_| drawn.is_none())
            .filter(|p| p.table.as_ptr() == Arc::as_ptr(table) && std::ptr::eq(&*p.format, format))
            .and_then(|p| p.routes.get(route?.0))
            .map(|pieces| &**pieces);
        let info = match pieces {
            Some(_) => RouteInfo::default(),
            None => route_info(table, route, drawn),
        };
        self.buffers
            .append(|out| render::line(format, record, pieces, &info, out));
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        self.buffers.wake();
    }
}

/// What the route variables of a request on `route` read; `drawn`, when
/// set, is the backend that served it instead of the route's own.
fn route_info(
    table: &RouteTable,
    route: Option<RouteId>,
    drawn: Option<BackendId>,
) -> RouteInfo<'_> {
    let Some(found) = route.and_then(|id| table.routes().get(id.0)) else {
        return RouteInfo {
            upstream_name: Some(DEFAULT_UPSTREAM),
            ..RouteInfo::default()
        };
    };
    let backend = match (drawn, &found.action) {
        (Some(id), _) | (None, &RouteAction::Proxy(id)) => table.backend(id),
        (None, RouteAction::Respond(_)) => None,
    };
    let default = route.is_some_and(|id| table.is_default_route(id));
    RouteInfo {
        source: found.source.as_ref(),
        backend: backend.map(|b| b.key()),
        upstream_name: backend
            .map(|b| b.name())
            .or(default.then_some(DEFAULT_UPSTREAM)),
        path: Some(&found.path),
        host: Some(&found.host),
    }
}

/// A route's pieces, rendered once.
fn route_pieces(format: &LogFormat, info: &RouteInfo<'_>) -> RoutePieces {
    let mut pieces = Vec::with_capacity(format.route_pieces());
    for piece in format.pieces() {
        if let Piece::Route { var, dash } = piece {
            let mut out = Vec::new();
            render::route_value(*var, info, format.escape(), *dash, &mut out);
            pieces.push(out.into_boxed_slice());
        }
    }
    pieces.into_boxed_slice()
}

/// Captures the headers `names` (a format's request or response headers).
pub(crate) fn capture(names: &[http::HeaderName], headers: &HeaderMap) -> Captured {
    names
        .iter()
        .map(|name| {
            let mut values = headers.get_all(name).iter();
            let first = values.next()?;
            match values.next() {
                None => Some(first.clone()),
                // nginx joins repeated Cookie headers with `; ` and other
                // repeated headers it reads with `, `.
                Some(second) => {
                    let separator: &[u8] = if name == COOKIE { b"; " } else { b", " };
                    let mut joined = first.as_bytes().to_vec();
                    for value in std::iter::once(second).chain(values) {
                        joined.extend_from_slice(separator);
                        joined.extend_from_slice(value.as_bytes());
                    }
                    HeaderValue::from_bytes(&joined).ok()
                }
            }
        })
        .collect()
}

/// Whether `skip-access-log-urls` keeps a request out of the log.
pub(crate) fn skipped(config: &AccessLogConfig, request_uri: &[u8]) -> bool {
    config
        .skip
        .as_ref()
        .is_some_and(|skip| skip.matches(request_uri))
}

impl crate::metrics::DroppedLines for AccessLog {
    /// Lines dropped because the buffers were full or the target could not
    /// be written.
    fn dropped(&self) -> u64 {
        self.buffers.dropped()
    }
}

#[cfg(test)]
mod tests;
