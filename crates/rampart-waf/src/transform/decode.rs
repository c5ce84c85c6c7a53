//! Decoding transformations for transport encodings: URL (`%xx`, IIS
//! `%uXXXX`), hex, SQL hex literals, Base64, C escape sequences and the
//! UTF-8 to `%uXXXX` conversion.
//!
//! Invalid encodings are copied through unchanged rather than rejected: an
//! attacker controls the input, and a decoder that bails out would let a
//! single bad escape hide the rest of the payload from the operators.

use std::borrow::Cow;

use super::output::Output;

/// Value of an ASCII hex digit.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes two hex digits at `input[at..at + 2]`, if both exist and are valid.
pub(crate) fn hex_pair(input: &[u8], at: usize) -> Option<u8> {
    let hi = hex_val(*input.get(at)?)?;
    let lo = hex_val(*input.get(at + 1)?)?;
    Some(hi << 4 | lo)
}

pub(crate) fn is_octal(b: u8) -> bool {
    (b'0'..=b'7').contains(&b)
}

/// `t:urlDecode`: decodes `%xx` and `+`; invalid `%` sequences are kept.
pub fn url_decode(input: &[u8]) -> Cow<'_, [u8]> {
    url_decode_impl(input, false)
}

/// `t:urlDecodeUni`: like `urlDecode`, plus IIS-style `%uXXXX`, which keeps
/// only the low byte of the code point. Full-width ASCII (`%uff01`–`%uff5e`)
/// is mapped back to plain ASCII by adding 0x20 to that byte.
pub fn url_decode_uni(input: &[u8]) -> Cow<'_, [u8]> {
    url_decode_impl(input, true)
}

fn url_decode_impl(input: &[u8], unicode: bool) -> Cow<'_, [u8]> {
    if memchr::memchr2(b'%', b'+', input).is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' if unicode && matches!(input.get(i + 1), Some(b'u' | b'U')) => {
                match percent_u(input, i) {
                    Some(byte) => {
                        out.push(byte);
                        i += 6;
                    }
                    None => {
                        // Invalid %u: keep both the '%' and the 'u'.
                        out.extend(&input[i..i + 2]);
                        i += 2;
                    }
                }
            }
            b'%' => match hex_pair(input, i + 1) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out.finish()
}

/// Decodes `%uHHHH` at `input[at..]` to a single byte (see `url_decode_uni`).
fn percent_u(input: &[u8], at: usize) -> Option<u8> {
    let digits = input.get(at + 2..at + 6)?;
    if !digits.iter().all(|&d| hex_val(d).is_some()) {
        return None;
    }
    Some(unicode_low_byte(digits))
}

/// Low byte of a 4-hex-digit code point, with the full-width ASCII fix-up
/// shared by `urlDecodeUni` and `jsDecode`.
pub(crate) fn unicode_low_byte(digits: &[u8]) -> u8 {
    let byte = hex_pair(digits, 2).unwrap_or(0);
    let full_width = digits[0].eq_ignore_ascii_case(&b'f') && digits[1].eq_ignore_ascii_case(&b'f');
    if full_width && byte > 0x00 && byte < 0x5f {
        byte + 0x20
    } else {
        byte
    }
}

/// `t:hexDecode`: decodes a string of hex digit pairs. Input that is not
/// entirely valid hex (odd length or a non-hex byte) is returned unchanged,
/// as ModSecurity's own transformation tests specify.
pub fn hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.len().is_multiple_of(2) || !input.iter().all(|&b| hex_val(b).is_some()) {
        return Cow::Borrowed(input);
    }
    let decoded = (0..input.len())
        .step_by(2)
        .filter_map(|i| hex_pair(input, i))
        .collect();
    Cow::Owned(decoded)
}

/// `t:sqlHexDecode`: decodes SQL hex literals (`0x414243` -> `ABC`).
/// `0x` without at least one complete digit pair is kept verbatim, as is a
/// trailing odd digit.
pub fn sql_hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr2(b'x', b'X', input).is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    while i < input.len() {
        let is_prefix = input[i] == b'0' && matches!(input.get(i + 1), Some(b'x' | b'X'));
        if is_prefix && hex_pair(input, i + 2).is_some() {
            i += 2;
            while let Some(byte) = hex_pair(input, i) {
                out.push(byte);
                i += 2;
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out.finish()
}

/// Sextet value of a standard Base64 alphabet byte.
fn base64_val(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Packs sextets into bytes; a trailing group of 2 or 3 sextets yields 1 or
/// 2 bytes, a lone trailing sextet carries too few bits and is dropped.
fn pack_sextets(sextets: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for group in sextets.chunks(4) {
        let mut acc: u32 = 0;
        for (k, &s) in group.iter().enumerate() {
            acc |= u32::from(s) << (18 - 6 * k);
        }
        let bytes = acc.to_be_bytes();
        let produced = (group.len() * 6) / 8;
        out.extend_from_slice(&bytes[1..1 + produced]);
    }
    out
}

/// `t:base64Decode`: strict Base64 decoding, as ModSecurity v3 does it.
///
/// Decoding stops at the first NUL byte; CR, LF and spaces are skipped; up
/// to two `=` may only end the data. Anything else makes the whole decode
/// fail, and ModSecurity v3 then yields an empty string. Missing padding is
/// tolerated.
pub fn base64_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let data = input.split(|&b| b == 0).next().unwrap_or_default();
    let mut sextets = Vec::with_capacity(data.len());
    let mut padding = 0;
    for &b in data {
        match (b, base64_val(b)) {
            (b'\r' | b'\n' | b' ', _) => {}
            (b'=', _) if padding < 2 => padding += 1,
            (_, Some(v)) if padding == 0 => sextets.push(v),
            _ => return Cow::Owned(Vec::new()),
        }
    }
    Cow::Owned(pack_sextets(&sextets))
}

/// `t:base64DecodeExt`: forgiving Base64 decoding. Bytes outside the
/// alphabet are skipped, the URL-safe `-` and `_` are accepted, and `=` is
/// ignored — except that a `=` arriving when a group holds exactly one
/// sextet (and is not followed by another `=`) marks the input as garbage,
/// which decodes to an empty string.
pub fn base64_decode_ext(input: &[u8]) -> Cow<'_, [u8]> {
    let mut sextets = Vec::with_capacity(input.len());
    for (i, &b) in input.iter().enumerate() {
        if b == b'=' {
            let next_is_pad = input.get(i + 1) == Some(&b'=');
            if !next_is_pad && sextets.len() % 4 == 1 {
                return Cow::Owned(Vec::new());
            }
            continue;
        }
        let value = match b {
            b'-' => Some(62),
            b'_' => Some(63),
            _ => base64_val(b),
        };
        sextets.extend(value);
    }
    // Only whole bytes are produced; the forgiving decoder never emits the
    // partial byte left by a dangling sextet.
    Cow::Owned(pack_sextets(&sextets))
}

/// `t:escapeSeqDecode`: decodes ANSI C escapes (`\n`, `\x41`, `\101`, ...).
/// Octal escapes take up to three digits and are truncated to a byte;
/// an unrecognised `\c` decodes to `c`; a trailing lone `\` is kept.
pub fn escape_seq_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode_backslash_escapes(input, escape_at)
}

/// Walks `input`, replacing each `\` escape by what `escape` decodes from
/// the bytes after the backslash (the byte and how many bytes it used); a
/// trailing lone `\` is kept. Shared by the C and JavaScript decoders.
pub(super) fn decode_backslash_escapes(
    input: &[u8],
    escape: fn(&[u8], usize) -> (u8, usize),
) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\\', input).is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let (byte, used) = escape(input, i + 1);
        out.push(byte);
        i += 1 + used;
    }
    out.finish()
}

/// Decodes the escape whose first byte (after `\`) is `input[at]`; returns
/// the byte and how many input bytes the escape body used.
fn escape_at(input: &[u8], at: usize) -> (u8, usize) {
    let c = input[at];
    if let Some(simple) = simple_escape(c) {
        return (simple, 1);
    }
    if matches!(c, b'x' | b'X') {
        if let Some(byte) = hex_pair(input, at + 1) {
            return (byte, 3);
        }
        return (c, 1);
    }
    if is_octal(c) {
        let digits = input[at..]
            .iter()
            .take(3)
            .take_while(|&&d| is_octal(d))
            .count();
        let value = input[at..at + digits]
            .iter()
            .fold(0u32, |acc, &d| acc * 8 + u32::from(d - b'0'));
        return (value as u8, digits);
    }
    (c, 1)
}

/// The C escapes shared by `escapeSeqDecode` and `jsDecode`.
pub(crate) fn simple_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'a' => 0x07,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        b'\\' | b'?' | b'\'' | b'"' => c,
        _ => return None,
    })
}

/// `t:utf8toUnicode`: replaces each well-formed multi-byte UTF-8 sequence by
/// `%uXXXX` (lowercase hex, at least four digits), so that a following
/// `t:urlDecodeUni` can fold full-width and other look-alike characters.
/// ASCII is untouched. Malformed, overlong and surrogate sequences are
/// copied byte for byte; ModSecurity drops or duplicates some of those
/// bytes, and keeping them hides nothing from later operators.
pub fn utf8_to_unicode(input: &[u8]) -> Cow<'_, [u8]> {
    if input.is_ascii() {
        return Cow::Borrowed(input);
    }
    let mut out = Output::new(input);
    let mut i = 0;
    while i < input.len() {
        match decode_utf8_char(&input[i..]) {
            Some((code, len)) if len > 1 => {
                out.extend(format!("%u{code:04x}").as_bytes());
                i += len;
            }
            _ => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    out.finish()
}

/// Decodes one UTF-8 scalar at the start of `bytes` (strict: no overlongs,
/// no surrogates, nothing above U+10FFFF).
fn decode_utf8_char(bytes: &[u8]) -> Option<(u32, usize)> {
    let len = match bytes.first()? {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(bytes.get(..len)?).ok()?;
    s.chars().next().map(|c| (u32::from(c), len))
}
