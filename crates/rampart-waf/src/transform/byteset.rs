//! Byte sets that say when a transformation cannot change a value.
//!
//! Most transformations only ever touch a few kinds of byte (`%` and `+`
//! for `urlDecode`, `A`–`Z` for `lowercase` …): a value holding none of
//! them comes back unchanged. Each such transformation declares that set
//! (its *trigger*); the union over a chain tells, with one scan of a value,
//! that the whole chain is the identity on it, so the engine hands the
//! value on without running the chain or consulting its caches.

/// A set of byte values, one flag per byte (a table lookup per byte of a
/// scanned value), and the same set as 256 bits (tested against a value's
/// presence set, see [`presence`], in four word operations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSet {
    flags: [bool; 256],
    words: [u64; 4],
}

impl Default for ByteSet {
    fn default() -> ByteSet {
        ByteSet::EMPTY
    }
}

impl ByteSet {
    pub const EMPTY: ByteSet = ByteSet {
        flags: [false; 256],
        words: [0; 4],
    };

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
        let mut flags = self.flags;
        flags[b as usize] = true;
        let mut words = self.words;
        words[b as usize / 64] |= 1 << (b % 64);
        ByteSet { flags, words }
    }

    pub const fn union(self, other: ByteSet) -> ByteSet {
        let mut flags = self.flags;
        let mut b = 0;
        while b < 256 {
            flags[b] |= other.flags[b];
            b += 1;
        }
        let mut words = self.words;
        let mut w = 0;
        while w < 4 {
            words[w] |= other.words[w];
            w += 1;
        }
        ByteSet { flags, words }
    }

    pub const fn contains(&self, b: u8) -> bool {
        self.flags[b as usize]
    }

    /// True when some byte of `value` is in the set.
    pub fn any_in(&self, value: &[u8]) -> bool {
        value.iter().any(|&b| self.flags[b as usize])
    }

    /// The set as 256 bits (see [`presence`]).
    pub fn bits(&self) -> [u64; 4] {
        self.words
    }

    /// True when no byte of the set is in `present` (a set from
    /// [`presence`]): `any_in` on the value `present` was taken from.
    pub fn disjoint(&self, present: &[u64; 4]) -> bool {
        self.words.iter().zip(present).all(|(s, p)| s & p == 0)
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
        assert_eq!(ByteSet::range(0, 255).flags, [true; 256]);
        assert_eq!(ByteSet::range(0, 255).bits(), [u64::MAX; 4]);
        assert!(ByteSet::of(b"%").disjoint(&{
            let mut p = [0; 4];
            presence(b"plain", &mut p);
            p
        }));
        let mut present = [0u64; 4];
        presence(b"a+", &mut present);
        assert_eq!(present, ByteSet::of(b"+a").bits());
        assert!(set.bits().iter().zip(present).any(|(s, p)| s & p != 0));
    }
}
