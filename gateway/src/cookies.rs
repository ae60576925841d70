//! Reading cookies from request headers, as nginx does (a leaf module).

/// The value of cookie `name` in one Cookie header, read as nginx's
/// `ngx_http_parse_multi_header_lines`: pairs separated by `;` (or `,`),
/// the name compared case-insensitively, spaces allowed around `=`, the
/// value running to the next `;`.
pub(crate) fn cookie_value<'h>(line: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    let mut rest = line;
    loop {
        rest = trim_spaces(rest);
        if rest.is_empty() {
            return None;
        }
        if let Some(after) = strip_prefix_ignore_case(rest, name) {
            let after = trim_spaces(after);
            if let Some(value) = after.strip_prefix(b"=") {
                let value = trim_spaces(value);
                let end = value.iter().position(|b| *b == b';').unwrap_or(value.len());
                return Some(&value[..end]);
            }
        }
        let next = rest.iter().position(|b| matches!(b, b';' | b','))?;
        rest = &rest[next + 1..];
    }
}

fn strip_prefix_ignore_case<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

fn trim_spaces(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| *b != b' ').unwrap_or(value.len());
    &value[start..]
}
