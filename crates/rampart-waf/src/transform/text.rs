//! Character-level transformations: case, whitespace, NUL bytes, comments,
//! `cmdLine` and the 7-bit parity helpers.
//!
//! "Whitespace" means C `isspace()` in the C locale (space, `\t`, `\n`, `\v`,
//! `\f`, `\r`), which is what ModSecurity v3 uses; Rust's
//! `u8::is_ascii_whitespace` omits `\v`, so it is not used here.

use std::borrow::Cow;

use super::output::{none_special, Output};

/// The byte value of a non-breaking space in Latin-1.
const NBSP: u8 = 0xa0;

/// C-locale `isspace()`.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Maps every byte through `f`.
fn map_bytes(input: &[u8], f: impl Fn(u8) -> u8) -> Cow<'_, [u8]> {
    // One byte in, one byte out: the output is the input until the first
    // byte `f` changes, then a copy mapped from there on.
    let Some(first) = input.iter().position(|&b| f(b) != b) else {
        return Cow::Borrowed(input);
    };
    let mut out = input.to_vec();
    for b in &mut out[first..] {
        *b = f(*b);
    }
    Cow::Owned(out)
}

/// Keeps only the bytes for which `keep` holds.
fn filter_bytes(input: &[u8], keep: impl Fn(u8) -> bool) -> Cow<'_, [u8]> {
    let mut out = Output::new(input);
    for &b in input.iter().filter(|&&b| keep(b)) {
        out.push(b);
    }
    out.finish()
}

/// `t:none`: the identity. The rule compiler treats it as "reset the chain".
pub fn none(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(input)
}

/// `t:lowercase`: ASCII lowercase (bytes >= 0x80 untouched, as in C `tolower`).
pub fn lowercase(input: &[u8]) -> Cow<'_, [u8]> {
    if none_special(input, |b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(input);
    }
    map_bytes(input, |b| b.to_ascii_lowercase())
}

/// `t:uppercase`: ASCII uppercase.
pub fn uppercase(input: &[u8]) -> Cow<'_, [u8]> {
    if none_special(input, |b| b.is_ascii_lowercase()) {
        return Cow::Borrowed(input);
    }
    map_bytes(input, |b| b.to_ascii_uppercase())
}

/// `t:compressWhitespace`: every run of whitespace becomes a single space.
pub fn compress_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    if none_special(input, is_c_space) {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut in_space = false;
    for &b in input {
        if is_c_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b);
            in_space = false;
        }
    }
    out.finish()
}

/// `t:removeWhitespace`: drops whitespace and non-breaking spaces (0xA0).
pub fn remove_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    if none_special(input, |b| is_c_space(b) || b == NBSP) {
        return Cow::Borrowed(input);
    }
    filter_bytes(input, |b| !is_c_space(b) && b != NBSP)
}

fn trim_start(input: &[u8]) -> &[u8] {
    let start = input
        .iter()
        .position(|&b| !is_c_space(b))
        .unwrap_or(input.len());
    &input[start..]
}

fn trim_end(input: &[u8]) -> &[u8] {
    let end = input
        .iter()
        .rposition(|&b| !is_c_space(b))
        .map_or(0, |i| i + 1);
    &input[..end]
}

/// `t:trimLeft`: strips leading whitespace (a sub-slice, never allocates).
pub fn trim_left(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(trim_start(input))
}

/// `t:trimRight`: strips trailing whitespace.
pub fn trim_right(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(trim_end(input))
}

/// `t:trim`: strips whitespace on both sides.
pub fn trim(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(trim_start(trim_end(input)))
}

/// `t:removeNulls`: drops NUL bytes.
pub fn remove_nulls(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(0, input).is_none() {
        return Cow::Borrowed(input);
    }
    filter_bytes(input, |b| b != 0)
}

/// `t:replaceNulls`: replaces NUL bytes with spaces.
pub fn replace_nulls(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(0, input).is_none() {
        return Cow::Borrowed(input);
    }
    map_bytes(input, |b| if b == 0 { b' ' } else { b })
}

/// `t:cmdLine`: normalises Windows and Unix command-line evasions.
///
/// Deletes `\ " ' ^`; turns runs of space, `\t`, `\r`, `\n`, `,` and `;`
/// into one space; removes a space just before `/` or `(`; lowercases the
/// rest. Only `\t \r \n` count as whitespace here, exactly as in ModSecurity.
pub fn cmd_line(input: &[u8]) -> Cow<'_, [u8]> {
    // Without separators no space is ever written, so `/` and `(` are
    // copied too: only the deleted bytes and upper case change anything.
    let special = |b: u8| {
        b.is_ascii_uppercase()
            || matches!(
                b,
                b'"' | b'\'' | b'\\' | b'^' | b' ' | b',' | b';' | b'\t' | b'\r' | b'\n'
            )
    };
    if none_special(input, special) {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut after_space = false;
    for &b in input {
        match b {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !after_space {
                    out.push(b' ');
                    after_space = true;
                }
            }
            b'/' | b'(' => {
                if after_space {
                    out.pop();
                }
                after_space = false;
                out.push(b);
            }
            _ => {
                out.push(b.to_ascii_lowercase());
                after_space = false;
            }
        }
    }
    out.finish()
}

/// `t:replaceComments`: each C-style `/* ... */` comment becomes one space;
/// an unterminated comment also becomes one space. A stray `*/` is kept.
pub fn replace_comments(input: &[u8]) -> Cow<'_, [u8]> {
    // Every comment starts with `/`.
    if memchr::memchr(b'/', input).is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    let mut in_comment = false;
    while i < input.len() {
        let rest = &input[i..];
        if !in_comment && rest.starts_with(b"/*") {
            in_comment = true;
            i += 2;
        } else if in_comment && rest.starts_with(b"*/") {
            in_comment = false;
            out.push(b' ');
            i += 2;
        } else {
            if !in_comment {
                out.push(input[i]);
            }
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    out.finish()
}

/// `t:removeComments`: removes `/* ... */` and `<!-- ... -->` comments and
/// truncates the value at an SQL `--` or shell `#` line comment. An
/// unterminated block comment is replaced by one space.
///
/// ModSecurity additionally copies the byte right after a closing `*/`
/// without inspecting it (and a NUL when the comment ends the input); we
/// scan that byte normally instead, which only ever removes more comments.
pub fn remove_comments(input: &[u8]) -> Cow<'_, [u8]> {
    // Every marker starts with one of these bytes.
    if none_special(input, |b| matches!(b, b'/' | b'<' | b'-' | b'#')) {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    let mut in_comment = false;
    while i < input.len() {
        let rest = &input[i..];
        if in_comment {
            if rest.starts_with(b"*/") {
                in_comment = false;
                i += 2;
            } else if rest.starts_with(b"-->") {
                in_comment = false;
                i += 3;
            } else {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            in_comment = true;
            i += 2;
        } else if rest.starts_with(b"<!--") {
            in_comment = true;
            i += 4;
        } else if rest.starts_with(b"--") || rest[0] == b'#' {
            break;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    out.finish()
}

/// `t:removeCommentsChar`: deletes the comment markers themselves
/// (`/*`, `*/`, `<!--`, `-->`, `--`, `#`) but keeps the text between them.
pub fn remove_comments_char(input: &[u8]) -> Cow<'_, [u8]> {
    const MARKERS: [&[u8]; 6] = [b"/*", b"*/", b"<!--", b"-->", b"--", b"#"];
    if none_special(input, |b| matches!(b, b'/' | b'*' | b'<' | b'-' | b'#')) {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        match MARKERS.iter().find(|m| rest.starts_with(m)) {
            Some(marker) => i += marker.len(),
            None => {
                out.push(rest[0]);
                i += 1;
            }
        }
    }
    out.finish()
}

/// Number of set bits in the low seven bits of `b`.
fn low7_ones(b: u8) -> u32 {
    (b & 0x7f).count_ones()
}

/// `t:parityEven7bit`: sets bit 7 so that every byte has even parity.
pub fn parity_even_7bit(input: &[u8]) -> Cow<'_, [u8]> {
    map_bytes(input, |b| {
        let low = b & 0x7f;
        if low7_ones(b) % 2 == 1 {
            low | 0x80
        } else {
            low
        }
    })
}

/// `t:parityOdd7bit`: sets bit 7 so that every byte has odd parity.
pub fn parity_odd_7bit(input: &[u8]) -> Cow<'_, [u8]> {
    map_bytes(input, |b| {
        let low = b & 0x7f;
        if low7_ones(b).is_multiple_of(2) {
            low | 0x80
        } else {
            low
        }
    })
}

/// `t:parityZero7bit`: clears bit 7 of every byte.
pub fn parity_zero_7bit(input: &[u8]) -> Cow<'_, [u8]> {
    map_bytes(input, |b| b & 0x7f)
}
