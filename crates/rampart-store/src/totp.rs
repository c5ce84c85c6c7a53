//! TOTP (RFC 6238) one-time codes: HMAC-SHA1, 6 digits, 30 s steps,
//! accepting one step either side for clock drift.
//!
//! Replay protection lives with the caller ([`crate::admin`]): a code is
//! accepted only for a time step later than the last one that user used.

use crate::secret::{base32_encode, random_bytes};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const WINDOW: u64 = 1;

/// A new random 160-bit TOTP secret (the size RFC 4226 recommends).
pub fn new_secret() -> Vec<u8> {
    random_bytes::<20>().to_vec()
}

/// The time step containing unix time `unix_secs`.
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// HOTP value (RFC 4226) of `secret` at `counter`, truncated to `digits`.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        // HMAC accepts keys of any length, so this cannot happen.
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = (hash[19] & 0x0f) as usize;
    let code = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    code % 10u32.pow(digits)
}

/// The 6-digit code for `unix_secs`, zero-padded.
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    format!("{:06}", hotp(secret, step_at(unix_secs), DIGITS))
}

/// Checks `code` against the steps around `unix_secs`; returns the matching
/// time step (for replay protection) or `None`. Compares every candidate in
/// full so timing does not reveal which step matched.
pub fn verify(secret: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let presented: u32 = code.parse().ok()?;
    let now = step_at(unix_secs);
    let mut matched = None;
    for step in now.saturating_sub(WINDOW)..=now + WINDOW {
        let expected = hotp(secret, step, DIGITS);
        let equal: bool = subtle::ConstantTimeEq::ct_eq(&expected, &presented).into();
        if equal && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// `otpauth://totp/rampart:<user>?secret=<base32>&issuer=rampart`.
pub fn provisioning_uri(username: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/rampart:{}?secret={}&issuer=rampart",
        percent_encode(username),
        base32_encode(secret)
    )
}

/// The provisioning URI as a QR code drawn with Unicode half blocks, for a
/// terminal. `None` only if the URI is too long for a QR code.
pub fn qr_terminal(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
    )
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        let vectors = [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time, expected) in vectors {
            assert_eq!(hotp(RFC_SECRET, step_at(time), 8), expected, "t={time}");
            let six = format!("{:06}", expected % 1_000_000);
            assert_eq!(code_at(RFC_SECRET, time), six, "t={time}");
        }
    }

    #[test]
    fn window_accepts_one_step_either_side_only() {
        let t = 1_700_000_000;
        let code = code_at(RFC_SECRET, t);
        assert_eq!(verify(RFC_SECRET, &code, t), Some(step_at(t)));
        assert_eq!(verify(RFC_SECRET, &code, t + STEP_SECS), Some(step_at(t)));
        assert_eq!(verify(RFC_SECRET, &code, t - STEP_SECS), Some(step_at(t)));
        assert_eq!(verify(RFC_SECRET, &code, t + 2 * STEP_SECS), None);
        assert_eq!(verify(RFC_SECRET, &code, t - 2 * STEP_SECS), None);
    }

    #[test]
    fn malformed_codes_are_refused() {
        let t = 1_700_000_000;
        assert_eq!(verify(RFC_SECRET, "12345", t), None);
        assert_eq!(verify(RFC_SECRET, "12a456", t), None);
        assert_eq!(verify(RFC_SECRET, "", t), None);
    }

    #[test]
    fn provisioning_uri_and_qr() {
        let uri = provisioning_uri("alice ops", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/rampart:alice%20ops?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=rampart"
        );
        let qr = qr_terminal(&uri).expect("fits in a QR code");
        assert!(qr.lines().count() > 10);
    }
}
