//! Length-preserving masking.
//!
//! Only ASCII letters and digits are replaced (by the configured mask byte,
//! itself ASCII), so the masked text keeps its byte length, stays valid UTF-8,
//! and keeps its punctuation and layout. In raw text that may be JSON (the
//! streaming fallback) backslash escapes are skipped whole, so masking can
//! never turn `\n` into an invalid escape or eat the quote that closes a
//! string.
//!
//! Detector-specific shapes: cards keep their last four digits and their
//! separators (`**** **** **** 1234`); e-mail addresses keep the first
//! character and the domain (`j*******@example.com`); everything else is
//! masked whole.

use crate::detector::DetectorId;

/// Masks `buf[start..end]` in place for `detector` (`None`: mask whole,
/// as for JSON-path rules).
///
/// `escape_aware` is for raw (still escaped) JSON text: a backslash and the
/// character(s) it escapes are left alone.
pub fn mask_range(
    buf: &mut [u8],
    start: usize,
    end: usize,
    detector: Option<DetectorId>,
    mask: u8,
    escape_aware: bool,
) {
    let end = end.min(buf.len());
    if start >= end {
        return;
    }
    let hide = hidden_part(&buf[start..end], detector);
    let (from, to) = (start + hide.start, start + hide.end);
    let mut i = start;
    while i < to {
        let b = buf[i];
        if escape_aware && b == b'\\' {
            i += if buf.get(i + 1) == Some(&b'u') { 6 } else { 2 };
            continue;
        }
        if i >= from && b.is_ascii_alphanumeric() {
            buf[i] = mask;
        }
        i += 1;
    }
}

/// Masks a decoded string (a JSON string value) and returns the new value.
pub fn mask_str(
    value: &str,
    start: usize,
    end: usize,
    detector: Option<DetectorId>,
    mask: u8,
) -> String {
    let mut bytes = value.as_bytes().to_vec();
    mask_range(&mut bytes, start, end, detector, mask, false);
    // Only ASCII alphanumerics were replaced by an ASCII byte, so the bytes
    // are still UTF-8; the lossy fallback keeps this panic-free regardless.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The part of a match (relative range) that gets masked.
fn hidden_part(text: &[u8], detector: Option<DetectorId>) -> std::ops::Range<usize> {
    match detector {
        Some(DetectorId::Card) => 0..last_digits_start(text, 4),
        Some(DetectorId::Email) => match text.iter().position(|&b| b == b'@') {
            Some(at) if at > 1 => 1..at,
            _ => 0..text.len(),
        },
        _ => 0..text.len(),
    }
}

/// Where the last `n` digits of `text` begin (0 when there are fewer).
fn last_digits_start(text: &[u8], n: usize) -> usize {
    let mut seen = 0;
    for (i, b) in text.iter().enumerate().rev() {
        if b.is_ascii_digit() {
            seen += 1;
            if seen == n {
                return i;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str, d: Option<DetectorId>, escape_aware: bool) -> String {
        let mut b = text.as_bytes().to_vec();
        let len = b.len();
        mask_range(&mut b, 0, len, d, b'*', escape_aware);
        String::from_utf8(b).expect("utf8")
    }

    #[test]
    fn card_keeps_last_four_and_separators() {
        assert_eq!(
            masked("4111 1111 1111 1234", Some(DetectorId::Card), false),
            "**** **** **** 1234"
        );
        assert_eq!(
            masked("4111111111111234", Some(DetectorId::Card), false),
            "************1234"
        );
    }

    #[test]
    fn email_keeps_first_char_and_domain() {
        assert_eq!(
            masked("jane.doe@example.com", Some(DetectorId::Email), false),
            "j***.***@example.com"
        );
        assert_eq!(
            masked("j@example.com", Some(DetectorId::Email), false),
            "*@*******.***"
        );
    }

    #[test]
    fn others_fully_masked_keeping_length() {
        let t = "ghp_abcdEFGH1234";
        let m = masked(t, Some(DetectorId::GithubToken), false);
        assert_eq!(m, "***_************");
        assert_eq!(m.len(), t.len());
    }

    #[test]
    fn escape_aware_leaves_escapes_intact() {
        assert_eq!(
            masked(r#"ab\ncd\u00e9x\\\"y"#, None, true),
            r#"**\n**\u00e9*\\\"*"#
        );
    }

    #[test]
    fn non_ascii_survives() {
        assert_eq!(mask_str("été 42", 0, 8, None, b'#'), "é#é ##");
    }
}
