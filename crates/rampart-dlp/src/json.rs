//! A minimal, strict JSON walker over raw bytes.
//!
//! It does not build a tree: it reports every string and number value with
//! its byte range and its path, so the caller can rewrite just the values it
//! must and copy every other byte through untouched (key order, spacing and
//! number formatting are preserved exactly). Nesting is capped; a body that
//! is not valid JSON yields an error and the caller falls back to text mode.

use std::ops::Range;

use crate::jsonpath::Segment;

/// Nesting deeper than this is refused (and scanned as text instead).
pub const MAX_DEPTH: usize = 128;

/// Why a body was not walked as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJson {
    pub at: usize,
}

/// A string or number value.
#[derive(Debug, Clone)]
pub struct Scalar {
    /// For strings, the range *inside* the quotes; for numbers, the token.
    pub raw: Range<usize>,
    pub is_string: bool,
    /// Whether the string contains backslash escapes.
    pub escaped: bool,
}

#[derive(Debug, Clone)]
enum PathItem {
    Key {
        raw: Range<usize>,
        decoded: Option<String>,
    },
    Index(usize),
}

/// The path of the value being visited.
pub struct PathStack<'a> {
    src: &'a str,
    items: Vec<PathItem>,
}

impl PathStack<'_> {
    /// The current path as segments (allocates; call only when needed).
    pub fn segments(&self) -> Vec<Segment<'_>> {
        self.items
            .iter()
            .map(|item| match item {
                PathItem::Key {
                    decoded: Some(k), ..
                } => Segment::Key(k.as_str()),
                PathItem::Key { raw, .. } => Segment::Key(&self.src[raw.clone()]),
                PathItem::Index(i) => Segment::Index(*i),
            })
            .collect()
    }
}

/// Walks `src`, calling `visit` for every string and number value (object
/// keys are not visited).
pub fn walk<F>(src: &str, mut visit: F) -> Result<(), NotJson>
where
    F: FnMut(&PathStack<'_>, &Scalar),
{
    let mut w = Walker {
        b: src.as_bytes(),
        pos: 0,
        path: PathStack {
            src,
            items: Vec::new(),
        },
    };
    w.skip_ws();
    w.value(0, &mut visit)?;
    w.skip_ws();
    if w.pos != w.b.len() {
        return Err(NotJson { at: w.pos });
    }
    Ok(())
}

/// Decodes the inside of a JSON string (`raw` excludes the quotes).
pub fn decode_string(src: &str, raw: Range<usize>) -> Option<String> {
    let quoted = src.get(raw.start.checked_sub(1)?..raw.end + 1)?;
    serde_json::from_str(quoted).ok()
}

struct Walker<'a> {
    b: &'a [u8],
    pos: usize,
    path: PathStack<'a>,
}

impl Walker<'_> {
    fn err<T>(&self) -> Result<T, NotJson> {
        Err(NotJson { at: self.pos })
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    fn value<F: FnMut(&PathStack<'_>, &Scalar)>(
        &mut self,
        depth: usize,
        visit: &mut F,
    ) -> Result<(), NotJson> {
        if depth > MAX_DEPTH {
            return self.err();
        }
        match self.b.get(self.pos) {
            Some(b'{') => self.object(depth, visit),
            Some(b'[') => self.array(depth, visit),
            Some(b'"') => {
                let (raw, escaped) = self.string()?;
                visit(
                    &self.path,
                    &Scalar {
                        raw,
                        is_string: true,
                        escaped,
                    },
                );
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                let raw = self.number()?;
                visit(
                    &self.path,
                    &Scalar {
                        raw,
                        is_string: false,
                        escaped: false,
                    },
                );
                Ok(())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => self.err(),
        }
    }

    fn object<F: FnMut(&PathStack<'_>, &Scalar)>(
        &mut self,
        depth: usize,
        visit: &mut F,
    ) -> Result<(), NotJson> {
        self.pos += 1;
        self.skip_ws();
        if self.b.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.b.get(self.pos) != Some(&b'"') {
                return self.err();
            }
            let (raw, escaped) = self.string()?;
            let decoded = if escaped {
                Some(decode_string(self.path.src, raw.clone()).ok_or(NotJson { at: raw.start })?)
            } else {
                None
            };
            self.skip_ws();
            if self.b.get(self.pos) != Some(&b':') {
                return self.err();
            }
            self.pos += 1;
            self.skip_ws();
            self.path.items.push(PathItem::Key { raw, decoded });
            let r = self.value(depth + 1, visit);
            self.path.items.pop();
            r?;
            self.skip_ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err(),
            }
        }
    }

    fn array<F: FnMut(&PathStack<'_>, &Scalar)>(
        &mut self,
        depth: usize,
        visit: &mut F,
    ) -> Result<(), NotJson> {
        self.pos += 1;
        self.skip_ws();
        if self.b.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.skip_ws();
            self.path.items.push(PathItem::Index(index));
            let r = self.value(depth + 1, visit);
            self.path.items.pop();
            r?;
            index += 1;
            self.skip_ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err(),
            }
        }
    }

    /// Consumes a string; returns the range inside the quotes and whether it
    /// has escapes. Escape validity is checked when the string is decoded.
    fn string(&mut self) -> Result<(Range<usize>, bool), NotJson> {
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            i = next_special(self.b, i).ok_or(NotJson { at: i })?;
            match self.b[i] {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    // The escaped byte must exist and, like every byte of a
                    // string, must not be a control byte.
                    if self.b.get(i + 1).is_none_or(|&c| c < 0x20) {
                        return Err(NotJson { at: i });
                    }
                    i += 2;
                }
                // A control byte: raw newlines and the like are not JSON.
                _ => return Err(NotJson { at: i }),
            }
        }
        self.pos = i + 1;
        Ok((start..i, escaped))
    }

    fn number(&mut self) -> Result<Range<usize>, NotJson> {
        let start = self.pos;
        let mut i = start;
        if self.b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits_start = i;
        while self.b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == digits_start || (self.b[digits_start] == b'0' && i - digits_start > 1) {
            return Err(NotJson { at: start });
        }
        if self.b.get(i) == Some(&b'.') {
            i += 1;
            let frac = i;
            while self.b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac {
                return Err(NotJson { at: i });
            }
        }
        if let Some(b'e' | b'E') = self.b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = self.b.get(i) {
                i += 1;
            }
            let exp = i;
            while self.b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp {
                return Err(NotJson { at: i });
            }
        }
        self.pos = i;
        Ok(start..i)
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), NotJson> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err()
        }
    }
}

const LOW_BYTES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The first byte at or after `from` that ends the plain part of a string:
/// a quote, a backslash or a control byte (below 0x20). Eight bytes at a
/// time: string values are mostly plain text.
fn next_special(b: &[u8], from: usize) -> Option<usize> {
    let tail = b.get(from..)?;
    let mut chunks = tail.chunks_exact(8);
    let mut at = from;
    for chunk in chunks.by_ref() {
        let mask = special_mask(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])));
        if mask != 0 {
            return Some(at + (mask.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = chunks.remainder();
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}

/// The top bit of each byte of `word` that is `"`, `\\` or below 0x20 (SWAR;
/// no addition carries out of a byte, as both addends stay below 0x80).
fn special_mask(word: u64) -> u64 {
    let zero = |x: u64| !(((x & !HIGH_BITS) + !HIGH_BITS) | x) & HIGH_BITS;
    let below_0x20 = !(((word & !HIGH_BITS) + 0x60 * LOW_BYTES) | word) & HIGH_BITS;
    zero(word ^ (u64::from(b'"') * LOW_BYTES))
        | zero(word ^ (u64::from(b'\\') * LOW_BYTES))
        | below_0x20
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonpath::render;

    #[test]
    fn special_mask_marks_quotes_backslashes_and_control_bytes() {
        for c in 0..=255u8 {
            let word = u64::from_le_bytes([b'a', c, b'a', b'a', b'a', b'a', b'a', c]);
            let special = c == b'"' || c == b'\\' || c < 0x20;
            let want = if special { 0x8000_0000_0000_8000 } else { 0 };
            assert_eq!(special_mask(word), want, "{c}");
        }
        assert_eq!(next_special(b"abcdefghijklmnop\"", 0), Some(16));
        assert_eq!(next_special(b"abc", 0), None);
    }

    fn visits(src: &str) -> Result<Vec<(String, String)>, NotJson> {
        let mut out = Vec::new();
        walk(src, |path, s| {
            out.push((render(&path.segments()), src[s.raw.clone()].to_string()))
        })?;
        Ok(out)
    }

    #[test]
    fn reports_scalars_with_paths() {
        let v = visits(r#" {"a": [1, "x", {"b": -2.5e3}], "c\u0064": "y\n", "t": true} "#)
            .expect("json");
        let want = [
            ("$.a[0]", "1"),
            ("$.a[1]", "x"),
            ("$.a[2].b", "-2.5e3"),
            ("$.cd", r"y\n"),
        ];
        let got: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "\"a\nb\"",
            "[1] x",
            "tru",
            "\"\\",
            "1.",
            "{1:2}",
            "\"a\\\u{1}\"",
            "\"a\u{1f}b\"",
        ] {
            assert!(visits(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(visits(&deep).is_err());
    }
}
