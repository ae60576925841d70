//! The literal bytes every path of a regex union starts with, compared
//! before the union's automaton runs on the rest of a request path.
//!
//! Regex paths of one host mostly share a literal start
//! (`/api/v1/predict/m12...`); an automaton spends its time on the bytes
//! it runs through, and at 100,000 Ingresses each of those is a cold
//! transition row. So a union's patterns are split: the bytes all of them
//! require first (letters under case folding compared either case, as the
//! `[Aa]` class the parser made of them; other bytes as they are), and
//! what follows, which the automaton is built from, still anchored at its
//! start. A request whose path lacks the prefix matches none of them.
//!
//! The split is made on the parsed patterns (`regex_syntax`'s `Hir`), not
//! on their text, and only when it cannot change a match: never through a
//! look-around assertion that would then see a different previous byte.

use regex_syntax::hir::{Class, Hir, HirKind, Look, LookSet};

/// Bytes a path must start with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LiteralPrefix {
    /// ASCII letters in lower case where `folded` says so.
    bytes: Box<[u8]>,
    /// Whether each byte matches either ASCII case.
    folded: Box<[bool]>,
}

impl LiteralPrefix {
    /// What follows the prefix in `path`, if `path` starts with it.
    pub(crate) fn strip<'p>(&self, path: &'p [u8]) -> Option<&'p [u8]> {
        let (head, rest) = path.split_at_checked(self.bytes.len())?;
        head.iter()
            .zip(&self.bytes)
            .zip(&self.folded)
            .all(|((&got, &want), &folded)| {
                got == want || (folded && got.to_ascii_lowercase() == want)
            })
            .then_some(rest)
    }

    /// The number of bytes it requires.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// One byte a pattern requires: its value (lower case when folded) and
/// whether either ASCII case matches.
type Unit = (u8, bool);

/// Splits start-anchored patterns (each `^` followed by the rest) into the
/// longest prefix all of them require and each one's remainder, anchored
/// in turn. `None` when they share no prefix, or when splitting could
/// change what matches.
pub(crate) fn split(patterns: &[Hir]) -> Option<(LiteralPrefix, Vec<Hir>)> {
    let mut common: Option<Vec<Unit>> = None;
    for pattern in patterns {
        let units = leading_units(body(pattern)?);
        let shared = match &common {
            None => units.len(),
            Some(common) => common
                .iter()
                .zip(&units)
                .take_while(|(a, b)| a == b)
                .count(),
        };
        let mut kept = common.unwrap_or(units);
        kept.truncate(shared);
        if kept.is_empty() {
            return None;
        }
        common = Some(kept);
    }
    let common = common?;
    let rests = patterns
        .iter()
        .map(|p| remainder(body(p)?, common.len()))
        .collect::<Option<Vec<_>>>()?;
    let prefix = LiteralPrefix {
        bytes: common.iter().map(|(b, _)| *b).collect(),
        folded: common.iter().map(|(_, f)| *f).collect(),
    };
    Some((prefix, rests))
}

/// The items of a start-anchored pattern after its `^`s.
fn body(pattern: &Hir) -> Option<&[Hir]> {
    let HirKind::Concat(items) = pattern.kind() else {
        return None;
    };
    let start = items
        .iter()
        .take_while(|h| matches!(h.kind(), HirKind::Look(Look::Start)))
        .count();
    (start > 0).then(|| &items[start..])
}

/// The bytes the items require first: literal bytes, and classes of one
/// ASCII letter in either case.
fn leading_units(items: &[Hir]) -> Vec<Unit> {
    let mut units = Vec::new();
    for item in items {
        match item.kind() {
            HirKind::Literal(literal) => units.extend(literal.0.iter().map(|b| (*b, false))),
            HirKind::Class(class) => match folded_letter(class) {
                Some(letter) => units.push((letter, true)),
                None => break,
            },
            _ => break,
        }
    }
    units
}

/// The lower-case letter a class is, when it is exactly `[Xx]`.
fn folded_letter(class: &Class) -> Option<u8> {
    let Class::Bytes(class) = class else {
        return None;
    };
    let [upper, lower] = class.ranges() else {
        return None;
    };
    let single = |r: &regex_syntax::hir::ClassBytesRange| (r.start() == r.end()).then(|| r.start());
    let (upper, lower) = (single(upper)?, single(lower)?);
    (lower.is_ascii_lowercase() && upper == lower.to_ascii_uppercase()).then_some(lower)
}

/// The items after their first `skip` required bytes, anchored at the
/// start again; `None` if what follows could test the byte before it.
fn remainder(items: &[Hir], mut skip: usize) -> Option<Hir> {
    let mut rest = Vec::with_capacity(items.len() + 1);
    rest.push(Hir::look(Look::Start));
    let mut items = items.iter();
    for item in items.by_ref() {
        if skip == 0 {
            rest.push(item.clone());
            break;
        }
        match item.kind() {
            HirKind::Literal(literal) if literal.0.len() > skip => {
                rest.push(Hir::literal(&literal.0[skip..]));
                break;
            }
            HirKind::Literal(literal) => skip -= literal.0.len(),
            _ => skip -= 1,
        }
    }
    rest.extend(items.cloned());
    // Only end assertions are sure to read the same after the split: a
    // word boundary or a start anchor anywhere in the rest may be tested
    // where the rest begins (after `x*` matching nothing, say), and would
    // then see the haystack's start instead of the prefix's last byte.
    let ends = LookSet::empty()
        .insert(Look::End)
        .insert(Look::EndLF)
        .insert(Look::EndCRLF);
    let looks = rest[1..].iter().fold(LookSet::empty(), |looks, item| {
        looks.union(item.properties().look_set())
    });
    looks.subtract(ends).is_empty().then(|| Hir::concat(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(patterns: &[&str]) -> Vec<Hir> {
        let config = regex_automata::util::syntax::Config::new()
            .unicode(false)
            .utf8(false)
            .case_insensitive(true);
        let anchored: Vec<String> = patterns.iter().map(|p| format!("^(?:{p})")).collect();
        regex_automata::util::syntax::parse_many_with(&anchored, &config).unwrap()
    }

    #[test]
    fn the_common_start_is_compared_in_either_case_where_the_pattern_folds() {
        let (prefix, rests) =
            split(&parse(&["/api/v1/m1", "/api/v1/m2/(a|b)", "/API/V2"])).unwrap();
        assert_eq!(prefix.len(), 6, "/api/v");
        assert_eq!(rests.len(), 3);
        assert_eq!(prefix.strip(b"/Api/V1/m1"), Some(&b"1/m1"[..]));
        assert_eq!(prefix.strip(b"/apx/v1"), None);
        assert_eq!(prefix.strip(b"/api"), None, "shorter than the prefix");
        let (exact, _) = split(&parse(&["(?-i)/Api/x", "(?-i)/Api/y"])).unwrap();
        assert_eq!(exact.strip(b"/Api/x"), Some(&b"x"[..]));
        assert_eq!(
            exact.strip(b"/api/x"),
            None,
            "case-sensitive letters stay exact"
        );
    }

    #[test]
    fn no_split_without_a_shared_start_or_across_a_boundary_test() {
        assert!(
            split(&parse(&["/a", "x|/c"])).is_none(),
            "an alternation first"
        );
        assert!(split(&parse(&["/a", "b"])).is_none(), "nothing shared");
        assert!(
            split(&parse(&["/ab\\bc", "/ab\\b"])).is_none(),
            "\\b right after it"
        );
        assert!(
            split(&parse(&["/abx*\\b", "/aby"])).is_none(),
            "\\b after what may match nothing"
        );
        assert!(
            split(&parse(&["/ab/x$", "/ab/y"])).is_some(),
            "an end anchor reads the same"
        );
    }
}
