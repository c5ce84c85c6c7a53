//! Lexer: physical lines to logical lines to argument tokens.
//!
//! Apache/ModSecurity configuration syntax:
//! * a line ending in `\` continues on the next line; the backslash and the
//!   newline are removed and the next line is appended as is (its leading
//!   indentation survives, which is harmless between arguments and inside
//!   action lists, whose items are trimmed);
//! * continuation happens before comment detection, so a `#` line ending in
//!   `\` swallows the next line too — CRS's commented-out examples rely on it;
//! * a logical line whose first non-blank character is `#` is a comment;
//! * arguments are separated by blanks and may be wrapped in `"` or `'`;
//!   inside quotes a backslash escapes the next character (so `\"` does not
//!   end the argument). The raw text between the quotes is kept verbatim:
//!   regexes need their backslashes, and ModSecurity v3 does the same.

use super::error::{AtError, ErrorKind, PResult};

/// One directive's worth of text, continuations joined.
#[derive(Debug)]
pub(crate) struct LogicalLine {
    pub text: String,
    /// `(offset in text, physical line number)` for each joined line.
    starts: Vec<(usize, u32)>,
}

impl LogicalLine {
    /// Physical line number of the byte at `offset`.
    pub(crate) fn line_at(&self, offset: usize) -> u32 {
        let idx = self.starts.partition_point(|&(start, _)| start <= offset);
        self.starts[idx.saturating_sub(1)].1
    }

    #[cfg(test)]
    pub(crate) fn first_line(&self) -> u32 {
        self.starts[0].1
    }

    fn is_blank_or_comment(&self) -> bool {
        let trimmed = self.text.trim_start();
        trimmed.is_empty() || trimmed.starts_with('#')
    }
}

/// Splits a file into logical lines, dropping blank lines and comments.
pub(crate) fn logical_lines(src: &str) -> Vec<LogicalLine> {
    let mut lines = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (idx, raw) in src.split('\n').enumerate() {
        let number = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let physical = raw.strip_suffix('\r').unwrap_or(raw);
        let line = current.get_or_insert_with(|| LogicalLine {
            text: String::new(),
            starts: Vec::new(),
        });
        line.starts.push((line.text.len(), number));
        match physical.strip_suffix('\\') {
            Some(head) => line.text.push_str(head),
            None => {
                line.text.push_str(physical);
                lines.extend(current.take());
            }
        }
    }
    // A file may end in a dangling continuation.
    lines.extend(current.take());
    lines.retain(|l| !l.is_blank_or_comment());
    lines
}

/// One argument of a directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    /// The argument text, without surrounding quotes, escapes untouched.
    pub text: String,
    /// Byte offset of `text` inside the logical line.
    pub offset: usize,
}

/// Splits a logical line into blank-separated, optionally quoted tokens.
pub(crate) fn tokenize(line: &str) -> PResult<Vec<Token>> {
    let bytes = line.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if bytes[pos].is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        let (token, next) = match bytes[pos] {
            quote @ (b'"' | b'\'') => quoted_token(line, pos, quote)?,
            _ => bare_token(line, pos),
        };
        tokens.push(token);
        pos = next;
    }
    Ok(tokens)
}

/// Reads a quoted token opening at `start`; returns it and the index after
/// the closing quote.
fn quoted_token(line: &str, start: usize, quote: u8) -> PResult<(Token, usize)> {
    let bytes = line.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => {
                let token = Token {
                    text: line[start + 1..i].to_string(),
                    offset: start + 1,
                };
                return Ok((token, i + 1));
            }
            _ => i += 1,
        }
    }
    Err(AtError::new(
        start,
        ErrorKind::UnbalancedQuotes(char::from(quote)),
    ))
}

fn bare_token(line: &str, start: usize) -> (Token, usize) {
    let end = line[start..]
        .find(|c: char| c.is_ascii_whitespace())
        .map_or(line.len(), |n| start + n);
    let token = Token {
        text: line[start..end].to_string(),
        offset: start,
    };
    (token, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        tokenize(line)
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn continuation_joins_lines_and_tracks_numbers() {
        let src =
            "# header\n\nSecRule ARGS \"@rx a\" \\\n    \"id:1,\\\n    phase:2\"\nSecMarker END\n";
        let lines = logical_lines(src);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].text,
            "SecRule ARGS \"@rx a\"     \"id:1,    phase:2\""
        );
        assert_eq!(lines[0].first_line(), 3);
        let phase_at = lines[0].text.find("phase").unwrap();
        assert_eq!(lines[0].line_at(phase_at), 5);
        assert_eq!(lines[0].line_at(0), 3);
        assert_eq!(lines[1].text, "SecMarker END");
        assert_eq!(lines[1].first_line(), 6);
    }

    #[test]
    fn commented_continuation_swallows_following_lines() {
        let src = "#SecAction \\\n#    \"id:1,\\\n#    pass\"\nSecMarker A\r\n";
        let lines = logical_lines(src);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "SecMarker A");
        assert_eq!(lines[0].first_line(), 4);
    }

    #[test]
    fn indented_comments_and_crlf_are_handled() {
        let lines = logical_lines("   # indented comment\r\n\tSecMarker B\r\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "\tSecMarker B");
    }

    #[test]
    fn tokens_respect_quotes_and_escapes() {
        assert_eq!(
            texts(r#"SecRule ARGS "@rx a\"b c" 'x y' bare"#),
            ["SecRule", "ARGS", r#"@rx a\"b c"#, "x y", "bare"]
        );
        assert_eq!(texts(r#"A "" B"#), ["A", "", "B"]);
        // A closing quote ends the token even without a following blank.
        assert_eq!(texts(r#""a""b""#), ["a", "b"]);
        assert_eq!(texts(r#""a\\" b"#), [r"a\\", "b"]);
    }

    #[test]
    fn unbalanced_quote_reports_its_offset() {
        let err = tokenize(r#"SecRule ARGS "@rx abc"#).unwrap_err();
        assert_eq!(err.offset, 13);
        assert_eq!(err.kind, ErrorKind::UnbalancedQuotes('"'));
        assert!(tokenize(r#"SecMarker "a\""#).is_err());
    }
}
