//! Header names remembered per connection. A peer sends the same field
//! names in the same order message after message (a client's browser or
//! library, an upstream server), so a name whose bytes equal the one seen
//! at the same position last time is that `HeaderName` again: one short
//! comparison instead of lower-casing it and looking it up among the
//! standard names (~300-450 instructions per field, callgrind).

use http::HeaderName;

/// Names longer than this are parsed every time (they are rare).
const MAX_NAME: usize = 32;
/// Positions remembered.
const MAX_FIELDS: usize = 64;

/// The field names of the last head, by position.
#[derive(Default)]
pub struct NameMemo {
    entries: Vec<Entry>,
}

struct Entry {
    raw: [u8; MAX_NAME],
    len: u8,
    name: HeaderName,
}

impl NameMemo {
    /// The header name for the raw bytes of field number `index`, or `None`
    /// when they are not a valid name.
    pub fn name(&mut self, index: usize, raw: &[u8]) -> Option<HeaderName> {
        if let Some(e) = self.entries.get(index) {
            if &e.raw[..usize::from(e.len)] == raw {
                return Some(e.name.clone());
            }
        }
        let name = HeaderName::from_bytes(raw).ok()?;
        if raw.len() <= MAX_NAME && index < MAX_FIELDS && index <= self.entries.len() {
            let mut entry = Entry {
                raw: [0; MAX_NAME],
                len: raw.len() as u8,
                name: name.clone(),
            };
            entry.raw[..raw.len()].copy_from_slice(raw);
            match self.entries.get_mut(index) {
                Some(slot) => *slot = entry,
                None => self.entries.push(entry),
            }
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_give_the_same_name_and_new_bytes_are_parsed() {
        let mut memo = NameMemo::default();
        let fields: [&[u8]; 3] = [b"Host", b"X-Custom-Thing", b"accept"];
        for _ in 0..2 {
            for (i, raw) in fields.iter().enumerate() {
                let got = memo.name(i, raw).expect("valid");
                assert_eq!(got, HeaderName::from_bytes(raw).expect("valid"));
            }
        }
        // Another name at a remembered position replaces it.
        assert_eq!(memo.name(1, b"Cookie"), Some(http::header::COOKIE));
        assert_eq!(memo.name(1, b"Cookie"), Some(http::header::COOKIE));
        assert_eq!(
            memo.name(1, b"X-Custom-Thing").map(|n| n.to_string()),
            Some("x-custom-thing".into())
        );
        // Case differs: different bytes, parsed again, same name.
        assert_eq!(memo.name(0, b"HOST"), Some(http::header::HOST));
    }

    #[test]
    fn invalid_and_long_names() {
        let mut memo = NameMemo::default();
        assert_eq!(memo.name(0, b"bad name"), None);
        assert_eq!(memo.name(0, b""), None);
        let long = [b'x'; 40];
        let name = memo.name(0, &long).expect("valid");
        assert_eq!(name.as_str().len(), 40);
        assert_eq!(memo.name(0, &long), Some(name));
        // A prefix of a remembered name is not that name.
        memo.name(1, b"content-type");
        assert_eq!(
            memo.name(1, b"content"),
            HeaderName::from_bytes(b"content").ok()
        );
    }
}
