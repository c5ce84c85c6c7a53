//! Validators that turn a pattern candidate into a finding, or reject it.
//!
//! Patterns over-approximate on purpose; everything that makes a match
//! *plausible* (checksums, issuer tables, structure, surrounding bytes) lives
//! here as plain functions over bytes, so each rule is testable on its own.

/// Luhn (mod 10) check over ASCII digits.
pub fn luhn_ok(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if v > 9 {
            return false;
        }
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Numeric value of the first `n` digits.
fn prefix(digits: &[u8], n: usize) -> u32 {
    digits
        .iter()
        .take(n)
        .fold(0, |acc, &d| acc * 10 + u32::from(d - b'0'))
}

/// Whether the digits fall in a known issuer range with a length that issuer
/// uses (Visa, Mastercard incl. 2-series, Amex, Discover, JCB, Diners,
/// UnionPay).
pub fn card_issuer_ok(digits: &[u8]) -> bool {
    let len = digits.len();
    let p2 = prefix(digits, 2);
    let p3 = prefix(digits, 3);
    let p4 = prefix(digits, 4);
    let p6 = prefix(digits, 6);
    let visa = digits.first() == Some(&b'4') && matches!(len, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16;
    let amex = (p2 == 34 || p2 == 37) && len == 15;
    let discover =
        (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || (622126..=622925).contains(&p6))
            && (16..=19).contains(&len);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&len);
    let diners =
        ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&len);
    let unionpay = p2 == 62 && (16..=19).contains(&len);
    visa || mastercard || amex || discover || jcb || diners || unionpay
}

/// Validates a card candidate: one kind of separator at most, then issuer
/// range, length and Luhn. Returns the digit count on success.
pub fn card_ok(candidate: &[u8]) -> bool {
    let has_space = candidate.contains(&b' ');
    let has_dash = candidate.contains(&b'-');
    if has_space && has_dash {
        return false;
    }
    let mut digits = [0u8; 19];
    let mut n = 0;
    for &b in candidate.iter().filter(|b| b.is_ascii_digit()) {
        if n == digits.len() {
            return false;
        }
        digits[n] = b;
        n += 1;
    }
    let digits = &digits[..n];
    (13..=19).contains(&n) && card_issuer_ok(digits) && luhn_ok(digits) && !all_same(digits)
}

fn all_same(digits: &[u8]) -> bool {
    digits.windows(2).all(|w| w[0] == w[1])
}

/// IBAN length per country (ISO 13616 registry).
fn iban_length(country: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    TABLE
        .iter()
        .find(|(c, _)| c[..] == *country)
        .map(|&(_, l)| l)
}

/// Validates an IBAN candidate (spaces allowed): country length, then the
/// ISO 7064 mod-97 check.
pub fn iban_ok(candidate: &[u8]) -> bool {
    let mut compact = [0u8; 34];
    let mut n = 0;
    for &b in candidate.iter().filter(|&&b| b != b' ') {
        if n == compact.len() {
            return false;
        }
        compact[n] = b;
        n += 1;
    }
    let iban = &compact[..n];
    if n < 5 || iban_length(&iban[..2]) != Some(n) {
        return false;
    }
    // Move the first four characters to the end; letters count as 10..35.
    let mut rem = 0u32;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        rem = match b {
            b'0'..=b'9' => (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(b - b'A' + 10)) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// Validates `AAA-GG-SSSS`: area not 000, 666 or 9xx; group not 00; serial
/// not 0000; not a number known to be invalid or published as an example.
pub fn ssn_ok(candidate: &[u8]) -> bool {
    if candidate.len() != 11 {
        return false;
    }
    let area = prefix(&candidate[0..3], 3);
    let group = prefix(&candidate[4..6], 2);
    let serial = prefix(&candidate[7..11], 4);
    const KNOWN_INVALID: &[&[u8]] = &[
        b"078-05-1120",
        b"219-09-9999",
        b"457-55-5462",
        b"123-45-6789",
    ];
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !KNOWN_INVALID.contains(&candidate)
}

/// Validates a phone candidate. With `+`: 8 to 15 digits (E.164). Without:
/// 10 or 11 digits shaped like a North American number (`(555) 123-4567`,
/// `555-123-4567`) or a trunk-prefixed national number (`020 7946 0958`).
/// Dates, versions and times never have those shapes.
pub fn phone_ok(candidate: &[u8]) -> bool {
    let digits = candidate.iter().filter(|b| b.is_ascii_digit()).count();
    if candidate.first() == Some(&b'+') {
        return (8..=15).contains(&digits);
    }
    if !(10..=11).contains(&digits) {
        return false;
    }
    let groups = digit_groups(candidate);
    let seps_consistent = separators_consistent(candidate);
    let nanp = matches!(groups.as_slice(), [3, 3, 4] | [1, 3, 3, 4]);
    let trunk = candidate.first() == Some(&b'0') && groups.len() >= 2 && groups.len() <= 4;
    seps_consistent && (nanp || trunk)
}

fn digit_groups(candidate: &[u8]) -> Vec<usize> {
    candidate
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(<[u8]>::len)
        .collect()
}

/// Separators other than parentheses must all be the same byte.
fn separators_consistent(candidate: &[u8]) -> bool {
    // `(415) 555-2671`: the space after the area code is part of the style.
    let paren = candidate.contains(&b')');
    let mut seps = candidate
        .iter()
        .filter(|&&b| matches!(b, b'.' | b'-') || (b == b' ' && !paren))
        .copied();
    match seps.next() {
        Some(first) => seps.all(|s| s == first),
        None => true,
    }
}

/// Decodes unpadded base64url into `out` (cleared first); `false` on a byte
/// outside the alphabet or an impossible length.
pub fn base64url_decode(input: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if input.len() % 4 == 1 {
        return false;
    }
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return false,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    true
}

/// A JWT candidate is real when its header decodes to a JSON object with a
/// string `alg` member.
pub fn jwt_ok(candidate: &[u8]) -> bool {
    let header = match candidate.split(|&b| b == b'.').next() {
        Some(h) if h.len() <= 2000 => h,
        _ => return false,
    };
    let mut decoded = Vec::with_capacity(header.len());
    if !base64url_decode(header, &mut decoded) {
        return false;
    }
    match serde_json::from_slice::<serde_json::Value>(&decoded) {
        Ok(serde_json::Value::Object(map)) => map.get("alg").is_some_and(|a| a.is_string()),
        _ => false,
    }
}

/// Whether `b` can continue a base64 (standard or url-safe) token.
pub fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=')
}

/// A standalone 40-byte AWS secret candidate: mixed character classes (a real
/// key is random base64), which rules out hex digests and plain words.
pub fn aws_secret_shape_ok(candidate: &[u8]) -> bool {
    candidate.len() == 40
        && candidate.iter().any(u8::is_ascii_digit)
        && candidate.iter().any(u8::is_ascii_lowercase)
        && candidate.iter().any(u8::is_ascii_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_table() {
        for (input, ok) in [
            ("4111111111111111", true),
            ("4111111111111112", false),
            ("79927398713", true),
            ("0", true),
            ("12a4", false),
        ] {
            assert_eq!(luhn_ok(input.as_bytes()), ok, "{input}");
        }
    }

    #[test]
    fn card_table() {
        for (input, ok) in [
            ("4111111111111111", true),     // Visa
            ("4111 1111 1111 1111", true),  // Visa spaced
            ("4111-1111-1111-1111", true),  // Visa dashed
            ("4111 1111-1111 1111", false), // mixed separators
            ("5555555555554444", true),     // Mastercard 5-series
            ("2223003122003222", true),     // Mastercard 2-series
            ("378282246310005", true),      // Amex
            ("6011111111111117", true),     // Discover
            ("3530111333300000", true),     // JCB
            ("30569309025904", true),       // Diners
            ("6200000000000005", true),     // UnionPay
            ("4111111111111112", false),    // Luhn fails
            ("1234567812345670", false),    // Luhn ok, no issuer
            ("5555555555554", false),       // Mastercard wrong length
            ("0000000000000000", false),    // no issuer
            ("4444444444444448", true),
        ] {
            assert_eq!(card_ok(input.as_bytes()), ok, "{input}");
        }
    }

    #[test]
    fn iban_table() {
        for (input, ok) in [
            ("GB82WEST12345698765432", true),
            ("GB82 WEST 1234 5698 7654 32", true),
            ("DE89370400440532013000", true),
            ("FR1420041010050500013M02606", true),
            ("GB82WEST12345698765433", false), // checksum
            ("DE8937040044053201300", false),  // length
            ("ZZ82WEST12345698765432", false), // country
        ] {
            assert_eq!(iban_ok(input.as_bytes()), ok, "{input}");
        }
    }

    #[test]
    fn ssn_table() {
        for (input, ok) in [
            ("536-22-1234", true),
            ("000-12-3456", false),
            ("666-12-3456", false),
            ("912-12-3456", false),
            ("536-00-1234", false),
            ("536-22-0000", false),
            ("078-05-1120", false),
            ("219-09-9999", false),
        ] {
            assert_eq!(ssn_ok(input.as_bytes()), ok, "{input}");
        }
    }

    #[test]
    fn phone_table() {
        for (input, ok) in [
            ("+14155552671", true),
            ("+44 20 7946 0958", true),
            ("(415) 555-2671", true),
            ("415-555-2671", true),
            ("415.555.2671", true),
            ("1-415-555-2671", true),
            ("020 7946 0958", true),
            ("415-555.2671", false),
            ("2024-01-15", false),
            ("1.2.3", false),
            ("+1234", false),
            ("12 34 56", false),
        ] {
            assert_eq!(phone_ok(input.as_bytes()), ok, "{input}");
        }
    }

    #[test]
    fn jwt_header_must_be_json_with_alg() {
        let good = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2ln";
        assert!(jwt_ok(good));
        // {"typ":"JWT"} has no alg.
        assert!(!jwt_ok(b"eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln"));
        assert!(!jwt_ok(b"eyJhbGciOi.eyJzdWIiOiIxIn0.c2ln"));
    }

    #[test]
    fn base64url_rejects_bad_input() {
        let mut out = Vec::new();
        assert!(base64url_decode(b"aGk", &mut out));
        assert_eq!(out, b"hi");
        assert!(!base64url_decode(b"a", &mut out));
        assert!(!base64url_decode(b"a$bc", &mut out));
    }
}
