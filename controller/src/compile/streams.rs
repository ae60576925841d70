//! TCP and UDP services (`--tcp-services-configmap`,
//! `--udp-services-configmap`) and SSL passthrough hosts, as
//! ingress-nginx's `getStreamServices` and `getConfiguration` read them.
//!
//! A services ConfigMap maps a port to `<namespace>/<service>:<port>`,
//! optionally followed by `:PROXY` (decode a PROXY header from clients)
//! and `:PROXY` (send one upstream), TCP only. The Service port (number or
//! name) must be of the ConfigMap's transport. Each entry becomes a
//! backend of the table (so its endpoints follow EndpointSlices on the
//! fast path) and a [`StreamService`]. A bad entry is skipped with a
//! diagnostic; the others are served.

use gateway::BackendKey;
use gateway::l4::{StreamProtocol, StreamService};

use super::{Compiler, resolve_key};
use crate::diagnostics::{Diagnostic, Reason};
use crate::endpoints::{PortRef, Protocol, UDP_PORT_KEY, port_protocol};
use crate::objects::{Kind, NsName, ObjectKey};

/// The ports ingress-nginx reserves for itself besides the listeners the
/// gateway was started with: the passthrough proxy (442), the default
/// backend (8181), the status and stream servers (10246, 10247) and the
/// profiler (10245).
const RESERVED: [u16; 5] = [442, 8181, 10245, 10246, 10247];

/// One parsed entry of a services ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) port: u16,
    pub(crate) service: NsName,
    pub(crate) service_port: PortRef,
    pub(crate) decode_proxy_protocol: bool,
    pub(crate) encode_proxy_protocol: bool,
    /// Fields that have no effect (ingress-nginx ignores them too).
    pub(crate) ignored: Vec<String>,
}

/// Parses `"<port>": "<ns>/<svc>:<port>[:PROXY][:PROXY]"`.
pub(crate) fn entry(
    protocol: StreamProtocol,
    port: &str,
    reference: &str,
) -> Result<Entry, String> {
    let port = port
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or("the key must be a port number (1-65535)")?;
    let fields: Vec<&str> = reference.trim().split(':').collect();
    if !(2..=4).contains(&fields.len()) {
        return Err("must be <namespace>/<service>:<port>[:PROXY][:PROXY]".to_owned());
    }
    let (namespace, name) = fields[0]
        .split_once('/')
        .filter(|(ns, name)| is_dns_label(ns) && is_dns_label(name))
        .ok_or("must start with <namespace>/<service>")?;
    let service_port = fields[1];
    let valid_port = !service_port.is_empty()
        && service_port.len() <= 63
        && service_port
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid_port {
        return Err("the service port must be a number or a port name".to_owned());
    }
    let mut entry = Entry {
        port,
        service: NsName::new(namespace, name),
        service_port: PortRef::from_key(service_port),
        decode_proxy_protocol: false,
        encode_proxy_protocol: false,
        ignored: Vec::new(),
    };
    for (i, field) in fields.iter().enumerate().skip(2) {
        let proxy = field.eq_ignore_ascii_case("PROXY");
        match (protocol, i, proxy) {
            (StreamProtocol::Tcp, 2, true) => entry.decode_proxy_protocol = true,
            (StreamProtocol::Tcp, _, true) => entry.encode_proxy_protocol = true,
            _ if field.is_empty() => {}
            _ => entry.ignored.push((*field).to_owned()),
        }
    }
    Ok(entry)
}

impl Compiler<'_> {
    /// Adds the services of both ConfigMaps; `reserved`: the gateway's
    /// own listening ports.
    pub(super) fn streams(&mut self, tcp: Option<&NsName>, udp: Option<&NsName>, reserved: &[u16]) {
        for (protocol, id) in [(StreamProtocol::Tcp, tcp), (StreamProtocol::Udp, udp)] {
            if let Some(id) = id {
                self.stream_config_map(protocol, id, reserved);
            }
        }
    }

    fn stream_config_map(&mut self, protocol: StreamProtocol, id: &NsName, reserved: &[u16]) {
        let object = ObjectKey {
            kind: Kind::ConfigMap,
            id: id.clone(),
        };
        let Some(config_map) = self.snapshot.config_map(id) else {
            self.diagnostics.push(Diagnostic {
                object,
                reason: Reason::InvalidStreamService,
                message: format!(
                    "--{protocol}-services-configmap: ConfigMap not found; no {protocol} service is served until it exists"
                ),
            });
            return;
        };
        let data = config_map.data.clone().unwrap_or_default();
        for (port, reference) in &data {
            let problem = match entry(protocol, port, reference) {
                Ok(entry) if reserved.contains(&entry.port) || RESERVED.contains(&entry.port) => {
                    Some(format!(
                        "port {} is reserved for the gateway itself; not served",
                        entry.port
                    ))
                }
                Ok(entry) => self.stream(protocol, &object, entry),
                Err(message) => Some(format!("{message}; not served")),
            };
            if let Some(message) = problem {
                self.diagnostics.push(Diagnostic {
                    object: object.clone(),
                    reason: Reason::InvalidStreamService,
                    message: format!("{port}: {reference:?}: {message}"),
                });
            }
        }
    }

    /// Adds one service; returns what to report about it.
    fn stream(
        &mut self,
        protocol: StreamProtocol,
        object: &ObjectKey,
        entry: Entry,
    ) -> Option<String> {
        let wanted = match protocol {
            StreamProtocol::Tcp => Protocol::Tcp,
            StreamProtocol::Udp => Protocol::Udp,
        };
        let found = port_protocol(self.snapshot, &entry.service, &entry.service_port);
        if found.is_some_and(|p| p != wanted && protocol == StreamProtocol::Tcp) {
            return Some(format!(
                "service port {} of {} is not a TCP port; not served",
                entry.service_port.as_key(),
                entry.service
            ));
        }
        let port_key = match protocol {
            StreamProtocol::Tcp => entry.service_port.as_key(),
            StreamProtocol::Udp => format!("{UDP_PORT_KEY}{}", entry.service_port.as_key()),
        };
        let key = BackendKey {
            namespace: entry.service.namespace.as_str().into(),
            service: entry.service.name.as_str().into(),
            port: port_key.into(),
            cluster_ip: false,
        };
        let resolved = resolve_key(self.snapshot, &key);
        let backend = self.builder.backend(key, &resolved.update);
        if let Some(name) = resolved.external.clone() {
            self.builder.set_external_name(backend, name);
        }
        let service = StreamService {
            protocol,
            port: entry.port,
            backend,
            decode_proxy_protocol: entry.decode_proxy_protocol,
            encode_proxy_protocol: entry.encode_proxy_protocol,
        };
        if self.builder.add_stream(service).is_err() {
            return Some(format!("port {} is served twice", entry.port));
        }
        let mut notes = Vec::new();
        if let Some((reason, message)) = resolved.problem {
            self.diagnostics.push(Diagnostic {
                object: object.clone(),
                reason,
                message: format!(
                    "{}: {message}; connections are closed until it is fixed",
                    entry.port
                ),
            });
        }
        if !entry.ignored.is_empty() {
            notes.push(format!(
                "{} has no effect (only PROXY, on TCP services); served without it",
                entry.ignored.join(", ")
            ));
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_ingress_nginx_reads_them() {
        let e = entry(StreamProtocol::Tcp, "9000", "default/example-go:8080").unwrap();
        assert_eq!(e.port, 9000);
        assert_eq!(e.service, NsName::new("default", "example-go"));
        assert_eq!(e.service_port, PortRef::Number(8080));
        assert!(!e.decode_proxy_protocol && !e.encode_proxy_protocol);
        let e = entry(StreamProtocol::Tcp, "9000", "ns/svc:http:PROXY:proxy").unwrap();
        assert_eq!(e.service_port, PortRef::Name("http".to_owned()));
        assert!(e.decode_proxy_protocol && e.encode_proxy_protocol);
        let e = entry(StreamProtocol::Tcp, "9000", "ns/svc:80::PROXY").unwrap();
        assert!(!e.decode_proxy_protocol && e.encode_proxy_protocol);
        let e = entry(StreamProtocol::Udp, "53", "kube-system/kube-dns:53:PROXY").unwrap();
        assert!(!e.decode_proxy_protocol);
        assert_eq!(e.ignored, ["PROXY"]);
        for (port, bad) in [
            ("x", "ns/svc:80"),
            ("0", "ns/svc:80"),
            ("70000", "ns/svc:80"),
            ("9000", "svc:80"),
            ("9000", "ns/svc"),
            ("9000", "ns/svc:"),
            ("9000", "ns/Svc:80"),
            ("9000", "ns/svc:80:PROXY:PROXY:x"),
            ("9000", "ns/svc:8 0"),
        ] {
            assert!(
                entry(StreamProtocol::Tcp, port, bad).is_err(),
                "{port} {bad}"
            );
        }
    }
}
