//! Encryption at rest for consumer TOTP secrets.
//!
//! A TOTP secret must be readable by the gateway (it computes codes from
//! it), so it cannot be stored as a digest like API keys. It is sealed with
//! ChaCha20-Poly1305 (`ring`) under a key derived from the server secret
//! (`HMAC-SHA256(server secret, label)`), with a random 96-bit nonce and the
//! consumer id as associated data: a copied database is useless without the
//! server secret, and a sealed secret moved to another consumer's record
//! fails to open.
//!
//! Stored form: `v1:` + base32(nonce ‖ ciphertext ‖ tag).

use crate::error::StoreError;
use crate::model::SealedSecret;
use crate::secret::{base32_decode, base32_encode, random_bytes, ServerSecret};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

/// Domain-separation label of the derived key (never reuse elsewhere).
const KEY_LABEL: &[u8] = b"rampart/consumer-totp/seal/v1";
const VERSION: &str = "v1:";

/// Seals and opens consumer TOTP secrets. Holds key material: `Debug` is
/// redacted.
pub(crate) struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    pub fn new(secret: &ServerSecret) -> Result<Sealer, StoreError> {
        let derived = secret.digest(KEY_LABEL);
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &derived.0)
            .map_err(|_| StoreError::Backend("TOTP sealing key setup failed".into()))?;
        Ok(Sealer {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `plain` for `consumer_id`.
    pub fn seal(&self, consumer_id: &str, plain: &[u8]) -> Result<SealedSecret, StoreError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buffer = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad(consumer_id).as_slice()),
                &mut buffer,
            )
            .map_err(|_| StoreError::Backend("sealing a TOTP secret failed".into()))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        Ok(SealedSecret(format!("{VERSION}{}", base32_encode(&out))))
    }

    /// Decrypts a secret sealed for `consumer_id`. Fails (as `Corrupt`) on a
    /// tampered or moved record, or when the server secret changed.
    pub fn open(&self, consumer_id: &str, sealed: &SealedSecret) -> Result<Vec<u8>, StoreError> {
        let corrupt = || {
            StoreError::Corrupt(format!(
                "TOTP secret of consumer {consumer_id} cannot be decrypted \
                 (tampered record or different server secret)"
            ))
        };
        let body = sealed.0.strip_prefix(VERSION).ok_or_else(corrupt)?;
        let bytes = base32_decode(body).ok_or_else(corrupt)?;
        if bytes.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(corrupt());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut buffer = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(consumer_id).as_slice()), &mut buffer)
            .map_err(|_| corrupt())?;
        Ok(plain.to_vec())
    }
}

fn aad(consumer_id: &str) -> Vec<u8> {
    let mut out = b"rampart consumer totp\0".to_vec();
    out.extend_from_slice(consumer_id.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&ServerSecret::new(&[byte; 32]).unwrap()).unwrap()
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let s = sealer(1);
        let sealed = s.seal("acme", b"12345678901234567890").unwrap();
        assert!(sealed.0.starts_with("v1:"));
        assert!(!sealed.0.contains(&base32_encode(b"12345678901234567890")));
        assert_eq!(s.open("acme", &sealed).unwrap(), b"12345678901234567890");
        let again = s.seal("acme", b"12345678901234567890").unwrap();
        assert_ne!(sealed, again, "random nonce per seal");
    }

    #[test]
    fn refuses_other_consumer_other_key_and_tampering() {
        let s = sealer(1);
        let sealed = s.seal("acme", b"secret-bytes").unwrap();
        assert!(matches!(
            s.open("globex", &sealed),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            sealer(2).open("acme", &sealed),
            Err(StoreError::Corrupt(_))
        ));
        let mut bytes = base32_decode(&sealed.0[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = SealedSecret(format!("v1:{}", base32_encode(&bytes)));
        assert!(s.open("acme", &tampered).is_err());
        assert!(s.open("acme", &SealedSecret("v1:AA".into())).is_err());
        assert!(s.open("acme", &SealedSecret("plain".into())).is_err());
    }
}
