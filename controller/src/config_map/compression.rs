//! The compression keys, read together into one setting: `use-gzip`,
//! `gzip-level`, `gzip-min-length`, `gzip-types`, `gzip-disable`,
//! `enable-brotli`, `brotli-level`, `brotli-min-length`, `brotli-types`,
//! with ingress-nginx's defaults.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway::compress::{Codec, Compression, MimeTypes, UserAgents};

use super::{KeyError, Read};
use crate::annotations::values::boolean;

/// The keys read here.
pub(super) const KEYS: [&str; 9] = [
    "use-gzip",
    "gzip-level",
    "gzip-min-length",
    "gzip-types",
    "gzip-disable",
    "enable-brotli",
    "brotli-level",
    "brotli-min-length",
    "brotli-types",
];

/// ingress-nginx's `gzip-types` (`config.go`).
const GZIP_TYPES: &str = "application/atom+xml application/javascript application/x-javascript application/json application/rss+xml application/vnd.ms-fontobject application/x-font-ttf application/x-web-app-manifest+json application/xhtml+xml application/xml font/opentype image/svg+xml image/x-icon text/css text/javascript text/plain text/x-component";
/// ingress-nginx's `brotli-types`.
const BROTLI_TYPES: &str = "application/xml+rss application/atom+xml application/javascript application/x-javascript application/json application/rss+xml application/vnd.ms-fontobject application/x-font-ttf application/x-web-app-manifest+json application/xhtml+xml application/xml font/opentype image/svg+xml image/x-icon text/css text/javascript text/plain text/x-component";

/// Reads the keys into `read.config.globals.compression`.
pub(super) fn read(data: &BTreeMap<String, String>, read: &mut Read) {
    if !KEYS.iter().any(|k| data.contains_key(*k)) {
        return;
    }
    let value = |key: &str| data.get(key).map(|v| v.trim());
    let mut errors = Vec::new();
    let mut parse = |key: &str, result: Result<(), String>| {
        if let Err(message) = result {
            errors.push((key.to_owned(), message));
        }
    };
    let mut flag = |key: &str| match value(key) {
        None => false,
        Some(v) => boolean(v).unwrap_or_else(|message| {
            parse(key, Err(message));
            false
        }),
    };
    let (gzip_on, brotli_on) = (flag("use-gzip"), flag("enable-brotli"));
    let mut compression = Compression::default();
    if gzip_on {
        let mut codec = codec(1, 256, GZIP_TYPES);
        level(&mut codec, value("gzip-level"), 1..=9, &mut |r| {
            parse("gzip-level", r);
        });
        min_length(&mut codec, value("gzip-min-length"), &mut |r| {
            parse("gzip-min-length", r);
        });
        types(&mut codec, value("gzip-types"), &mut |r| {
            parse("gzip-types", r);
        });
        compression.gzip = Some(codec);
        if let Some(list) = value("gzip-disable").filter(|v| !v.is_empty()) {
            match UserAgents::parse(list) {
                Ok(agents) => compression.gzip_disable = Some(agents),
                Err(message) => parse("gzip-disable", Err(message)),
            }
        }
    }
    if brotli_on {
        let mut codec = codec(4, 20, BROTLI_TYPES);
        level(&mut codec, value("brotli-level"), 0..=11, &mut |r| {
            parse("brotli-level", r);
        });
        min_length(&mut codec, value("brotli-min-length"), &mut |r| {
            parse("brotli-min-length", r);
        });
        types(&mut codec, value("brotli-types"), &mut |r| {
            parse("brotli-types", r);
        });
        compression.brotli = Some(codec);
    }
    for (key, message) in errors {
        read.errors.push(KeyError {
            value: data.get(&key).cloned().unwrap_or_default(),
            key,
            message,
        });
    }
    read.config.globals.compression = compression.is_on().then(|| Arc::new(compression));
}

fn codec(level: u32, min_length: u64, types: &str) -> Codec {
    Codec {
        level,
        min_length,
        // The built-in lists always parse.
        types: MimeTypes::parse(types).unwrap_or_default(),
    }
}

fn level(
    codec: &mut Codec,
    value: Option<&str>,
    range: std::ops::RangeInclusive<u32>,
    report: &mut dyn FnMut(Result<(), String>),
) {
    let Some(value) = value else { return };
    match value.parse::<u32>() {
        Ok(level) if range.contains(&level) => codec.level = level,
        _ => report(Err(format!(
            "must be a level from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}

fn min_length(codec: &mut Codec, value: Option<&str>, report: &mut dyn FnMut(Result<(), String>)) {
    let Some(value) = value else { return };
    match value.parse::<u64>() {
        Ok(length) => codec.min_length = length,
        Err(_) => report(Err("must be a whole number of bytes".to_owned())),
    }
}

fn types(codec: &mut Codec, value: Option<&str>, report: &mut dyn FnMut(Result<(), String>)) {
    let Some(value) = value else { return };
    match MimeTypes::parse(value) {
        Ok(types) => codec.types = types,
        Err(message) => report(Err(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::read;
    use std::collections::BTreeMap;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn off_unless_turned_on() {
        let r = read(&data(&[("gzip-level", "5")]));
        assert!(r.config.globals.compression.is_none());
        assert!(r.errors.is_empty());
    }

    #[test]
    fn keys_build_the_codecs() {
        let r = read(&data(&[
            ("use-gzip", "true"),
            ("gzip-level", "6"),
            ("gzip-min-length", "1000"),
            ("gzip-types", "application/json text/event-stream"),
            ("gzip-disable", "msie6"),
            ("enable-brotli", "true"),
        ]));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let c = r.config.globals.compression.unwrap();
        let gzip = c.gzip.as_ref().unwrap();
        assert_eq!((gzip.level, gzip.min_length), (6, 1000));
        let brotli = c.brotli.as_ref().unwrap();
        assert_eq!((brotli.level, brotli.min_length), (4, 20));
        assert!(c.gzip_disable.is_some());
    }

    #[test]
    fn bad_values_keep_the_defaults_and_are_reported() {
        let r = read(&data(&[
            ("use-gzip", "true"),
            ("gzip-level", "10"),
            ("gzip-min-length", "-1"),
            ("gzip-types", "not-a-type"),
            ("gzip-disable", "(unclosed"),
            ("enable-brotli", "yes"),
        ]));
        assert_eq!(r.errors.len(), 5, "{:?}", r.errors);
        let c = r.config.globals.compression.unwrap();
        assert_eq!(c.gzip.as_ref().unwrap().level, 1);
        assert!(c.brotli.is_none());
    }
}
