//! Encoders and digests: `urlEncode`, `hexEncode`, `base64Encode`, `md5`,
//! `sha1` and `length`. Digests return the raw binary hash (CRS pairs
//! `t:sha1` with `t:hexEncode` when it wants text).

use std::borrow::Cow;

use md5::Digest as _;

use super::output::Output;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn push_hex(out: &mut Output<'_>, byte: u8) {
    out.push(HEX_DIGITS[usize::from(byte >> 4)]);
    out.push(HEX_DIGITS[usize::from(byte & 0x0f)]);
}

/// `t:urlEncode`: space becomes `+`; ASCII letters, digits and `*` stay;
/// every other byte becomes `%xx` (lowercase hex).
pub fn url_encode(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Output::new(input);
    for &b in input {
        match b {
            b' ' => out.push(b'+'),
            b'*' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => out.push(b),
            _ => {
                out.push(b'%');
                push_hex(&mut out, b);
            }
        }
    }
    out.finish()
}

/// `t:hexEncode`: every byte becomes two lowercase hex digits.
pub fn hex_encode(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Output::new(input);
    for &b in input {
        push_hex(&mut out, b);
    }
    out.finish()
}

/// `t:base64Encode`: standard alphabet with `=` padding.
pub fn base64_encode(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let mut block = [0u8; 3];
        block[..chunk.len()].copy_from_slice(chunk);
        let acc = u32::from_be_bytes([0, block[0], block[1], block[2]]);
        let emitted = chunk.len() + 1;
        for k in 0..4 {
            let sextet = (acc >> (18 - 6 * k)) & 0x3f;
            out.push(if k < emitted {
                BASE64_ALPHABET[sextet as usize]
            } else {
                b'='
            });
        }
    }
    Cow::Owned(out)
}

/// `t:md5`: the raw 16-byte MD5 digest.
pub fn md5(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(md5::Md5::digest(input).to_vec())
}

/// `t:sha1`: the raw 20-byte SHA-1 digest.
pub fn sha1(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(sha1::Sha1::digest(input).to_vec())
}

/// `t:length`: the input length in bytes, as decimal text.
pub fn length(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(input.len().to_string().into_bytes())
}
