//! W3C Trace Context (`traceparent`, `tracestate`): the incoming parent,
//! parsed strictly (anything malformed is no parent: a new trace starts),
//! and the header the upstream request carries.
//!
//! `traceparent` is `version-traceid-parentid-flags` in lowercase hex:
//! version `00` has exactly these four fields; a later version may append
//! fields after a `-`, which are ignored; version `ff`, an all-zero trace
//! or span id, upper case, or a repeated header are invalid.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

/// The trace context header.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The vendor trace state header.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The longest `tracestate` passed on: 32 members of at most 256 bytes
/// each is the W3C bound; longer values are dropped, as the spec allows.
const MAX_TRACESTATE: usize = 512;

/// A span's identity as `traceparent` carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parent {
    /// The trace id.
    pub trace_id: TraceId,
    /// The span id (the parent's, when read from a request).
    pub span_id: SpanId,
    /// Whether the span is sampled.
    pub sampled: bool,
}

impl Parent {
    /// The parent a request names, if its single `traceparent` is valid.
    pub fn from_headers(headers: &HeaderMap) -> Option<Parent> {
        let mut values = headers.get_all(&TRACEPARENT).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Parent::parse(value.as_bytes())
    }

    /// Parses one `traceparent` value.
    pub fn parse(value: &[u8]) -> Option<Parent> {
        if value.len() < 55 {
            return None;
        }
        let version = hex_u8(&value[0..2])?;
        if version == 0xff || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        // Version 00 is exactly 55 bytes; later versions may append fields.
        if (version == 0 && value.len() != 55) || (value.len() > 55 && value[55] != b'-') {
            return None;
        }
        let trace_id = hex_u128(&value[3..35])?;
        let span_id = hex_u64(&value[36..52])?;
        let flags = hex_u8(&value[53..55])?;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        Some(Parent {
            trace_id: TraceId::from(trace_id),
            span_id: SpanId::from(span_id),
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` value naming this span: version 00.
    pub fn header(&self) -> HeaderValue {
        let mut out = [0u8; 55];
        out[0] = b'0';
        out[1] = b'0';
        out[2] = b'-';
        write_hex(&mut out[3..35], &self.trace_id.to_bytes());
        out[35] = b'-';
        write_hex(&mut out[36..52], &self.span_id.to_bytes());
        out[52] = b'-';
        out[53] = b'0';
        out[54] = if self.sampled { b'1' } else { b'0' };
        // Only ASCII hex digits and dashes: always a valid header value.
        HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The W3C trace flags.
    pub fn flags(&self) -> TraceFlags {
        if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        }
    }
}

/// The incoming `tracestate` to pass on with a trusted parent: the single
/// header, if short enough and printable ASCII.
pub(crate) fn trace_state(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(&TRACESTATE).iter();
    let value = values.next()?;
    if values.next().is_some()
        || value.is_empty()
        || value.len() > MAX_TRACESTATE
        || !value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b))
    {
        return None;
    }
    Some(value.clone())
}

fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex_u8(s: &[u8]) -> Option<u8> {
    Some(nibble(s[0])? << 4 | nibble(s[1])?)
}

fn hex_u64(s: &[u8]) -> Option<u64> {
    s.iter()
        .try_fold(0u64, |acc, &b| Some(acc << 4 | u64::from(nibble(b)?)))
}

fn hex_u128(s: &[u8]) -> Option<u128> {
    s.iter()
        .try_fold(0u128, |acc, &b| Some(acc << 4 | u128::from(nibble(b)?)))
}

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_spec_example() {
        let parent = Parent::parse(VALID.as_bytes()).unwrap();
        assert_eq!(
            parent.trace_id,
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736u128)
        );
        assert_eq!(parent.span_id, SpanId::from(0x00f067aa0ba902b7u64));
        assert!(parent.sampled);
        assert_eq!(parent.header(), VALID);
        let unsampled = Parent {
            sampled: false,
            ..parent
        };
        assert!(unsampled.header().to_str().unwrap().ends_with("-00"));
    }

    #[test]
    fn refuses_hostile_or_malformed_values() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "0é-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(Parent::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn a_later_version_may_append_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-ever";
        let parent = Parent::parse(later.as_bytes()).unwrap();
        assert!(!parent.sampled);
    }

    #[test]
    fn a_repeated_header_is_no_parent() {
        let mut headers = HeaderMap::new();
        headers.append(&TRACEPARENT, HeaderValue::from_static(VALID));
        assert!(Parent::from_headers(&headers).is_some());
        headers.append(&TRACEPARENT, HeaderValue::from_static(VALID));
        assert_eq!(Parent::from_headers(&headers), None);
    }

    #[test]
    fn trace_state_is_bounded() {
        let mut headers = HeaderMap::new();
        headers.insert(&TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        assert_eq!(trace_state(&headers).unwrap(), "congo=t61rcWkgMzE");
        let long = "a=".to_owned() + &"b".repeat(MAX_TRACESTATE);
        headers.insert(&TRACESTATE, HeaderValue::from_str(&long).unwrap());
        assert_eq!(trace_state(&headers), None);
    }
}
