//! Secret material: the server HMAC secret, random tokens, digests and
//! base62/base32 encodings.
//!
//! Every stored credential (API key, admin token, session id) is kept only as
//! `HMAC-SHA256(server secret, presented value)`: a stolen database alone
//! cannot be used to forge or test guesses offline without the server secret.

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// A 32-byte HMAC-SHA256 digest of a credential.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Lowercase hex, used as a storage key (the digest is not secret).
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
        out
    }

    /// Parses 64 hex characters; `None` on anything else.
    pub fn from_hex(s: &str) -> Option<Digest> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Digest(out))
    }

    /// Constant-time equality (for comparisons outside a hash lookup).
    /// The difference is folded into one word without early exit, then
    /// compared with `subtle` (one barrier instead of one per byte).
    pub fn ct_eq(&self, other: &Digest) -> bool {
        let word = |d: &Digest, i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&d.0[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        let diff = (0..4).fold(0u64, |acc, i| acc | (word(self, i) ^ word(other, i)));
        subtle::ConstantTimeEq::ct_eq(&diff, &0).into()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not secret but is long; the first bytes identify it.
        write!(f, "Digest({}…)", &self.to_hex()[..12])
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The server secret keying every credential digest. Loaded by the caller
/// from a file or the environment; never printed.
#[derive(Clone)]
pub struct ServerSecret {
    /// Keyed once: a digest clones the state with the key absorbed. (`sha2`
    /// uses the CPU's SHA extensions; ring's HMAC measured slower here.)
    mac: HmacSha256,
}

/// The server secret is too short to key the HMAC safely.
#[derive(Debug, thiserror::Error)]
#[error("server secret must be at least {min} bytes, got {got}", min = ServerSecret::MIN_LEN)]
pub struct WeakSecret {
    pub got: usize,
}

impl ServerSecret {
    /// The minimum accepted length: 32 bytes (256 bits).
    pub const MIN_LEN: usize = 32;

    /// Keys the HMAC with `bytes` (at least [`MIN_LEN`](Self::MIN_LEN) bytes).
    pub fn new(bytes: &[u8]) -> Result<ServerSecret, WeakSecret> {
        if bytes.len() < Self::MIN_LEN {
            return Err(WeakSecret { got: bytes.len() });
        }
        let mac = HmacSha256::new_from_slice(bytes).map_err(|_| WeakSecret { got: bytes.len() })?;
        Ok(ServerSecret { mac })
    }

    /// `HMAC-SHA256(secret, value)`.
    pub fn digest(&self, value: &[u8]) -> Digest {
        let mut mac = self.mac.clone();
        mac.update(value);
        Digest(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

/// A credential shown to its owner exactly once. `Debug` and `Display` are
/// redacted; read it with [`expose`](Self::expose) to hand it over.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> SecretString {
        SecretString(value)
    }

    /// The secret itself: only for showing it to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // Without a working OS CSPRNG no credential can be issued safely:
    // failing loudly is the only correct outcome.
    if let Err(e) = rand::rngs::OsRng.try_fill_bytes(&mut out) {
        panic!("operating system random number generator failed: {e}");
    }
    out
}

/// A random base62 string carrying 256 bits of entropy (43 characters).
pub fn random_token() -> String {
    base62_fixed(&random_bytes::<32>(), BASE62_LEN_256)
}

/// Characters needed to write any 256-bit number in base62.
pub const BASE62_LEN_256: usize = 43;

pub(crate) const BASE62: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Encodes a big-endian number in base62, left-padded with '0' to `width`.
pub fn base62_fixed(bytes: &[u8], width: usize) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut digits = Vec::with_capacity(width);
    // Repeated division of the big number by 62 (schoolbook, fine for 32 bytes).
    while num.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            rem = acc % 62;
        }
        digits.push(BASE62[rem as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

/// Whether every byte is a base62 character.
pub fn is_base62(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_alphanumeric)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (the form authenticator apps expect).
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        if c == b'=' || c == b' ' {
            continue;
        }
        let upper = c.to_ascii_uppercase();
        let val = BASE32.iter().position(|&b| b == upper)? as u32;
        buffer = (buffer << 5) | val;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_encodes_known_values() {
        assert_eq!(base62_fixed(&[0], 3), "000");
        assert_eq!(base62_fixed(&[61], 1), "z");
        assert_eq!(base62_fixed(&[0, 62], 2), "10");
        assert_eq!(base62_fixed(&[0xff; 32], 43).len(), 43);
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw6ytb").unwrap(), b"fooba");
        assert!(base32_decode("M1").is_none());
    }

    #[test]
    fn digest_hex_round_trips() {
        let secret = ServerSecret::new(&[7u8; 32]).unwrap();
        let d = secret.digest(b"x");
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert!(Digest::from_hex("zz").is_none());
    }

    #[test]
    fn digest_is_standard_hmac_sha256() {
        // RFC 4231 test case 6 (a key longer than the block): stored
        // digests stay valid whichever HMAC implementation computes them.
        let secret = ServerSecret::new(&[0xaa; 131]).unwrap();
        let d = secret.digest(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            d.to_hex(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn ct_eq_sees_a_difference_in_any_byte() {
        let a = ServerSecret::new(&[7u8; 32]).unwrap().digest(b"k");
        assert!(a.ct_eq(&a.clone()));
        for i in 0..32 {
            let mut b = a;
            b.0[i] ^= 0x01;
            assert!(!a.ct_eq(&b), "byte {i}");
        }
    }

    #[test]
    fn short_server_secret_is_refused() {
        assert!(ServerSecret::new(&[1u8; 16]).is_err());
    }
}
