//! Decoders for the escape syntaxes of web languages: HTML entities,
//! JavaScript string escapes and CSS escapes. All follow ModSecurity v3
//! byte-for-byte, including its "low byte only" handling of code points.

use std::borrow::Cow;

use super::decode::{hex_pair, hex_val, is_octal, simple_escape, unicode_low_byte};
use super::output::Output;
use super::text::is_c_space;

/// `t:htmlEntityDecode`: decodes `&#DDD;`, `&#xHH;` and the named entities
/// `quot amp lt gt nbsp` (case-insensitive). The trailing `;` is optional.
/// Numeric entities keep only the low byte of the value; other named
/// entities and malformed references are copied unchanged.
pub fn html_entity_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'&', input).is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'&' {
            if let Some((byte, end)) = entity_at(input, i + 1) {
                out.push(byte);
                // The semicolon is optional and consumed when present.
                i = if input.get(end) == Some(&b';') {
                    end + 1
                } else {
                    end
                };
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out.finish()
}

/// Parses the entity body starting right after `&`; returns the decoded
/// byte and the index just past the entity name or digits.
fn entity_at(input: &[u8], start: usize) -> Option<(u8, usize)> {
    if input.get(start) == Some(&b'#') {
        let hex = matches!(input.get(start + 1), Some(b'x' | b'X'));
        let digits_at = if hex { start + 2 } else { start + 1 };
        let radix = if hex { 16 } else { 10 };
        let len = input[digits_at.min(input.len())..]
            .iter()
            .take_while(|b| char::from(**b).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        let value = parse_saturating(&input[digits_at..digits_at + len], radix);
        return Some((value as u8, digits_at + len));
    }
    let len = input[start..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let byte = named_entity(&input[start..start + len])?;
    Some((byte, start + len))
}

/// Parses digits like C `strtol`, which saturates at `LONG_MAX` on overflow
/// (whose low byte, 0xFF, is what ModSecurity then emits).
fn parse_saturating(digits: &[u8], radix: u32) -> i64 {
    digits.iter().fold(0i64, |acc, &d| {
        let v = i64::from(char::from(d).to_digit(radix).unwrap_or(0));
        acc.checked_mul(i64::from(radix))
            .and_then(|x| x.checked_add(v))
            .unwrap_or(i64::MAX)
    })
}

fn named_entity(name: &[u8]) -> Option<u8> {
    const TABLE: [(&[u8], u8); 5] = [
        (b"quot", b'"'),
        (b"amp", b'&'),
        (b"lt", b'<'),
        (b"gt", b'>'),
        (b"nbsp", 0xa0),
    ];
    TABLE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, b)| b)
}

/// `t:jsDecode`: decodes JavaScript escapes: `\uHHHH` (low byte, full-width
/// ASCII folded), `\xHH`, octal `\OOO` (at most one byte, so `\666` is
/// `\66` followed by `6`), the C letter escapes, and `\c` -> `c`.
/// Only lowercase `\u` and `\x` are escapes, as in JavaScript.
pub fn js_decode(input: &[u8]) -> Cow<'_, [u8]> {
    super::decode::decode_backslash_escapes(input, js_escape_at)
}

fn js_escape_at(input: &[u8], at: usize) -> (u8, usize) {
    let c = input[at];
    if c == b'u' {
        let digits = input.get(at + 1..at + 5);
        if let Some(d) = digits.filter(|d| d.iter().all(|&b| hex_val(b).is_some())) {
            return (unicode_low_byte(d), 5);
        }
    }
    if c == b'x' {
        if let Some(byte) = hex_pair(input, at + 1) {
            return (byte, 3);
        }
    }
    if is_octal(c) {
        let mut digits = input[at..]
            .iter()
            .take(3)
            .take_while(|&&d| is_octal(d))
            .count();
        // Three digits starting above '3' would exceed one byte.
        if digits == 3 && c > b'3' {
            digits = 2;
        }
        let value = input[at..at + digits]
            .iter()
            .fold(0u32, |acc, &d| acc * 8 + u32::from(d - b'0'));
        return (value as u8, digits);
    }
    (simple_escape(c).unwrap_or(c), 1)
}

/// `t:cssDecode`: decodes CSS 2 escapes. `\` plus 1–6 hex digits yields the
/// low byte of the value (with full-width ASCII folded when the code point
/// is `0xFFxx`), and one whitespace byte after a hex escape is swallowed.
/// `\` + newline is a line continuation (removed), `\c` is `c`, and a
/// trailing lone `\` is dropped.
pub fn css_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\\', input).is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&next) = input.get(i) else { break };
        let hex_len = input[i..]
            .iter()
            .take(6)
            .take_while(|&&b| hex_val(b).is_some())
            .count();
        if hex_len > 0 {
            out.push(css_hex_byte(&input[i..i + hex_len]));
            i += hex_len;
            if input.get(i).is_some_and(|&b| is_c_space(b)) {
                i += 1;
            }
        } else if next == b'\n' {
            i += 1;
        } else {
            out.push(next);
            i += 1;
        }
    }
    out.finish()
}

/// Byte for a CSS hex escape of 1–6 digits: the last two digits, plus the
/// full-width fold when the value is `0x00FFxx` written with 4–6 digits.
fn css_hex_byte(digits: &[u8]) -> u8 {
    let n = digits.len();
    if n == 1 {
        return hex_val(digits[0]).unwrap_or(0);
    }
    let byte = hex_pair(digits, n - 2).unwrap_or(0);
    // Only "00FFxx", "0FFxx" and "FFxx" are full-width candidates.
    let leading_zeroes = digits[..n.saturating_sub(4)].iter().all(|&d| d == b'0');
    let ff = n >= 4 && digits[n - 4..n - 2].eq_ignore_ascii_case(b"ff");
    if leading_zeroes && ff && byte > 0x00 && byte < 0x5f {
        byte + 0x20
    } else {
        byte
    }
}
