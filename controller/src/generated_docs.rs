//! Test support: checks a generated section of `docs/compatibility.md`
//! (between `<!-- NAME:begin -->` and `<!-- NAME:end -->`) against the
//! table the code makes, or rewrites it with `UPDATE_DOCS=1`. The tests of
//! the annotation and ConfigMap registries share the page, so they take
//! turns.

use std::sync::{Mutex, PoisonError};

static PAGE: Mutex<()> = Mutex::new(());

/// Asserts that the page's section `name` is `table`, or rewrites it when
/// `UPDATE_DOCS` is set.
pub(crate) fn check_section(name: &str, table: &str) {
    let _turn = PAGE.lock().unwrap_or_else(PoisonError::into_inner);
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/compatibility.md");
    let page = std::fs::read_to_string(file).expect("docs/compatibility.md");
    let begin = format!("<!-- {name}:begin -->\n");
    let end = format!("<!-- {name}:end -->");
    let start = page
        .find(&begin)
        .map(|i| i + begin.len())
        .expect("begin marker");
    let stop = page.find(&end).expect("end marker");
    if page[start..stop] != *table && std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{table}{}", &page[..start], &page[stop..]);
        std::fs::write(file, updated).expect("write docs/compatibility.md");
        return;
    }
    assert!(
        page[start..stop] == *table,
        "docs/compatibility.md is out of date: run UPDATE_DOCS=1 cargo test -p controller compatibility_page"
    );
}
