//! Byte sets that say when a transformation cannot change a value.
//!
//! Most transformations only ever touch a few kinds of byte (`%` and `+`
//! for `urlDecode`, `A`–`Z` for `lowercase` …): a value holding none of
//! them comes back unchanged. Each such transformation declares that set
//! (its *trigger*); the union over a chain tells, with one scan of a value,
//! that the whole chain is the identity on it, so the engine hands the
//! value on without running the chain or consulting its caches.

/// A set of byte values, one flag per byte (a table lookup per byte of a
/// scanned value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSet([bool; 256]);

impl Default for ByteSet {
    fn default() -> ByteSet {
        ByteSet::EMPTY
    }
}

impl ByteSet {
    pub const EMPTY: ByteSet = ByteSet([false; 256]);

    /// The set of the given bytes.
    pub const fn of(bytes: &[u8]) -> ByteSet {
        let mut set = ByteSet::EMPTY;
        let mut i = 0;
        while i < bytes.len() {
            set = set.with(bytes[i]);
            i += 1;
        }
        set
    }

    /// The bytes `lo..=hi`.
    pub const fn range(lo: u8, hi: u8) -> ByteSet {
        let mut set = ByteSet::EMPTY;
        let mut b = lo as usize;
        while b <= hi as usize {
            set = set.with(b as u8);
            b += 1;
        }
        set
    }

    pub const fn with(self, b: u8) -> ByteSet {
        let mut flags = self.0;
        flags[b as usize] = true;
        ByteSet(flags)
    }

    pub const fn union(self, other: ByteSet) -> ByteSet {
        let mut flags = self.0;
        let mut b = 0;
        while b < 256 {
            flags[b] |= other.0[b];
            b += 1;
        }
        ByteSet(flags)
    }

    pub const fn contains(&self, b: u8) -> bool {
        self.0[b as usize]
    }

    /// True when some byte of `value` is in the set.
    pub fn any_in(&self, value: &[u8]) -> bool {
        value.iter().any(|&b| self.0[b as usize])
    }

    /// The set as 256 bits (see [`presence`]).
    pub fn bits(&self) -> [u64; 4] {
        let mut words = [0u64; 4];
        for (b, _) in self.0.iter().enumerate().filter(|(_, on)| **on) {
            words[b / 64] |= 1 << (b % 64);
        }
        words
    }
}

/// Adds the bytes of `value` to `present`, a set of 256 bits: with
/// [`ByteSet::bits`], one test tells whether a whole group of values
/// avoids a trigger set.
pub fn presence(value: &[u8], present: &mut [u64; 4]) {
    for &b in value {
        present[usize::from(b >> 6)] |= 1 << (b & 63);
    }
}

/// C-locale `isspace()`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
pub const C_SPACE: ByteSet = ByteSet::of(b" \t\n\x0b\x0c\r");
pub const UPPER: ByteSet = ByteSet::range(b'A', b'Z');
pub const LOWER: ByteSet = ByteSet::range(b'a', b'z');
/// Bytes outside ASCII.
pub const HIGH: ByteSet = ByteSet::range(0x80, 0xff);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let set = ByteSet::of(b"%+").union(HIGH);
        assert!(set.contains(b'%') && set.contains(0x80) && set.contains(0xff));
        assert!(!set.contains(b'a') && !set.contains(0x7f) && !set.contains(0));
        assert!(set.any_in(b"a+b"));
        assert!(!set.any_in(b"plain"));
        assert!(UPPER.contains(b'A') && UPPER.contains(b'Z') && !UPPER.contains(b'a'));
        assert_eq!(ByteSet::range(0, 255).0, [true; 256]);
        let mut present = [0u64; 4];
        presence(b"a+", &mut present);
        assert_eq!(present, ByteSet::of(b"+a").bits());
        assert!(set.bits().iter().zip(present).any(|(s, p)| s & p != 0));
    }
}
