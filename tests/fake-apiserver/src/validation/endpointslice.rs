//! discovery.k8s.io/v1 EndpointSlice validation, as kube-apiserver's
//! `pkg/apis/discovery/validation` words it. Loopback addresses, which a
//! real server refuses, are allowed unless the server's options say
//! otherwise (tests point EndpointSlices at backends on 127.0.0.x).

use serde_json::{Value, json};

use super::field::{FieldError, Path};
use super::{Settings, items, names, text};

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 100;

/// An EndpointSlice (defaults applied) on create or update.
pub(crate) fn validate_endpoint_slice(
    obj: &Value,
    old: Option<&Value>,
    settings: Settings,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let address_type = text(obj, "/addressType");
    let type_path = Path::new("addressType");
    if address_type.is_empty() {
        errs.push(FieldError::required(&type_path, ""));
    } else if !(ADDRESS_TYPES.contains(&address_type) || old.is_some() && address_type == "IP") {
        errs.push(FieldError::not_supported(
            &type_path,
            json!(address_type),
            ADDRESS_TYPES,
        ));
    }
    errs.extend(validate_endpoints(obj, address_type, settings));
    errs.extend(validate_ports(obj));
    if let Some(old) = old {
        let before = text(old, "/addressType");
        if before != address_type {
            errs.push(FieldError::invalid(
                &type_path,
                json!(address_type),
                "field is immutable",
            ));
        }
    }
    errs
}

fn validate_endpoints(obj: &Value, address_type: &str, settings: Settings) -> Vec<FieldError> {
    let path = Path::new("endpoints");
    let endpoints = items(obj, "/endpoints");
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![FieldError::too_many(&path, endpoints.len(), MAX_ENDPOINTS)];
    }
    let mut errs = Vec::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let addresses_path = path.index(i).child("addresses");
        let addresses = items(endpoint, "/addresses");
        if addresses.is_empty() {
            errs.push(FieldError::required(
                &addresses_path,
                "must contain at least 1 address",
            ));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                &addresses_path,
                addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (j, address) in addresses.iter().enumerate() {
            let address = address.as_str().unwrap_or("");
            let apath = addresses_path.index(j);
            let family_error = match address_type {
                "IPv4" => names::parse_ip_sloppy(address)
                    .filter(names::is_ipv4)
                    .is_none()
                    .then_some("must be a valid IPv4 address"),
                "IPv6" => names::parse_ip_sloppy(address)
                    .filter(|ip| !names::is_ipv4(ip))
                    .is_none()
                    .then_some("must be a valid IPv6 address"),
                "FQDN" => {
                    for msg in names::dns1123_subdomain(address) {
                        errs.push(FieldError::invalid(&apath, json!(address), msg));
                    }
                    continue;
                }
                _ => continue,
            };
            if let Some(msg) = family_error {
                errs.push(FieldError::invalid(&apath, json!(address), msg));
            }
            for msg in names::non_special_ip(address, !settings.allow_loopback_endpoints) {
                errs.push(FieldError::invalid(&apath, json!(address), msg));
            }
        }
        if let Some(hostname) = endpoint.get("hostname").and_then(Value::as_str) {
            for msg in names::dns1123_label(hostname) {
                errs.push(FieldError::invalid(
                    &path.index(i).child("hostname"),
                    json!(hostname),
                    msg,
                ));
            }
        }
    }
    errs
}

fn validate_ports(obj: &Value) -> Vec<FieldError> {
    let path = Path::new("ports");
    let ports = items(obj, "/ports");
    if ports.len() > MAX_PORTS {
        return vec![FieldError::too_many(&path, ports.len(), MAX_PORTS)];
    }
    let mut errs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let ppath = path.index(i);
        let name = text(port, "/name");
        if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(&ppath.child("name"), json!(name), msg));
            }
        }
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(&ppath.child("name"), json!(name)));
        } else {
            seen.push(name);
        }
        let protocol = text(port, "/protocol");
        if !PROTOCOLS.contains(&protocol) {
            errs.push(FieldError::not_supported(
                &ppath.child("protocol"),
                json!(protocol),
                PROTOCOLS,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Settings = Settings {
        allow_loopback_endpoints: false,
    };
    const LOOPBACK_OK: Settings = Settings {
        allow_loopback_endpoints: true,
    };

    fn slice(address_type: &str, address: &str) -> Value {
        json!({"addressType": address_type, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address], "conditions": {"ready": true}}]})
    }

    fn messages(obj: &Value, settings: Settings) -> Vec<String> {
        validate_endpoint_slice(obj, None, settings)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn addresses_as_the_real_server_refuses_them() {
        assert!(messages(&slice("IPv4", "10.0.0.7"), STRICT).is_empty());
        assert_eq!(
            messages(&slice("IPv4", "10.0.0.x"), STRICT),
            [
                "endpoints[0].addresses[0]: Invalid value: \"10.0.0.x\": must be a valid IPv4 address",
                "endpoints[0].addresses[0]: Invalid value: \"10.0.0.x\": must be a valid IP address"
            ]
        );
        assert_eq!(
            messages(&slice("IPv4", "fd00::1"), STRICT),
            ["endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address"]
        );
        assert_eq!(
            messages(&slice("IPv6", "10.0.0.7"), STRICT),
            [
                "endpoints[0].addresses[0]: Invalid value: \"10.0.0.7\": must be a valid IPv6 address"
            ]
        );
        assert_eq!(
            messages(&slice("IPv4", "127.0.0.11"), STRICT),
            [
                "endpoints[0].addresses[0]: Invalid value: \"127.0.0.11\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
            ]
        );
        assert!(messages(&slice("IPv4", "127.0.0.11"), LOOPBACK_OK).is_empty());
        assert_eq!(
            messages(&slice("IP", "10.0.0.7"), STRICT),
            [
                "addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
            ]
        );
        let none = json!({"addressType": "IPv4", "endpoints": [{"addresses": []}]});
        assert_eq!(
            messages(&none, STRICT),
            ["endpoints[0].addresses: Required value: must contain at least 1 address"]
        );
    }
}
