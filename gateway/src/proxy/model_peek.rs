//! Phase 4a, `edge-gateway.io/model-from-body`: once the request passed the
//! route's admission checks (limits, address lists, authentication: a
//! refused request's body is never read) and before the canary decision,
//! read the first bytes of a JSON request body (at most `model-body-peek`,
//! each read within `client-body-timeout`), find its top-level `model`
//! string (see [`crate::model_field`]) and put it in the configured header,
//! so that `canary-by-header` rules can route on it. The same read serves
//! `prefix-affinity` and LoRA affinity: the prompt's block hashes and the
//! model go to the picker in the request's extensions.
//!
//! The header always reflects the body of a JSON request: a client-sent
//! value is replaced, or removed when the body names no usable model.
//! Requests without a body or with another content type keep their headers
//! as sent. The frames read are kept as they arrived and sent upstream
//! first, then the rest of the body streams as before: nothing is changed,
//! nothing beyond the window is buffered, `Content-Length` stays.

use std::collections::VecDeque;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::error::ProxyError;
use crate::backend::balance::request::BodySignals;
use crate::backend::balance::server_load::adapter_hash;
use crate::model_field::ModelScanner;
use crate::settings::ProxySettings;

/// The body frames read by [`peek`], carried in the request's extensions
/// (which need `Clone`, as [`Frame`] is not) to the upstream body (see
/// [`take`]).
#[derive(Clone, Debug, Default)]
struct Peeked(VecDeque<Part>);

/// One frame of [`Peeked`].
#[derive(Clone, Debug)]
enum Part {
    Data(Bytes),
    Trailers(HeaderMap),
}

impl Part {
    fn from_frame(frame: Frame<Bytes>) -> Option<Self> {
        match frame.into_data() {
            Ok(data) => Some(Self::Data(data)),
            Err(frame) => frame.into_trailers().ok().map(Self::Trailers),
        }
    }

    fn into_frame(self) -> Frame<Bytes> {
        match self {
            Self::Data(data) => Frame::data(data),
            Self::Trailers(trailers) => Frame::trailers(trailers),
        }
    }
}

/// Reads the first bytes of a JSON body when the route asks for its model
/// (`model-from-body`) or for what the picker reads in it (prompt blocks
/// and model, see [`crate::backend::balance::request`]), and sets or removes the
/// model header. A client that stalls for `client-body-timeout` gets 408;
/// one that fails mid-body ends the request.
pub(crate) async fn peek(
    req: &mut Request<Incoming>,
    settings: &ProxySettings,
) -> Result<(), ProxyError> {
    let header = settings.model_from_body.as_ref();
    let for_picker = settings.signals.body_peek;
    let Some(window) = header.map(|m| m.peek).max(for_picker) else {
        return Ok(());
    };
    if req.body().is_end_stream() || !is_json(req.headers()) || too_large(req.headers(), settings) {
        return Ok(());
    }
    let mut scanner = match for_picker {
        Some(_) => ModelScanner::with_prompt(),
        None => ModelScanner::new(),
    };
    let mut frames = VecDeque::new();
    let mut read = 0usize;
    let mut ended = false;
    while read < window && scanner.wants_more() {
        let next = tokio::time::timeout(settings.client_body_timeout, req.body_mut().frame());
        let frame = match next.await {
            Err(_) => return Err(ProxyError::ClientBodyTimeout),
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(Err(error))) => return Err(ProxyError::client_body(&error)),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            let room = window - read;
            scanner.feed(data.get(..room).unwrap_or(data));
            read = read.saturating_add(data.len());
        }
        frames.extend(Part::from_frame(frame));
        ended = req.body().is_end_stream();
    }
    // The scanner saw the whole body only if it ended within the window.
    let whole = ended && read <= window;
    let model = scanner.model(whole);
    let model_hash = model.map_or(0, |m| adapter_hash(m.as_bytes()));
    if let Some(header) = header {
        match model.and_then(|m| HeaderValue::from_str(m).ok()) {
            Some(value) => {
                req.headers_mut().insert(header.header.clone(), value);
            }
            None => {
                req.headers_mut().remove(&header.header);
            }
        }
    }
    if for_picker.is_some() {
        let blocks = scanner.take_prompt_blocks();
        req.extensions_mut().insert(BodySignals {
            blocks,
            model: model_hash,
        });
    }
    req.extensions_mut().insert(Peeked(frames));
    Ok(())
}

/// The frames [`peek`] read from this request's body, to be sent first.
pub(crate) fn take(extensions: &mut http::Extensions) -> VecDeque<Frame<Bytes>> {
    let peeked = extensions.remove::<Peeked>().unwrap_or_default();
    peeked.0.into_iter().map(Part::into_frame).collect()
}

/// `application/json` or any `+json` type, parameters aside.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype
                    .get(subtype.len() - 5..)
                    .is_some_and(|s| s.eq_ignore_ascii_case("+json")))
}

/// A body declared larger than `proxy-body-size` is refused unread by the
/// admission phase: it is not read here either.
fn too_large(headers: &HeaderMap, settings: &ProxySettings) -> bool {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    matches!((declared, settings.max_body_size), (Some(length), Some(limit)) if length > limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    #[test]
    fn json_content_types() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
            "application/merge-patch+JSON ;x=y",
        ] {
            assert!(is_json(&headers(json)), "{json}");
        }
        for other in [
            "text/plain",
            "application/jsonl",
            "application/x-ndjson",
            "text/json",
            "application/+json",
            "json",
            "",
        ] {
            assert!(!is_json(&headers(other)), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn declared_size_over_the_limit_is_not_read() {
        let settings = ProxySettings {
            max_body_size: Some(10),
            ..ProxySettings::default()
        };
        let mut h = headers("application/json");
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("11"));
        assert!(too_large(&h, &settings));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert!(!too_large(&h, &settings));
        let unlimited = ProxySettings {
            max_body_size: None,
            ..ProxySettings::default()
        };
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("99999999"));
        assert!(!too_large(&h, &unlimited));
    }
}
