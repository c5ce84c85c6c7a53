//! A small JSON-path subset for field rules: `$`, `.name`, `['name']`,
//! `["name"]`, `[3]`, `[*]` and `.*`.
//!
//! A selector matches a value when it matches the value's path or a prefix
//! of it, so `$.user` covers every scalar inside `user`.

use std::fmt;

/// One selector step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    AnyKey,
    AnyIndex,
}

/// A parsed selector such as `$.items[*].card`.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonPath {
    source: String,
    steps: Vec<Step>,
}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPath({})", self.source)
    }
}

/// A path segment of a concrete value, as the JSON walker sees it.
#[derive(Debug, Clone, Copy)]
pub enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Why a selector did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub path: String,
    pub at: usize,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON path {:?} at byte {}", self.path, self.at)
    }
}

impl std::error::Error for PathError {}

impl JsonPath {
    /// Parses a selector; it must start with `$`.
    pub fn parse(path: &str) -> Result<JsonPath, PathError> {
        let err = |at| PathError {
            path: path.to_string(),
            at,
        };
        let b = path.as_bytes();
        if b.first() != Some(&b'$') {
            return Err(err(0));
        }
        let mut steps = Vec::new();
        let mut i = 1;
        while i < b.len() {
            match b[i] {
                b'.' => {
                    let start = i + 1;
                    let mut j = start;
                    while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                        j += 1;
                    }
                    match &path[start..j] {
                        "" => return Err(err(start)),
                        "*" => steps.push(Step::AnyKey),
                        name => steps.push(Step::Key(name.to_string())),
                    }
                    i = j;
                }
                b'[' => {
                    let close = path[i..].find(']').map(|c| i + c).ok_or_else(|| err(i))?;
                    steps.push(parse_bracket(&path[i + 1..close]).ok_or_else(|| err(i))?);
                    i = close + 1;
                }
                _ => return Err(err(i)),
            }
        }
        Ok(JsonPath {
            source: path.to_string(),
            steps,
        })
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the selector matches `path` or one of its ancestors.
    pub fn matches(&self, path: &[Segment<'_>]) -> bool {
        path.len() >= self.steps.len()
            && self
                .steps
                .iter()
                .zip(path)
                .all(|(step, seg)| match (step, seg) {
                    (Step::Key(k), Segment::Key(s)) => k == s,
                    (Step::Index(n), Segment::Index(i)) => n == i,
                    (Step::AnyKey, Segment::Key(_)) | (Step::AnyIndex, Segment::Index(_)) => true,
                    _ => false,
                })
    }
}

fn parse_bracket(inner: &str) -> Option<Step> {
    let inner = inner.trim();
    if inner == "*" {
        return Some(Step::AnyIndex);
    }
    for quote in ['\'', '"'] {
        if inner.len() >= 2 && inner.starts_with(quote) && inner.ends_with(quote) {
            return Some(Step::Key(inner[1..inner.len() - 1].to_string()));
        }
    }
    inner.parse().ok().map(Step::Index)
}

/// Renders a concrete path for findings. Keys that are not short plain
/// identifiers (they might be data, e.g. an e-mail used as a map key) are
/// shown as `[?]`.
pub fn render(path: &[Segment<'_>]) -> String {
    let mut out = String::from("$");
    for seg in path {
        match seg {
            Segment::Key(k) if is_plain_key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Key(_) => out.push_str("[?]"),
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

fn is_plain_key(k: &str) -> bool {
    let b = k.as_bytes();
    (1..=32).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        && !b.iter().any(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match_table() {
        use Segment::{Index as I, Key as K};
        let cases: &[(&str, &[Segment<'_>], bool)] = &[
            ("$.user.ssn", &[K("user"), K("ssn")], true),
            ("$.user.ssn", &[K("user"), K("name")], false),
            ("$.user", &[K("user"), K("ssn")], true),
            ("$.items[*].card", &[K("items"), I(3), K("card")], true),
            ("$.items[1].card", &[K("items"), I(3), K("card")], false),
            ("$['a b'].c", &[K("a b"), K("c")], true),
            ("$[\"x\"]", &[K("x")], true),
            ("$.*.ssn", &[K("anything"), K("ssn")], true),
            ("$.*.ssn", &[I(0), K("ssn")], false),
            ("$", &[K("x")], true),
        ];
        for (sel, path, want) in cases {
            let p = JsonPath::parse(sel).expect(sel);
            assert_eq!(p.matches(path), *want, "{sel}");
        }
    }

    #[test]
    fn bad_selectors_are_errors() {
        for bad in ["user.ssn", "$.", "$[", "$[x]", "$..a", "$a"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn render_hides_data_like_keys() {
        let p = [
            Segment::Key("users"),
            Segment::Key("jane@example.com"),
            Segment::Index(2),
            Segment::Key("AKIAIOSFODNN7EXAMPLE"),
        ];
        assert_eq!(render(&p), "$.users[?][2][?]");
    }
}
