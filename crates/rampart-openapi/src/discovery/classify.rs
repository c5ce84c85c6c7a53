//! Which path segments are identifiers: numbers, UUIDs, long hex strings and
//! long mixed letter-and-digit codes (`ORD-2024-0001`). Pure byte checks, no
//! regular expressions.

/// Whether `segment` looks like an identifier rather than a resource name.
pub fn is_identifier(segment: &str) -> bool {
    is_numeric(segment) || is_uuid(segment) || is_long_hex(segment) || is_mixed_code(segment)
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_long_hex(s: &str) -> bool {
    s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// At least 8 characters of letters, digits, `-`, `_` or `.`, with letters
/// and at least 3 digits: order numbers and tokens, not `oauth2` or `v1`.
fn is_mixed_code(s: &str) -> bool {
    if s.len() < 8
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return false;
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let letters = s.bytes().filter(u8::is_ascii_alphabetic).count();
    digits >= 3 && letters >= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for id in [
            "123",
            "0",
            "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
            "deadbeefdeadbeef",
            "ORD-2024-0001",
            "a1b2c3d4e5",
        ] {
            assert!(is_identifier(id), "{id}");
        }
    }

    #[test]
    fn resource_names() {
        for name in [
            "users",
            "v1",
            "oauth2",
            "me",
            "deadbeef",
            "api-v2",
            "healthz",
            "",
            "order_items",
            "2fa-setup",
        ] {
            assert!(!is_identifier(name), "{name}");
        }
    }
}
