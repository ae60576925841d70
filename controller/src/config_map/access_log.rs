//! The access log keys, read together because they depend on each other
//! as in ingress-nginx's template: `log-format-upstream` with
//! `log-format-escape-none` (wins) or `log-format-escape-json`; syslog
//! (`enable-syslog`, `syslog-host`, `syslog-port`) instead of a path
//! (`http-access-log-path`, else `access-log-path`); `skip-access-log-urls`;
//! `enable-access-log-for-default-backend`; `disable-access-log`, which
//! no Ingress annotation overrides. A value that does not parse
//! keeps that setting's default, with a diagnostic.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use gateway::access_log::template::UPSTREAMINFO;
use gateway::access_log::{AccessLogConfig, Escape, LogFormat, Target};
use gateway::policy::block::Blocklist;

use super::KeyError;
use crate::annotations::values::boolean;

/// The keys [`read`] reads (the registry test checks each is known).
#[cfg(test)]
pub(super) const KEYS: &[&str] = &[
    "access-log-path",
    "disable-access-log",
    "enable-access-log-for-default-backend",
    "enable-syslog",
    "http-access-log-path",
    "log-format-escape-json",
    "log-format-escape-none",
    "log-format-upstream",
    "skip-access-log-urls",
    "syslog-host",
    "syslog-port",
];

/// The paths that are the container's stdout and stderr.
const STDOUT: [&str; 2] = ["/var/log/nginx/access.log", "/dev/stdout"];
const STDERR: &str = "/dev/stderr";

/// Reads the access log keys of `data` into `config`.
pub(super) fn read(
    data: &BTreeMap<String, String>,
    config: &mut AccessLogConfig,
    errors: &mut Vec<KeyError>,
) {
    let mut error = |key: &str, value: &str, message: String| {
        errors.push(KeyError {
            key: key.to_owned(),
            value: value.to_owned(),
            message,
        });
    };
    let value = |key: &str| data.get(key).map(|v| v.trim());
    let mut flag = |key: &str| match value(key) {
        None => false,
        Some(v) => boolean(v).unwrap_or_else(|message| {
            error(key, v, message);
            false
        }),
    };
    let escape = if flag("log-format-escape-none") {
        Escape::None
    } else if flag("log-format-escape-json") {
        Escape::Json
    } else {
        Escape::Default
    };
    let syslog = flag("enable-syslog");
    config.disabled = flag("disable-access-log");
    config.default_backend = flag("enable-access-log-for-default-backend");

    let mut error = |key: &str, value: &str, message: String| {
        errors.push(KeyError {
            key: key.to_owned(),
            value: value.to_owned(),
            message,
        });
    };
    let format = value("log-format-upstream")
        .filter(|f| !f.is_empty())
        .unwrap_or(UPSTREAMINFO);
    match LogFormat::parse(format, escape) {
        Ok(parsed) => config.format = Arc::new(parsed),
        Err(e) => error(
            "log-format-upstream",
            format,
            format!("{e}; ingress-nginx's upstreaminfo format is used"),
        ),
    }
    if let Some(urls) = value("skip-access-log-urls") {
        match Blocklist::parse(urls) {
            Ok(skip) => config.skip = skip,
            Err(message) => error("skip-access-log-urls", urls, message),
        }
    }
    if syslog {
        match syslog_target(value("syslog-host"), value("syslog-port")) {
            Ok(target) => config.target = target,
            Err((key, v, message)) => error(key, v, message),
        }
        return;
    }
    let path = value("http-access-log-path")
        .filter(|p| !p.is_empty())
        .map(|p| ("http-access-log-path", p))
        .or_else(|| value("access-log-path").map(|p| ("access-log-path", p)));
    if let Some((key, path)) = path {
        match path_target(path) {
            Ok(target) => config.target = target,
            Err(message) => error(key, path, message),
        }
    }
}

/// `syslog:server=<host>:<port>`.
fn syslog_target<'v>(
    host: Option<&'v str>,
    port: Option<&'v str>,
) -> Result<Target, (&'static str, &'v str, String)> {
    let host = match host {
        Some(host) if valid_host(host) => host,
        Some(host) => {
            return Err((
                "syslog-host",
                host,
                "is not a host name or address; lines stay where they were".to_owned(),
            ));
        }
        None => {
            return Err((
                "enable-syslog",
                "true",
                "needs syslog-host; lines stay where they were".to_owned(),
            ));
        }
    };
    let port = match port {
        None => 514,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => {
                return Err(("syslog-port", port, "must be a port number".to_owned()));
            }
        },
    };
    Ok(Target::Syslog {
        host: host.to_owned(),
        port,
    })
}

/// A host name or an IP address (IPv6 without brackets).
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

fn path_target(path: &str) -> Result<Target, String> {
    if STDOUT.contains(&path) {
        return Ok(Target::Stdout);
    }
    if path == STDERR {
        return Ok(Target::Stderr);
    }
    if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control()) {
        return Err("must be an absolute path".to_owned());
    }
    Ok(Target::File(PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_map(pairs: &[(&str, &str)]) -> (AccessLogConfig, Vec<KeyError>) {
        let data = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut config = AccessLogConfig::default();
        let mut errors = Vec::new();
        read(&data, &mut config, &mut errors);
        (config, errors)
    }

    #[test]
    fn defaults_are_ingress_nginx_defaults() {
        let (config, errors) = read_map(&[]);
        assert!(errors.is_empty());
        assert_eq!(config, AccessLogConfig::default());
        assert_eq!(*config.format, LogFormat::upstreaminfo());
        assert_eq!(config.target, Target::Stdout);
    }

    #[test]
    fn format_and_escapes() {
        let (config, errors) = read_map(&[
            ("log-format-upstream", "{\"s\":\"$status\"}"),
            ("log-format-escape-json", "true"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(config.format.escape(), Escape::Json);
        // escape=none wins, as in ingress-nginx's template.
        let (config, _) = read_map(&[
            ("log-format-escape-json", "true"),
            ("log-format-escape-none", "true"),
        ]);
        assert_eq!(config.format.escape(), Escape::None);
        assert_eq!(
            *config.format,
            LogFormat::parse(UPSTREAMINFO, Escape::None).unwrap()
        );
    }

    #[test]
    fn an_unknown_variable_is_named_and_the_default_kept() {
        let (config, errors) = read_map(&[("log-format-upstream", "$remote_addr $nope $status")]);
        assert_eq!(*config.format, LogFormat::upstreaminfo());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "log-format-upstream");
        assert!(errors[0].message.contains("$nope"), "{}", errors[0].message);
    }

    #[test]
    fn targets() {
        let target = |pairs: &[(&str, &str)]| read_map(pairs).0.target;
        assert_eq!(
            target(&[("access-log-path", "/var/log/nginx/access.log")]),
            Target::Stdout
        );
        assert_eq!(
            target(&[("access-log-path", "/var/log/a.log")]),
            Target::File("/var/log/a.log".into())
        );
        assert_eq!(
            target(&[
                ("access-log-path", "/var/log/a.log"),
                ("http-access-log-path", "/var/log/http.log")
            ]),
            Target::File("/var/log/http.log".into())
        );
        assert_eq!(
            target(&[("http-access-log-path", "/dev/stderr")]),
            Target::Stderr
        );
        assert_eq!(
            target(&[
                ("enable-syslog", "true"),
                ("syslog-host", "logs.example"),
                ("http-access-log-path", "/var/log/http.log")
            ]),
            Target::Syslog {
                host: "logs.example".to_owned(),
                port: 514
            }
        );
        let (config, errors) = read_map(&[("enable-syslog", "true")]);
        assert_eq!(config.target, Target::Stdout);
        assert_eq!(errors[0].key, "enable-syslog");
        let (_, errors) = read_map(&[("http-access-log-path", "relative.log")]);
        assert_eq!(errors[0].key, "http-access-log-path");
    }

    #[test]
    fn disable_access_log() {
        assert!(read_map(&[("disable-access-log", "true")]).0.disabled);
        assert!(!read_map(&[]).0.disabled);
    }

    #[test]
    fn skip_list_and_default_backend() {
        let (config, errors) = read_map(&[
            ("skip-access-log-urls", "/healthz,/ping"),
            ("enable-access-log-for-default-backend", "true"),
        ]);
        assert!(errors.is_empty());
        assert!(config.skip.is_some_and(|s| s.matches(b"/ping")));
        assert!(config.default_backend);
        let (_, errors) = read_map(&[("skip-access-log-urls", "~(")]);
        assert_eq!(errors[0].key, "skip-access-log-urls");
    }
}
