//! Keys, signatures and small encoding helpers shared by puzzles, CAPTCHAs
//! and clearance tokens.
//!
//! Every token rampart-bot hands out has the shape
//! `<purpose>.<key id>.<payload, base64url>.<HMAC-SHA256 tag, base64url>`.
//! The purpose is part of the signed bytes, so a puzzle token can never be
//! replayed as a clearance cookie even though both are signed by one key ring.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// One signing key. The secret never appears in `Debug` output.
#[derive(Clone)]
pub struct Key {
    id: String,
    hmac: hmac::Key,
}

impl Key {
    /// Builds a key from its id (short, `[A-Za-z0-9_-]`, shown in tokens) and
    /// secret (at least 32 bytes of randomness).
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        let id_ok = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(KeyError::BadId);
        }
        if secret.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        Ok(Key {
            id: id.to_string(),
            hmac: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// A fresh random key, for tests and single-node deployments.
    pub fn generate(id: &str) -> Result<Self, KeyError> {
        Key::new(id, &random_bytes::<32>())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A keyed hash (HMAC-SHA256) of `value` in `domain` with this key.
    pub fn keyed_hash(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.hmac);
        ctx.update(domain.as_bytes());
        ctx.update(&[0]);
        ctx.update(value);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key id must be 1-32 characters of [A-Za-z0-9_-]")]
    BadId,
    #[error("key secret must be at least 32 bytes")]
    ShortSecret,
}

/// The current signing key plus older keys still accepted for verification,
/// so keys can rotate without invalidating live tokens.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: Key,
    previous: Vec<Key>,
}

impl KeyRing {
    pub fn new(current: Key) -> Self {
        KeyRing {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a key that still verifies but no longer signs.
    pub fn with_previous(mut self, key: Key) -> Self {
        self.previous.push(key);
        self
    }

    /// The key used for new signatures.
    pub fn current(&self) -> &Key {
        &self.current
    }

    fn find(&self, id: &str) -> Option<&Key> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == id)
    }

    /// Signs `payload` for `purpose` and returns the full token text.
    pub fn seal(&self, purpose: &str, payload: &[u8]) -> String {
        let mut token = String::with_capacity(purpose.len() + payload.len() * 2 + 64);
        token.push_str(purpose);
        token.push('.');
        token.push_str(&self.current.id);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let tag = hmac::sign(&self.current.hmac, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        token
    }

    /// Checks a token's purpose and signature (constant time) and returns
    /// its payload. Any malformation is reported as [`TokenError`].
    pub fn open(&self, purpose: &str, token: &str) -> Result<Vec<u8>, TokenError> {
        self.open_keyed(purpose, token).map(|(payload, _)| payload)
    }

    /// Like [`KeyRing::open`], also returning the key that signed the token
    /// (for values keyed at issue time, such as CAPTCHA answer hashes).
    pub fn open_keyed(&self, purpose: &str, token: &str) -> Result<(Vec<u8>, &Key), TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (signed, tag_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let mut parts = signed.splitn(3, '.');
        let (Some(p), Some(kid), Some(payload_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if p != purpose {
            return Err(TokenError::WrongPurpose);
        }
        let key = self.find(kid).ok_or(TokenError::UnknownKey)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag_b64)
            .map_err(|_| TokenError::Malformed)?;
        hmac::verify(&key.hmac, signed.as_bytes(), &tag).map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)?;
        Ok((payload, key))
    }

    /// A keyed hash (HMAC-SHA256 with the current key) for pseudonymising
    /// values such as usernames before they are used as counter keys.
    pub fn keyed_hash(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        self.current.keyed_hash(domain, value)
    }
}

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 1024;

/// Why a token was refused. Carries no token text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token was issued for another purpose")]
    WrongPurpose,
    #[error("token key is unknown")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is bound to another client")]
    WrongClient,
    #[error("token was already used")]
    Replayed,
    /// The used-token store could not answer; the token is refused (fail
    /// closed) and the client must solve a new challenge.
    #[error("used-token store is unavailable")]
    StoreUnavailable,
}

/// Cryptographically secure random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // SystemRandom only fails when the OS has no entropy source at all, in
    // which case no safe token can be made; falling back to fastrand-style
    // randomness would be worse than stopping loudly.
    SystemRandom::new()
        .fill(&mut out)
        .expect("operating system random source failed");
    out
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(Key::new("k1", &[7u8; 32]).unwrap())
    }

    #[test]
    fn seal_then_open_round_trips() {
        let r = ring();
        let t = r.seal("clr", b"hello");
        assert_eq!(r.open("clr", &t).unwrap(), b"hello");
    }

    #[test]
    fn purpose_is_bound() {
        let r = ring();
        let t = r.seal("pow", b"x");
        assert_eq!(r.open("clr", &t), Err(TokenError::WrongPurpose));
        let forged = t.replacen("pow", "clr", 1);
        assert_eq!(r.open("clr", &forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_payload_is_refused() {
        let r = ring();
        let t = r.seal("clr", b"hello");
        let mut parts: Vec<&str> = t.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(b"hellp");
        parts[2] = &other;
        assert_eq!(
            r.open("clr", &parts.join(".")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_dropped() {
        let old = Key::new("old", &[1u8; 32]).unwrap();
        let t = KeyRing::new(old.clone()).seal("clr", b"p");
        let rotated = KeyRing::new(Key::new("new", &[2u8; 32]).unwrap()).with_previous(old);
        assert_eq!(rotated.open("clr", &t).unwrap(), b"p");
        let dropped = KeyRing::new(Key::new("new", &[2u8; 32]).unwrap());
        assert_eq!(dropped.open("clr", &t), Err(TokenError::UnknownKey));
    }

    #[test]
    fn key_debug_hides_secret_and_bad_keys_are_refused() {
        let k = Key::new("k1", &[0xAB; 32]).unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("171"));
        assert_eq!(Key::new("k 1", &[0; 32]).unwrap_err(), KeyError::BadId);
        assert_eq!(Key::new("k1", &[0; 8]).unwrap_err(), KeyError::ShortSecret);
    }

    #[test]
    fn garbage_tokens_are_errors_not_panics() {
        let r = ring();
        for t in [
            "",
            ".",
            "a.b",
            "clr.k1.!!.!!",
            "clr.k1..",
            &"x".repeat(5000),
        ] {
            assert!(r.open("clr", t).is_err(), "{t}");
        }
    }
}
