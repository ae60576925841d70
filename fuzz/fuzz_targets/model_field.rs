//! A request body as a client sends it, in two pieces: the model scanner
//! must never panic, must not depend on where the body is split, must give
//! a valid header value, and must agree with serde_json on valid objects.
#![no_main]

use gateway::model_field::{MAX_VALUE_BYTES, ModelScanner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let mut whole = ModelScanner::new();
    whole.feed(body);
    let mut pieces = ModelScanner::new();
    let (first, rest) = body.split_at(usize::from(split).min(body.len()));
    pieces.feed(first);
    pieces.feed(rest);
    assert_eq!(whole.model(true), pieces.model(true));
    assert_eq!(whole.model(false), pieces.model(false));
    if let Some(model) = whole.model(true) {
        assert!(model.len() <= MAX_VALUE_BYTES);
        assert!(http::HeaderValue::from_str(model).is_ok());
        assert_eq!(whole.model(false), Some(model));
    }
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) {
        let expected = object.get("model").and_then(|m| m.as_str());
        if let Some(found) = whole.model(true) {
            assert_eq!(Some(found), expected);
        }
    }
});
