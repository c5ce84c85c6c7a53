//! `${NAME}` references to environment variables inside double-quoted strings.
//!
//! Expansion happens on the raw text before parsing so that error positions
//! stay on the same lines. Only basic (double-quoted) strings are expanded,
//! and the value is escaped for that context, so a variable can never inject
//! TOML syntax. `$${` stands for a literal `${`. Comments and single-quoted
//! literal strings are left alone.

use crate::error::ConfigError;

/// Expands `${NAME}` using `lookup`; unknown names are errors with their line.
pub fn expand(
    src: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<ConfigError>> {
    let mut out = String::with_capacity(src.len());
    let mut errors = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    let mut line = 1;
    // The quote that opened the current string: None outside strings.
    let mut in_str: Option<&'static str> = None;
    while i < b.len() {
        let rest = &src[i..];
        match in_str {
            None => {
                let (token, next) = if rest.starts_with("\"\"\"") {
                    (Some("\"\"\""), 3)
                } else if rest.starts_with("'''") {
                    (Some("'''"), 3)
                } else if rest.starts_with('"') {
                    (Some("\""), 1)
                } else if rest.starts_with('\'') {
                    (Some("'"), 1)
                } else {
                    (None, 0)
                };
                if let Some(t) = token {
                    in_str = Some(t);
                    out.push_str(t);
                    i += next;
                    continue;
                }
                if b[i] == b'#' {
                    let end = rest.find('\n').unwrap_or(rest.len());
                    out.push_str(&rest[..end]);
                    i += end;
                    continue;
                }
            }
            Some(q) => {
                let basic = q.starts_with('"');
                if basic && b[i] == b'\\' && i + 1 < b.len() {
                    let n = rest.chars().nth(1).map_or(1, char::len_utf8);
                    out.push_str(&rest[..1 + n]);
                    i += 1 + n;
                    continue;
                }
                if rest.starts_with(q) {
                    in_str = None;
                    out.push_str(q);
                    i += q.len();
                    continue;
                }
                if basic && rest.starts_with("$${") {
                    out.push_str("${");
                    i += 3;
                    continue;
                }
                if basic && rest.starts_with("${") {
                    if let Some(end) = rest.find('}') {
                        let name = &rest[2..end];
                        match lookup(name) {
                            Some(v) => escape_into(&mut out, &v),
                            None => errors.push(ConfigError::at_line(
                                line,
                                format!("environment variable {name:?} is not set"),
                            )),
                        }
                        i += end + 1;
                        continue;
                    }
                }
            }
        }
        let c = rest.chars().next().expect("non-empty");
        if c == '\n' {
            line += 1;
            if in_str.is_some_and(|q| q.len() == 1) {
                in_str = None; // an unterminated one-line string: let the parser report it
            }
        }
        out.push(c);
        i += c.len_utf8();
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.com".into()),
            "TRICKY" => Some("a\"b\\c\nd".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_in_basic_strings_only() {
        let src = "a = \"${HOST}\"\nb = '${HOST}'\n# ${HOST}\nc = \"$${HOST}\"\n";
        let out = expand(src, env).unwrap();
        assert_eq!(
            out,
            "a = \"example.com\"\nb = '${HOST}'\n# ${HOST}\nc = \"${HOST}\"\n"
        );
    }

    #[test]
    fn values_are_escaped_and_parse_back() {
        let out = expand("v = \"x${TRICKY}y\"\n", env).unwrap();
        let t: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(t["v"].as_str().unwrap(), "xa\"b\\c\ndy");
    }

    #[test]
    fn unknown_variable_names_line() {
        let errs = expand("a = 1\nb = \"${NOPE}\"\n", env).unwrap_err();
        assert_eq!(errs[0].line, Some(2));
        assert!(errs[0].message.contains("NOPE"));
    }
}
