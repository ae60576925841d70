//! A manifest file as anyone allowed to write objects could write it: the
//! parser and `compile()` must never panic, whatever the text, and the table
//! must answer lookups.
#![no_main]

use controller::manifests::parse_documents;
use controller::{CompileOptions, Object, Snapshot, compile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let json = text.trim_start().starts_with('{');
    let Ok(documents) = parse_documents(text, json) else { return };
    let mut snapshot = Snapshot::default();
    for document in documents {
        if let Ok(Some(object)) = Object::from_value(document) {
            snapshot.apply(object);
        }
    }
    let mut options = CompileOptions::default();
    options.class.watch_without_class = true;
    let compiled = compile(&snapshot, &options);
    for path in [&b"/"[..], b"/api/v1/predict/1", b"/a/b/c"] {
        let _ = compiled.table.lookup(Some("localhost"), path);
        let _ = compiled.table.lookup(None, path);
    }
});
