//! The access log's configuration, as the table carries it (the
//! ConfigMap's `log-format-upstream` and its escape keys, where lines go,
//! what is not logged): plain data the control plane builds and the
//! access log's writer and renderer read. Below the table, so that the
//! gateway-wide settings can hold it.

pub mod template;

use std::path::PathBuf;
use std::sync::Arc;

use crate::blocklist::Blocklist;
use template::LogFormat;

/// Where lines go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// Standard output (ingress-nginx's `/var/log/nginx/access.log` is a
    /// symlink to it).
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, appended to, created if missing.
    File(PathBuf),
    /// Syslog over UDP.
    Syslog {
        /// Host name or address.
        host: String,
        /// UDP port (514).
        port: u16,
    },
}

/// The ConfigMap's access log settings, carried by the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// `log-format-upstream` with its escape keys, compiled.
    pub format: Arc<LogFormat>,
    /// Where lines go.
    pub target: Target,
    /// `skip-access-log-urls`: `$request_uri`s never logged.
    pub skip: Option<Blocklist>,
    /// `enable-access-log-for-default-backend` (false): log requests no
    /// rule matched.
    pub default_backend: bool,
    /// `disable-access-log` (false): log nothing, whatever an Ingress's
    /// `enable-access-log` says (nginx's `access_log off` at the `http`
    /// level, which no location turns back on).
    pub disabled: bool,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            format: Arc::new(LogFormat::upstreaminfo()),
            target: Target::Stdout,
            skip: None,
            default_backend: false,
            disabled: false,
        }
    }
}
