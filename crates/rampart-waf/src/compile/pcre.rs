//! PCRE → `regex` crate translation for `@rx`.
//!
//! ModSecurity compiles patterns with PCRE in byte mode with DOTALL and
//! MULTILINE. The `regex` crate is linear-time and lacks a few PCRE
//! constructs; this module rewrites the ones that have a faithful
//! match/no-match equivalent and refuses the rest with a reason:
//!
//! * possessive quantifiers (`a++`) and atomic groups (`(?>…)`) only limit
//!   backtracking; without backtracking they mean the same as the plain
//!   forms for *whether* a match exists in the patterns CRS writes;
//! * `\Z`, `\h`, `\v`, `\e`, `\Q…\E` have direct spellings;
//! * non-ASCII characters are turned into their UTF-8 bytes, because PCRE
//!   in byte mode sees bytes, not code points;
//! * lookarounds, backreferences, recursion and conditionals are refused.

use regex::bytes::{Regex, RegexBuilder};

/// Generous limits: CRS has patterns of many kilobytes.
const SIZE_LIMIT: usize = 64 << 20;
const DFA_SIZE_LIMIT: usize = 32 << 20;

/// Compiles a PCRE pattern with ModSecurity's flags, or says why not.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern)?;
    RegexBuilder::new(&translated)
        .unicode(false)
        .dot_matches_new_line(true)
        .multi_line(true)
        .octal(true)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("regex crate rejected the translation: {e}"))
}

/// Rewrites PCRE syntax into `regex` syntax (non-Unicode mode).
pub fn translate(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => i = escape(&chars, i, in_class, &mut out)?,
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                i += 1;
                // A leading `^` and then `]` are literal members in PCRE.
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '[' if in_class => {
                // POSIX class `[:alpha:]` or a literal `[`.
                if chars.get(i + 1) == Some(&':') {
                    let end = find_posix_end(&chars, i + 2);
                    if let Some(end) = end {
                        out.extend(&chars[i..=end]);
                        i = end + 1;
                        continue;
                    }
                }
                out.push_str("\\[");
                i += 1;
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
                i += 1;
            }
            '(' if !in_class => i = group(&chars, i, &mut out)?,
            '*' | '+' | '?' | '}' if !in_class => {
                out.push(c);
                i += 1;
                // Possessive `X*+`: drop the `+` (see the module docs).
                if chars.get(i) == Some(&'+') && is_quantifier_end(&chars, i - 1) {
                    i += 1;
                }
            }
            c if !c.is_ascii() => {
                push_bytes(c, &mut out);
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// True when the character at `at` ends a quantifier (so a following `+`
/// is possessive). `}` only counts when it closes `{n}`, `{n,}`, `{n,m}`.
fn is_quantifier_end(chars: &[char], at: usize) -> bool {
    match chars[at] {
        '*' | '+' | '?' => at == 0 || chars[at - 1] != '\\',
        '}' => {
            let open = chars[..at].iter().rposition(|&c| c == '{');
            open.is_some_and(|o| {
                chars[o + 1..at]
                    .iter()
                    .all(|c| c.is_ascii_digit() || *c == ',')
                    && o + 1 < at
            })
        }
        _ => false,
    }
}

fn find_posix_end(chars: &[char], from: usize) -> Option<usize> {
    let mut j = from;
    while j + 1 < chars.len() && chars[j].is_ascii_alphabetic() {
        j += 1;
    }
    (chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&']')).then_some(j + 1)
}

/// Handles `(` at `i`: special group syntax.
fn group(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    if chars.get(i + 1) != Some(&'?') {
        out.push('(');
        return Ok(i + 1);
    }
    let next = chars.get(i + 2).copied();
    let after = chars.get(i + 3).copied();
    match (next, after) {
        (Some('>'), _) => {
            out.push_str("(?:");
            Ok(i + 3)
        }
        (Some('=' | '!'), _) | (Some('<'), Some('=' | '!')) => {
            Err("lookaround assertions have no linear-time equivalent".into())
        }
        (Some('('), _) => Err("conditional groups are not supported".into()),
        (Some('R' | '0'..='9' | '&'), _) | (Some('P'), Some('>' | '=')) => {
            Err("recursion and subroutine calls are not supported".into())
        }
        (Some('#'), _) => {
            // A comment group: drop it.
            let end = chars[i..].iter().position(|&c| c == ')');
            Ok(end.map_or(chars.len(), |e| i + e + 1))
        }
        _ => {
            out.push_str("(?");
            Ok(i + 2)
        }
    }
}

/// Handles the escape at `i`; returns the index after it.
fn escape(chars: &[char], i: usize, in_class: bool, out: &mut String) -> Result<usize, String> {
    let Some(&next) = chars.get(i + 1) else {
        return Err("pattern ends with a lone backslash".into());
    };
    match next {
        'Z' if !in_class => out.push_str("(?:\\n?\\z)"),
        'h' => out.push_str(class_body("\\t\\x20\\xA0", in_class, false)),
        'H' => out.push_str(class_body("\\t\\x20\\xA0", in_class, true)),
        'v' => out.push_str(class_body("\\n\\x0B\\x0C\\r\\x85", in_class, false)),
        'V' => out.push_str(class_body("\\n\\x0B\\x0C\\r\\x85", in_class, true)),
        'R' if !in_class => out.push_str("(?:\\r\\n|[\\n\\x0B\\x0C\\r\\x85])"),
        'e' => out.push_str("\\x1B"),
        'Q' => return quote(chars, i + 2, out),
        'E' => {}
        'c' => {
            let ctl = chars.get(i + 2).ok_or("`\\c` needs a character")?;
            out.push_str(&format!(
                "\\x{:02X}",
                (ctl.to_ascii_uppercase() as u8) ^ 0x40
            ));
            return Ok(i + 3);
        }
        '1'..='9' if !in_class => {
            return Err(format!("backreference `\\{next}` is not supported"));
        }
        'g' | 'k' => return Err(format!("backreference `\\{next}` is not supported")),
        'G' => return Err("`\\G` is not supported".into()),
        'b' if in_class => out.push_str("\\x08"),
        'x' if chars.get(i + 2) == Some(&'{') => return braced_hex(chars, i, out),
        c if c.is_ascii_alphanumeric() => {
            out.push('\\');
            out.push(c);
        }
        c if !c.is_ascii() => push_bytes(c, out),
        c => {
            // PCRE allows escaping any punctuation; `regex` only the ones
            // it treats as meta, so spell other ones as hex.
            out.push_str(&format!("\\x{:02X}", c as u32));
        }
    }
    Ok(i + 2)
}

/// `\x{HH}`: in byte mode `regex` reads braces as a code point, PCRE (no
/// UTF) as a byte, so spell it `\xHH`. Values above 0xFF do not exist in
/// byte mode.
fn braced_hex(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let close = chars[i + 3..]
        .iter()
        .position(|&c| c == '}')
        .ok_or("unterminated `\\x{`")?;
    let digits: String = chars[i + 3..i + 3 + close].iter().collect();
    let value = u32::from_str_radix(&digits, 16).map_err(|_| format!("bad `\\x{{{digits}}}`"))?;
    if value > 0xFF {
        return Err(format!("`\\x{{{digits}}}` is above 0xFF in byte mode"));
    }
    out.push_str(&format!("\\x{value:02X}"));
    Ok(i + 4 + close)
}

/// A set of bytes as a class, or as members of the enclosing class.
fn class_body(members: &'static str, in_class: bool, negated: bool) -> &'static str {
    // Inside a class a negated shorthand cannot be spelled; such patterns
    // are rare and the positive form is the common one.
    match (in_class, negated) {
        (true, _) => members,
        (false, false) => match members {
            "\\t\\x20\\xA0" => "[\\t\\x20\\xA0]",
            _ => "[\\n\\x0B\\x0C\\r\\x85]",
        },
        (false, true) => match members {
            "\\t\\x20\\xA0" => "[^\\t\\x20\\xA0]",
            _ => "[^\\n\\x0B\\x0C\\r\\x85]",
        },
    }
}

/// `\Q…\E`: everything literal.
fn quote(chars: &[char], from: usize, out: &mut String) -> Result<usize, String> {
    let mut j = from;
    while j < chars.len() {
        if chars[j] == '\\' && chars.get(j + 1) == Some(&'E') {
            return Ok(j + 2);
        }
        push_literal(chars[j], out);
        j += 1;
    }
    Ok(j)
}

fn push_literal(c: char, out: &mut String) {
    if c.is_ascii_alphanumeric() || c == ' ' {
        out.push(c);
    } else if c.is_ascii() {
        out.push_str(&format!("\\x{:02X}", c as u32));
    } else {
        push_bytes(c, out);
    }
}

/// A non-ASCII character as the `\xHH` escapes of its UTF-8 bytes.
fn push_bytes(c: char, out: &mut String) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("\\x{b:02X}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, input: &[u8]) -> bool {
        compile(pattern).unwrap().is_match(input)
    }

    #[test]
    fn possessive_and_atomic_forms_are_dropped() {
        assert_eq!(translate("a++b*+c?+d{2}+").unwrap(), "a+b*c?d{2}");
        assert_eq!(translate("(?>ab)").unwrap(), "(?:ab)");
        assert_eq!(translate("\\++").unwrap(), "\\x2B+");
        assert_eq!(translate("[a+]+").unwrap(), "[a+]+");
    }

    #[test]
    fn byte_semantics() {
        assert!(matches("é", "é".as_bytes()));
        assert!(matches("^.$", b"\xff"));
        assert!(matches("a.b", b"a\nb"));
        assert!(matches("^b$", b"a\nb\nc"));
        assert!(matches("[é]", b"\xa9"));
        assert!(matches("\\/etc\\/", b"/etc/"));
    }

    #[test]
    fn escapes() {
        assert!(matches("a\\Z", b"a\n"));
        assert!(matches("a\\hb", b"a\tb"));
        assert!(matches("\\Qa.b\\E", b"a.b"));
        assert!(!matches("\\Qa.b\\E", b"axb"));
        assert!(matches("[]x]", b"]"));
        assert!(matches("[[:alpha:]]", b"q"));
        assert!(matches("\\x5c", b"\\"));
    }

    #[test]
    fn refusals_have_reasons() {
        assert!(compile("a(?=b)").unwrap_err().contains("lookaround"));
        assert!(compile("(a)\\1").unwrap_err().contains("backreference"));
        assert!(compile("(?<!x)y").is_err());
    }
}
