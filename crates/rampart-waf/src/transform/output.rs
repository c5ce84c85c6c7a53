//! A copy-on-write output buffer shared by every transformation.
//!
//! Most values a WAF inspects are left untouched by most transformations
//! (`t:lowercase` on an already-lowercase argument, `t:urlDecodeUni` on a value
//! without `%`). [`Output`] keeps borrowing the input for as long as the bytes
//! written so far are a prefix of it, and only allocates at the first byte that
//! differs. A transformation that merely shortens its input (e.g. trimming a
//! trailing space) therefore never allocates either.

use std::borrow::Cow;

/// True when no byte of `input` satisfies `special`: a transformation that
/// only ever changes such bytes leaves the input as it is. One tight scan
/// is much cheaper than pushing every byte through an [`Output`], and most
/// values a WAF sees contain nothing to decode.
#[inline]
pub(crate) fn none_special(input: &[u8], special: impl Fn(u8) -> bool) -> bool {
    !input.iter().any(|&b| special(b))
}

/// Output under construction; borrowed from `src` until it diverges.
pub(crate) struct Output<'a> {
    src: &'a [u8],
    owned: Option<Vec<u8>>,
    /// Length of the output while it is still the prefix `src[..len]`.
    len: usize,
}

impl<'a> Output<'a> {
    pub(crate) fn new(src: &'a [u8]) -> Self {
        Output {
            src,
            owned: None,
            len: 0,
        }
    }

    /// Appends one byte, switching to an owned buffer on the first mismatch.
    #[inline(always)]
    pub(crate) fn push(&mut self, byte: u8) {
        match &mut self.owned {
            Some(buf) => buf.push(byte),
            None if self.src.get(self.len) == Some(&byte) => self.len += 1,
            None => self.diverge(byte),
        }
    }

    /// The first byte that differs from the input: copies the prefix into
    /// an owned buffer (out of line, so that `push` stays small enough to
    /// inline into every transformation's byte loop).
    #[cold]
    #[inline(never)]
    fn diverge(&mut self, byte: u8) {
        // Reserve the input length: most transformations shrink or keep
        // the size, so one allocation is usually enough.
        let mut buf = Vec::with_capacity(self.src.len().max(self.len + 1));
        buf.extend_from_slice(&self.src[..self.len]);
        buf.push(byte);
        self.owned = Some(buf);
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    /// Removes and returns the last byte written.
    pub(crate) fn pop(&mut self) -> Option<u8> {
        match &mut self.owned {
            Some(buf) => buf.pop(),
            None if self.len > 0 => {
                self.len -= 1;
                Some(self.src[self.len])
            }
            None => None,
        }
    }

    pub(crate) fn finish(self) -> Cow<'a, [u8]> {
        match self.owned {
            Some(buf) => Cow::Owned(buf),
            None => Cow::Borrowed(&self.src[..self.len]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_output_stays_borrowed() {
        let mut out = Output::new(b"abc");
        out.extend(b"abc");
        assert!(matches!(out.finish(), Cow::Borrowed(b"abc")));
    }

    #[test]
    fn shortened_output_stays_borrowed() {
        let mut out = Output::new(b"abc ");
        out.extend(b"abc");
        assert!(matches!(out.finish(), Cow::Borrowed(b"abc")));
    }

    #[test]
    fn divergence_allocates_and_keeps_prefix() {
        let mut out = Output::new(b"abc");
        out.extend(b"aXc!");
        assert_eq!(out.finish(), Cow::<[u8]>::Owned(b"aXc!".to_vec()));
    }

    #[test]
    fn pop_works_in_both_states() {
        let mut out = Output::new(b"ab");
        out.extend(b"ab");
        assert_eq!(out.pop(), Some(b'b'));
        out.push(b'z');
        assert_eq!(out.pop(), Some(b'z'));
        assert_eq!(out.finish().as_ref(), b"a");
    }
}
