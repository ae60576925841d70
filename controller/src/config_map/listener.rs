//! Parsers for the client-connection keys (`keep-alive`,
//! `large-client-header-buffers`, ...), which the gateway applies to each
//! new connection.

use std::time::Duration;

use gateway::settings::HeaderBuffers;

use crate::annotations::values::{body_size, seconds};

/// The largest request head `large-client-header-buffers` may allow.
const MAX_HEAD_BYTES: usize = 1 << 20;
/// The smallest buffer: nginx's connection pool size on 64-bit systems.
const MIN_BUFFER_BYTES: usize = 512;
/// The most HTTP/2 streams one connection may open at once.
const MAX_STREAMS: u32 = 100_000;

/// `keep-alive`: whole seconds; `0` turns client keep-alive off.
pub(super) fn keepalive(value: &str) -> Result<Duration, String> {
    match value {
        "0" => Ok(Duration::ZERO),
        _ => seconds(value),
    }
}

/// `keep-alive-requests`: requests per connection; `0` closes every
/// connection after its first response, as in nginx.
pub(super) fn keepalive_requests(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .map_err(|_| "must be a whole number".to_owned())
}

/// `large-client-header-buffers`: `<count> <size>`, such as `4 8k`.
pub(super) fn header_buffers(value: &str) -> Result<HeaderBuffers, String> {
    const FORM: &str = "must be a count and a size, such as \"4 8k\"";
    let mut fields = value.split_ascii_whitespace();
    let (Some(count), Some(size), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(FORM.to_owned());
    };
    let count = count
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| FORM.to_owned())?;
    let size = body_size(size)?
        .and_then(|bytes| usize::try_from(bytes).ok())
        .filter(|bytes| *bytes >= MIN_BUFFER_BYTES)
        .ok_or_else(|| format!("the size must be at least {MIN_BUFFER_BYTES} bytes"))?;
    let buffers = HeaderBuffers { count, size };
    if buffers.total() > MAX_HEAD_BYTES {
        return Err("the buffers must total at most 1m".to_owned());
    }
    Ok(buffers)
}

/// `max-worker-connections`: client connections per listener; `0` sets no
/// cap of its own (ingress-nginx derives one from the open-file limit;
/// here the accept loop's back-off on running out of descriptors applies).
pub(super) fn max_connections(value: &str) -> Result<Option<usize>, String> {
    match value.parse::<usize>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err("must be a whole number".to_owned()),
    }
}

/// `http2-max-concurrent-streams`: at least 1.
pub(super) fn max_streams(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_STREAMS).contains(&n) => Ok(n),
        Ok(_) => Err(format!("must be between 1 and {MAX_STREAMS}")),
        Err(_) => Err("must be a whole number".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_is_seconds_or_off() {
        assert_eq!(keepalive("75"), Ok(Duration::from_secs(75)));
        assert_eq!(keepalive("0"), Ok(Duration::ZERO));
        assert_eq!(keepalive("86400"), Ok(Duration::from_secs(86_400)));
        assert!(keepalive("86401").is_err());
        assert!(keepalive("75s").is_err());
        assert!(keepalive("-1").is_err());
    }

    #[test]
    fn keepalive_requests_is_a_count() {
        assert_eq!(keepalive_requests("1000"), Ok(1000));
        assert_eq!(keepalive_requests("0"), Ok(0));
        assert_eq!(keepalive_requests("4294967295"), Ok(u32::MAX));
        assert!(keepalive_requests("4294967296").is_err());
        assert!(keepalive_requests("many").is_err());
    }

    #[test]
    fn header_buffers_are_a_count_and_a_size() {
        let buffers = |count, size| HeaderBuffers { count, size };
        assert_eq!(header_buffers("4 8k"), Ok(buffers(4, 8192)));
        assert_eq!(header_buffers(" 2   1K "), Ok(buffers(2, 1024)));
        assert_eq!(header_buffers("1 512"), Ok(buffers(1, 512)));
        assert_eq!(header_buffers("4 256k"), Ok(buffers(4, 256 << 10)));
        assert!(header_buffers("4 257k").is_err(), "over 1m in all");
        assert!(header_buffers("4 511").is_err());
        assert!(header_buffers("0 8k").is_err());
        assert!(header_buffers("4").is_err());
        assert!(header_buffers("4 8k 1").is_err());
        assert!(header_buffers("8k 4").is_err());
        assert!(header_buffers("4 0").is_err());
    }

    #[test]
    fn max_streams_is_bounded() {
        assert_eq!(max_streams("128"), Ok(128));
        assert_eq!(max_streams("1"), Ok(1));
        assert_eq!(max_streams("100000"), Ok(100_000));
        assert!(max_streams("0").is_err());
        assert!(max_streams("100001").is_err());
        assert!(max_streams("lots").is_err());
    }
}
