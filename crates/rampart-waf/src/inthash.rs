//! A fast hasher for maps keyed on small integers and addresses.

use std::hash::Hasher;

/// A multiplicative hasher for small integer keys (not DoS-sensitive: the
/// keys are addresses and chain numbers, not attacker-chosen bytes).
#[derive(Default)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A `HashMap` build-hasher for [`IntHasher`].
pub(crate) type IntBuild = std::hash::BuildHasherDefault<IntHasher>;
