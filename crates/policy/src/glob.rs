//! Glob patterns with `*` as the only wildcard, for scope names and claim values.
//!
//! `*` matches any run of characters, the empty run included. Every other character matches
//! itself, case-sensitively: there is no `?`, no character class and no escape, so a pattern
//! means exactly what it shows.

use std::fmt;

/// A compiled pattern: the literal pieces between its `*`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    pattern: String,
    /// `pattern` split on `*`; always at least one piece (possibly empty).
    pieces: Vec<String>,
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Glob {
        Glob {
            pattern: pattern.to_owned(),
            pieces: pattern.split('*').map(str::to_owned).collect(),
        }
    }

    /// Whether `pattern` holds a `*`, so that it is a pattern rather than a literal.
    pub(crate) fn is_pattern(pattern: &str) -> bool {
        pattern.contains('*')
    }

    /// The text before the first `*`: every match starts with it. Used to index patterns.
    pub(crate) fn literal_prefix(&self) -> &str {
        self.pieces.first().map_or("", String::as_str)
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// The first piece must start the text and the last must end it; the pieces between are
    /// found left to right, each at its earliest place. Taking the earliest place is never
    /// wrong with `*` as the only wildcard, so this runs in linear time without backtracking.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return text.is_empty(),
        };
        let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return remaining.is_empty();
        };
        for piece in middle {
            match remaining.find(piece.as_str()) {
                Some(at) => remaining = &remaining[at + piece.len()..],
                None => return false,
            }
        }
        remaining.ends_with(last.as_str())
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A slow, obviously correct matcher to compare against.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|i| reference(rest, &text[i..])),
            Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
        }
    }

    #[test]
    fn a_pattern_without_a_star_matches_only_itself() {
        let glob = Glob::new("orders");
        assert!(glob.matches("orders"));
        assert!(!glob.matches("orders-archive"));
        assert!(!glob.matches("Orders"));
        assert!(!glob.matches(""));
    }

    #[test]
    fn a_star_matches_any_run_including_the_empty_one() {
        let glob = Glob::new("tenant-*");
        assert!(glob.matches("tenant-"));
        assert!(glob.matches("tenant-42"));
        assert!(!glob.matches("tenant"));
        assert!(!glob.matches("xtenant-42"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*b*c").matches("abc"));
        assert!(Glob::new("a*b*c").matches("a-b-b-c"));
        assert!(!Glob::new("a*b*c").matches("a-c-b"));
        assert!(!Glob::new("ab*ba").matches("aba"));
    }

    #[test]
    fn the_literal_prefix_is_the_text_before_the_first_star() {
        assert_eq!(Glob::new("tenant-*-eu").literal_prefix(), "tenant-");
        assert_eq!(Glob::new("*-eu").literal_prefix(), "");
        assert_eq!(Glob::new("plain").literal_prefix(), "plain");
    }

    proptest! {
        #[test]
        fn matching_agrees_with_the_reference(
            pattern in "[ab*]{0,8}",
            text in "[ab]{0,10}",
        ) {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(Glob::new(&pattern).matches(&text), reference(&p, &t));
        }

        #[test]
        fn every_match_starts_with_the_literal_prefix(
            pattern in "[ab*]{0,8}",
            text in "[ab]{0,10}",
        ) {
            let glob = Glob::new(&pattern);
            if glob.matches(&text) {
                prop_assert!(text.starts_with(glob.literal_prefix()));
            }
        }
    }
}
