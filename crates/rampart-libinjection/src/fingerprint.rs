//! [`Fingerprint`]: the short token-type string libinjection derives from SQL input.

use core::fmt;

/// Longest fingerprint libinjection produces is 5 token types; the buffer it is
/// read from is 8 bytes, NUL-padded.
const CAPACITY: usize = 8;

/// A libinjection SQLi fingerprint such as `s&sos` or `1UE`: one ASCII
/// character per folded token (`s` string, `&` logic operator, `o` operator,
/// `U` union, `E` expression, `1` number, `X` unparsable/evil, ...).
///
/// It is `Copy` and allocation-free, so it can be returned on the hot path.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    buf: [u8; CAPACITY],
    len: u8,
}

impl Fingerprint {
    /// Reads a NUL-padded fingerprint buffer (the layout libinjection uses).
    /// Bytes after the first NUL are ignored; non-ASCII bytes, which
    /// libinjection never emits, end the fingerprint as a NUL would.
    pub(crate) fn from_nul_padded(raw: [u8; CAPACITY]) -> Self {
        let len = raw
            .iter()
            .position(|&b| b == 0 || !b.is_ascii())
            .unwrap_or(CAPACITY);
        let mut buf = [0u8; CAPACITY];
        buf[..len].copy_from_slice(&raw[..len]);
        Fingerprint {
            buf,
            len: len as u8,
        }
    }

    /// The fingerprint as text, e.g. `"s&sos"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `from_nul_padded`), so this cannot fail.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The fingerprint's bytes, without padding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl AsRef<str> for Fingerprint {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Fingerprint {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Fingerprint {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({:?})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_nul_padded_stops_at_first_nul() {
        let fp = Fingerprint::from_nul_padded(*b"s&sos\0\0\0");
        assert_eq!(fp.as_str(), "s&sos");
        assert_eq!(fp.as_bytes(), b"s&sos");
    }

    #[test]
    fn from_nul_padded_ignores_bytes_after_the_nul() {
        let fp = Fingerprint::from_nul_padded(*b"1U\0junk!");
        assert_eq!(fp, "1U");
        // Equality and hashing only see the fingerprint, not the padding.
        assert_eq!(fp, Fingerprint::from_nul_padded(*b"1U\0\0\0\0\0\0"));
    }

    #[test]
    fn full_buffer_without_nul_keeps_all_eight_bytes() {
        assert_eq!(
            Fingerprint::from_nul_padded(*b"abcdefgh").as_str(),
            "abcdefgh"
        );
    }

    #[test]
    fn non_ascii_byte_ends_the_fingerprint() {
        assert_eq!(
            Fingerprint::from_nul_padded(*b"sk\xffo\0\0\0\0").as_str(),
            "sk"
        );
    }

    #[test]
    fn display_is_the_bare_fingerprint_and_debug_names_the_type() {
        let fp = Fingerprint::from_nul_padded(*b"1UE\0\0\0\0\0");
        assert_eq!(fp.to_string(), "1UE");
        assert_eq!(format!("{fp:?}"), "Fingerprint(\"1UE\")");
    }
}
