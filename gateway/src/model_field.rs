//! Finds the top-level `"model"` string of a JSON object as its bytes
//! arrive, for `edge-gateway.io/model-from-body`: no parse tree, no copy of
//! the body, a fixed-size state (about 300 bytes) whatever the input.
//!
//! The scanner checks the structure (braces and brackets, strings and their
//! escapes, colons and commas, nesting up to 128 levels) and reads numbers
//! and `true`/`false`/`null` loosely, as runs of `[A-Za-z0-9+.-]`; the
//! backend still parses the body. Only a key of the outermost object
//! counts (a nested object's `model` does not), compared after unescaping
//! (`"mod\u0065l"` is `model`). The answer:
//!
//! - the input is the whole body: the body must be one object (whitespace
//!   around it allowed) and name `model` once, with a string;
//! - the input is the first bytes of a longer body: they must be a valid
//!   start of one, and the value's closing quote must be among them;
//! - the value must be 1 to [`MAX_VALUE_BYTES`] bytes of printable ASCII
//!   without space at either end, so that it is a valid header value.
//!
//! Anything else (a non-string `model`, a repeated one, invalid JSON, a
//! value cut off by the end of the input) is no model.
//!
//! Built [`with_prompt`](ModelScanner::with_prompt) (for prefix affinity),
//! it also hashes the prompt as it goes: the bytes of the outer object's
//! `prompt` and `messages` values, exactly as sent (quotes, escapes and
//! structure included), cut into blocks of [`PROMPT_BLOCK_BYTES`] whose
//! hashes are chained (block *i*'s covers blocks 0 to *i*), at most
//! [`MAX_PROMPT_BLOCKS`]; a last partial block is not hashed. Nothing is
//! copied but the block being filled.

/// The longest `model` value taken, in bytes after unescaping.
pub const MAX_VALUE_BYTES: usize = 256;

/// The deepest nesting followed; deeper input is no model.
const MAX_DEPTH: u32 = 128;

/// The size of a prompt block (the Gateway API Inference Extension's
/// default block size).
pub const PROMPT_BLOCK_BYTES: usize = 64;

/// The most prompt blocks hashed: 16 KiB of prompt, the default body peek.
pub const MAX_PROMPT_BLOCKS: usize = 256;

/// The longest key the scanner tells apart (`messages`), plus one byte so
/// that a longer key does not read as it.
const KEY_BYTES: usize = 9;

/// Stands for a character outside ASCII in an unescaped key or value: it
/// never matches `model` and is not a valid header byte.
const NOT_ASCII: u8 = 0xFF;

/// Where the scanner is in the JSON grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the outer `{`.
    Start,
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After `:` or `,` in an array: a value.
    Value,
    /// After `[`: a value or `]`.
    ValueOrEnd,
    /// After a value: `,` or the container's end.
    AfterValue,
    /// In a number or literal.
    Scalar,
    /// In a string; `key` says whether it is an object key.
    Text { key: bool, escape: Escape },
    /// After the outer object's `}`: whitespace only.
    Finished,
    /// Not JSON, too deep, or `model` named twice: no model.
    Failed,
}

/// Inside a string: plain, after `\`, or in `\uXXXX` with the digits left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    Unicode { left: u8, code: u16 },
}

/// What the outer object's `model` key held so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    Nothing,
    /// A string value, in `value[..len]`.
    Text,
    /// Not a usable string (another type, too long, not a header value).
    Unusable,
}

/// An incremental scanner for the top-level `model` string of a JSON body.
#[derive(Clone, Debug)]
pub struct ModelScanner {
    state: State,
    depth: u32,
    /// Bit `d` set: nesting level `d + 1` is an array.
    arrays: u128,
    /// The outer object's current key, unescaped, as far as it matters.
    key: [u8; KEY_BYTES],
    key_len: usize,
    /// The key just read at the outer level is `model`.
    at_model: bool,
    /// The key just read at the outer level is `prompt` or `messages`.
    at_prompt: bool,
    /// The bytes read are those of a prompt value.
    in_prompt: bool,
    /// The prompt's blocks, when asked for.
    prompt: Option<Box<BlockHasher>>,
    /// The `model` value being read, unescaped.
    value: [u8; MAX_VALUE_BYTES],
    value_len: usize,
    value_overflow: bool,
    found: Found,
}

impl Default for ModelScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelScanner {
    /// A scanner at the start of a body.
    pub fn new() -> Self {
        Self {
            state: State::Start,
            depth: 0,
            arrays: 0,
            key: [0; KEY_BYTES],
            key_len: 0,
            at_model: false,
            at_prompt: false,
            in_prompt: false,
            prompt: None,
            value: [0; MAX_VALUE_BYTES],
            value_len: 0,
            value_overflow: false,
            found: Found::Nothing,
        }
    }

    /// A scanner that also hashes the prompt's blocks.
    pub fn with_prompt() -> Self {
        Self {
            prompt: Some(Box::default()),
            ..Self::new()
        }
    }

    /// The chained hashes of the prompt's whole blocks read so far (none
    /// without [`with_prompt`](Self::with_prompt)).
    pub fn prompt_blocks(&self) -> &[u64] {
        self.prompt.as_ref().map_or(&[], |p| &p.blocks)
    }

    /// Takes the prompt's block hashes.
    pub fn take_prompt_blocks(&mut self) -> Vec<u64> {
        self.prompt
            .as_mut()
            .map(|p| std::mem::take(&mut p.blocks))
            .unwrap_or_default()
    }

    /// Whether more bytes could change the answer: false once the outer
    /// object closed or the input failed.
    pub fn wants_more(&self) -> bool {
        !matches!(self.state, State::Failed | State::Finished)
    }

    /// Reads the next bytes of the body.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.state == State::Failed {
                return;
            }
            self.step(byte);
        }
    }

    /// The model, once the bytes read so far are the whole body
    /// (`whole`) or the first bytes of a longer one.
    pub fn model(&self, whole: bool) -> Option<&str> {
        let done = match self.state {
            State::Failed => false,
            State::Finished => true,
            _ => !whole,
        };
        if !done || self.found != Found::Text {
            return None;
        }
        std::str::from_utf8(&self.value[..self.value_len]).ok()
    }

    fn step(&mut self, byte: u8) {
        let blank = matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
        self.state = match self.state {
            State::Failed => State::Failed,
            State::Finished if blank => State::Finished,
            State::Finished => State::Failed,
            _ if blank && !matches!(self.state, State::Text { .. } | State::Scalar) => self.state,
            State::Start if byte == b'{' => self.open(false),
            State::Start => State::Failed,
            State::KeyOrEnd if byte == b'}' => self.close(false),
            State::KeyOrEnd | State::Key if byte == b'"' => self.start_text(true),
            State::KeyOrEnd | State::Key => State::Failed,
            State::Colon if byte == b':' => State::Value,
            State::Colon => State::Failed,
            State::ValueOrEnd if byte == b']' => self.close(true),
            State::Value | State::ValueOrEnd => self.value_start(byte),
            State::Scalar if byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.') => {
                State::Scalar
            }
            State::Scalar => self.after_value(byte),
            State::AfterValue => self.after_value(byte),
            State::Text { key, escape } => self.text(key, escape, byte),
        };
        if self.in_prompt {
            if let Some(prompt) = &mut self.prompt {
                prompt.push(byte);
            }
            // The value ended (a string's closing quote, a container's
            // closing bracket), or the input failed.
            let done = self.depth == 1 && self.state == State::AfterValue;
            if done || self.state == State::Failed {
                self.in_prompt = false;
            }
        }
    }

    /// The first byte of a value.
    fn value_start(&mut self, byte: u8) -> State {
        if self.depth == 1 && self.at_prompt && matches!(byte, b'"' | b'[' | b'{') {
            self.in_prompt = self.prompt.is_some();
        }
        let model_value = self.depth == 1 && self.at_model;
        match byte {
            b'"' => return self.start_text(false),
            b'{' | b'[' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' if model_value => {
                self.found = Found::Unusable;
            }
            _ => {}
        }
        match byte {
            b'{' => self.open(false),
            b'[' => self.open(true),
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => State::Scalar,
            _ => State::Failed,
        }
    }

    /// After a value: `,`, or the end of its container.
    fn after_value(&mut self, byte: u8) -> State {
        let in_array = self.in_array();
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => State::AfterValue,
            b',' if in_array => State::Value,
            b',' => State::Key,
            b']' if in_array => self.close(true),
            b'}' if !in_array => self.close(false),
            _ => State::Failed,
        }
    }

    fn in_array(&self) -> bool {
        self.depth > 0 && self.arrays & (1 << (self.depth - 1)) != 0
    }

    fn open(&mut self, array: bool) -> State {
        if self.depth >= MAX_DEPTH {
            return State::Failed;
        }
        let bit = 1u128 << self.depth;
        self.arrays = if array {
            self.arrays | bit
        } else {
            self.arrays & !bit
        };
        self.depth += 1;
        if array {
            State::ValueOrEnd
        } else {
            State::KeyOrEnd
        }
    }

    fn close(&mut self, array: bool) -> State {
        if self.depth == 0 || self.in_array() != array {
            return State::Failed;
        }
        self.depth -= 1;
        if self.depth == 0 {
            State::Finished
        } else {
            State::AfterValue
        }
    }

    fn start_text(&mut self, key: bool) -> State {
        if key && self.depth == 1 {
            self.key_len = 0;
        } else if !key && self.depth == 1 && self.at_model {
            self.value_len = 0;
            self.value_overflow = false;
        }
        State::Text {
            key,
            escape: Escape::None,
        }
    }

    /// One byte of a string.
    fn text(&mut self, key: bool, escape: Escape, byte: u8) -> State {
        let next = |escape| State::Text { key, escape };
        match escape {
            Escape::None => match byte {
                b'"' => self.end_text(key),
                b'\\' => next(Escape::Backslash),
                0..=0x1F => State::Failed,
                _ => {
                    self.push(key, if byte < 0x80 { byte } else { NOT_ASCII });
                    next(Escape::None)
                }
            },
            Escape::Backslash => {
                let decoded = match byte {
                    b'"' | b'\\' | b'/' => byte,
                    b'b' => 0x08,
                    b'f' => 0x0C,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => return next(Escape::Unicode { left: 4, code: 0 }),
                    _ => return State::Failed,
                };
                self.push(key, decoded);
                next(Escape::None)
            }
            Escape::Unicode { left, code } => {
                let Some(digit) = (byte as char).to_digit(16) else {
                    return State::Failed;
                };
                // Four hex digits fit a u16; `digit` is below 16.
                let code = (code << 4) | digit as u16;
                if left > 1 {
                    return next(Escape::Unicode {
                        left: left - 1,
                        code,
                    });
                }
                let decoded = u8::try_from(code).ok().filter(u8::is_ascii);
                self.push(key, decoded.unwrap_or(NOT_ASCII));
                next(Escape::None)
            }
        }
    }

    /// Keeps an unescaped byte of the outer object's key or `model` value.
    fn push(&mut self, key: bool, byte: u8) {
        if self.depth != 1 {
            return;
        }
        if key {
            if let Some(slot) = self.key.get_mut(self.key_len) {
                *slot = byte;
                self.key_len += 1;
            }
        } else if self.at_model {
            match self.value.get_mut(self.value_len) {
                Some(slot) => {
                    *slot = byte;
                    self.value_len += 1;
                }
                None => self.value_overflow = true,
            }
        }
    }

    /// The closing quote of a string.
    fn end_text(&mut self, key: bool) -> State {
        if self.depth != 1 {
            return if key { State::Colon } else { State::AfterValue };
        }
        if key {
            let name = &self.key[..self.key_len];
            self.at_model = name == b"model";
            self.at_prompt = name == b"prompt" || name == b"messages";
            if self.at_model && self.found != Found::Nothing {
                // Named twice: which one a backend reads is its choice.
                return State::Failed;
            }
            return State::Colon;
        }
        if self.at_model {
            self.found = if !self.value_overflow && usable(&self.value[..self.value_len]) {
                Found::Text
            } else {
                Found::Unusable
            };
        }
        State::AfterValue
    }
}

/// Cuts a prompt into blocks and chains their hashes.
#[derive(Clone, Debug)]
struct BlockHasher {
    block: [u8; PROMPT_BLOCK_BYTES],
    len: usize,
    blocks: Vec<u64>,
}

impl Default for BlockHasher {
    fn default() -> Self {
        Self {
            block: [0; PROMPT_BLOCK_BYTES],
            len: 0,
            blocks: Vec::new(),
        }
    }
}

impl BlockHasher {
    fn push(&mut self, byte: u8) {
        if self.blocks.len() >= MAX_PROMPT_BLOCKS {
            return;
        }
        self.block[self.len] = byte;
        self.len += 1;
        if self.len == PROMPT_BLOCK_BYTES {
            use std::hash::BuildHasher;
            let previous = self.blocks.last().copied().unwrap_or(0);
            let state = foldhash::fast::FixedState::with_seed(previous);
            self.blocks.push(state.hash_one(self.block));
            self.len = 0;
        }
    }
}

/// Whether `value` can be a header value as it is: printable ASCII, not
/// empty, no space at either end.
fn usable(value: &[u8]) -> bool {
    matches!((value.first(), value.last()), (Some(first), Some(last)) if *first != b' ' && *last != b' ')
        && value.iter().all(|b| (0x20..0x7F).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The model of `body` read whole, in one piece and byte by byte.
    fn whole(body: &str) -> Option<String> {
        let mut scanner = ModelScanner::new();
        scanner.feed(body.as_bytes());
        let at_once = scanner.model(true).map(str::to_owned);
        let mut scanner = ModelScanner::new();
        for byte in body.as_bytes() {
            scanner.feed(std::slice::from_ref(byte));
        }
        assert_eq!(scanner.model(true).map(str::to_owned), at_once, "{body}");
        at_once
    }

    /// The model of the first bytes of a longer body.
    fn prefix(body: &str) -> Option<String> {
        let mut scanner = ModelScanner::new();
        scanner.feed(body.as_bytes());
        scanner.model(false).map(str::to_owned)
    }

    #[test]
    fn top_level_model() {
        assert_eq!(
            whole(r#"{"model":"llama-70b"}"#).as_deref(),
            Some("llama-70b")
        );
        assert_eq!(
            whole(" {\n \"model\" : \"gpt 4\" , \"stream\": true }\n").as_deref(),
            Some("gpt 4")
        );
        let after = r#"{"messages":[{"role":"user","content":"hi \"model\""},[1,2,{"a":[]}]],
            "n":-1.5e3,"x":null,"y":{},"z":[],"model":"m"}"#;
        assert_eq!(whole(after).as_deref(), Some("m"));
    }

    #[test]
    fn nested_model_keys_do_not_count() {
        assert_eq!(whole(r#"{"a":{"model":"inner"}}"#), None);
        assert_eq!(whole(r#"{"a":[{"model":"inner"}],"b":"model"}"#), None);
        assert_eq!(
            whole(r#"{"a":{"model":"inner"},"model":"outer"}"#).as_deref(),
            Some("outer")
        );
        assert_eq!(whole(r#"["model","x"]"#), None);
        assert_eq!(whole(r#"{"model_name":"x","mode":"y"}"#), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(whole(r#"{"mod\u0065l":"a\/b"}"#).as_deref(), Some("a/b"));
        assert_eq!(
            whole(r#"{"model":"q\"uote\\d"}"#).as_deref(),
            Some("q\"uote\\d")
        );
        assert_eq!(
            whole(r#"{"k\"model":"x","model":"\u0041"}"#).as_deref(),
            Some("A")
        );
        // Characters a header value cannot carry.
        assert_eq!(whole(r#"{"model":"a\nb"}"#), None);
        assert_eq!(whole(r#"{"model":"caf\u00e9"}"#), None);
        assert_eq!(whole("{\"model\":\"café\"}"), None);
        assert_eq!(whole(r#"{"model":" padded"}"#), None);
        assert_eq!(whole(r#"{"model":""}"#), None);
        // Invalid escapes.
        assert_eq!(whole(r#"{"model":"\x"}"#), None);
        assert_eq!(whole(r#"{"model":"\u00g1"}"#), None);
    }

    #[test]
    fn not_a_usable_string() {
        assert_eq!(whole(r#"{"model":7}"#), None);
        assert_eq!(whole(r#"{"model":null}"#), None);
        assert_eq!(whole(r#"{"model":{"name":"x"}}"#), None);
        assert_eq!(whole(r#"{"model":["x"]}"#), None);
        let long = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_VALUE_BYTES + 1));
        assert_eq!(whole(&long), None);
        let longest = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_VALUE_BYTES));
        assert_eq!(whole(&longest).map(|m| m.len()), Some(MAX_VALUE_BYTES));
        // Named twice: none, whatever the values.
        assert_eq!(whole(r#"{"model":"a","model":"a"}"#), None);
        assert_eq!(whole(r#"{"model":1,"model":"a"}"#), None);
    }

    #[test]
    fn invalid_json_is_no_model() {
        for body in [
            "",
            r#""model""#,
            r#"{"model" "x"}"#,
            r#"{model:"x"}"#,
            r#"{"a":1 "model":"x"}"#,
            r#"{"model":"x",}"#,
            r#"{"model":"x"]"#,
            r#"{"a":[1,2},"model":"x"}"#,
            r#"{"model":"x"}{}"#,
            r#"{"model":"x"} x"#,
            "{\"model\":\"a\tb\"}",
            r#"{"a":[}],"model":"x"}"#,
        ] {
            assert_eq!(whole(body), None, "{body}");
        }
        let deep = format!(
            r#"{{"model":"x","a":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(whole(&deep), None);
        let fits = format!(
            r#"{{"model":"x","a":{}{}}}"#,
            "[".repeat(126),
            "]".repeat(126)
        );
        assert_eq!(whole(&fits).as_deref(), Some("x"));
    }

    #[test]
    fn truncated_input() {
        // The whole body, cut short: no model.
        assert_eq!(whole(r#"{"model":"x""#), None);
        assert_eq!(whole(r#"{"model":"x","messages":["#), None);
        // The first bytes of a longer body: the value must be complete.
        assert_eq!(prefix(r#"{"model":"x","messages":["#).as_deref(), Some("x"));
        assert_eq!(prefix(r#"{"model":"llama-7"#), None);
        assert_eq!(prefix(r#"{"messages":[{"model":"x"#), None);
        // Invalid before the window ends: none.
        assert_eq!(prefix(r#"{"model":"x",]"#), None);
    }

    /// The prompt blocks of `body`, fed in pieces of `piece` bytes.
    fn prompt_of(body: &str, piece: usize) -> Vec<u64> {
        let mut scanner = ModelScanner::with_prompt();
        for chunk in body.as_bytes().chunks(piece) {
            scanner.feed(chunk);
        }
        scanner.take_prompt_blocks()
    }

    #[test]
    fn prompt_blocks_are_chained_hashes_of_the_value_as_sent() {
        let text = "a".repeat(640);
        let body = format!(r#"{{"model":"m","prompt":"{text}","max_tokens":5}}"#);
        let blocks = prompt_of(&body, 4096);
        // 642 bytes with the quotes: ten whole blocks.
        assert_eq!(blocks.len(), 10);
        assert_eq!(prompt_of(&body, 7), blocks);
        // Where the prompt sits and what else the body says do not matter.
        let moved = format!(r#"{{"temperature":0,"prompt":"{text}","model":"other"}}"#);
        assert_eq!(prompt_of(&moved, 4096), blocks);
        // A different end changes only the last blocks.
        let changed = format!(r#"{{"prompt":"{}b{}"}}"#, "a".repeat(600), "a".repeat(39));
        let other = prompt_of(&changed, 4096);
        assert_eq!(other[..9], blocks[..9]);
        assert_ne!(other[9], blocks[9]);
        // Without with_prompt, nothing is hashed.
        let mut plain = ModelScanner::new();
        plain.feed(body.as_bytes());
        assert!(plain.prompt_blocks().is_empty());
        assert_eq!(plain.model(true), Some("m"));
    }

    #[test]
    fn messages_are_hashed_and_nested_prompts_are_not() {
        let system = "s".repeat(300);
        let chat = |user: &str| {
            format!(
                r#"{{"model":"m","messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"{user}"}}]}}"#
            )
        };
        let a = prompt_of(&chat(&"x".repeat(200)), 100);
        let b = prompt_of(&chat(&"y".repeat(200)), 100);
        assert!(a.len() >= 8);
        let shared = (300 + 30) / PROMPT_BLOCK_BYTES;
        assert_eq!(a[..shared], b[..shared]);
        assert_ne!(a.last(), b.last());
        let nested = format!(r#"{{"options":{{"prompt":"{}"}}}}"#, "z".repeat(300));
        assert!(prompt_of(&nested, 4096).is_empty());
        let long_key = format!(r#"{{"messagesX":"{}"}}"#, "z".repeat(300));
        assert!(prompt_of(&long_key, 4096).is_empty());
    }

    #[test]
    fn prompt_blocks_are_bounded() {
        let body = format!(r#"{{"prompt":"{}"}}"#, "q".repeat(100_000));
        assert_eq!(prompt_of(&body, 8192).len(), MAX_PROMPT_BLOCKS);
    }

    /// JSON values of a few levels, with `model` among the keys.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let text = prop_oneof![
            Just("llama-70b".to_owned()),
            "[ -~]{0,12}",
            "\\PC{0,6}",
            Just("m".repeat(MAX_VALUE_BYTES + 1)),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![Just("model".to_owned()), "[a-z\"\\\\]{0,6}", "\\PC{0,4}"]
    }

    proptest! {
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), split in 0usize..512) {
            let mut scanner = ModelScanner::new();
            let split = split.min(bytes.len());
            scanner.feed(&bytes[..split]);
            scanner.feed(&bytes[split..]);
            let _ = scanner.model(true);
            let _ = scanner.model(false);
        }

        #[test]
        fn agrees_with_serde_json(
            fields in prop::collection::btree_map(key(), json(), 0..6),
            pretty in any::<bool>(),
            split in any::<prop::sample::Index>(),
        ) {
            let object = serde_json::Value::Object(fields.into_iter().collect());
            let body = if pretty {
                serde_json::to_vec_pretty(&object)
            } else {
                serde_json::to_vec(&object)
            };
            let body = body.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let expected = object
                .get("model")
                .and_then(|m| m.as_str())
                .filter(|m| m.len() <= MAX_VALUE_BYTES && usable(m.as_bytes()));
            let mut scanner = ModelScanner::new();
            let (first, rest) = body.split_at(split.index(body.len() + 1));
            scanner.feed(first);
            scanner.feed(rest);
            prop_assert_eq!(scanner.model(true), expected);
        }
    }
}
