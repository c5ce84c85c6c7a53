//! A minimal DER reader for public keys in PEM files: SubjectPublicKeyInfo
//! (`BEGIN PUBLIC KEY`) for RSA, P-256, P-384 and Ed25519, and PKCS#1
//! (`BEGIN RSA PUBLIC KEY`). Only what those structures need is parsed;
//! anything else is an error, never a panic.

use base64::Engine;

use crate::key::{KeyError, VerifyingKey};

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Parses every public key in a PEM text (several blocks may follow each
/// other). Private-key and certificate blocks are refused: configuring a
/// private key where a public one belongs is an operator error worth flagging.
pub fn keys_from_pem(pem: &str) -> Result<Vec<VerifyingKey>, KeyError> {
    let mut keys = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or(KeyError::Pem)?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker).ok_or(KeyError::Pem)?;
        let body: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| KeyError::Pem)?;
        keys.push(match label {
            "PUBLIC KEY" => key_from_spki(&der)?,
            "RSA PUBLIC KEY" => rsa_from_pkcs1(&der)?,
            _ => return Err(KeyError::PemLabel),
        });
        rest = &body_start[body_end + end_marker.len()..];
    }
    if keys.is_empty() {
        return Err(KeyError::Pem);
    }
    Ok(keys)
}

/// Parses a DER SubjectPublicKeyInfo.
pub fn key_from_spki(der: &[u8]) -> Result<VerifyingKey, KeyError> {
    let mut outer = Reader::new(der);
    let mut spki = Reader::new(outer.read(TAG_SEQUENCE)?);
    outer.finish()?;
    let mut alg_id = Reader::new(spki.read(TAG_SEQUENCE)?);
    let bits = spki.read(TAG_BIT_STRING)?;
    spki.finish()?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(KeyError::Der),
    };
    let oid = alg_id.read(TAG_OID)?;
    if oid == OID_RSA {
        if !alg_id.is_empty() {
            alg_id.read(TAG_NULL)?;
        }
        alg_id.finish()?;
        rsa_from_pkcs1(key)
    } else if oid == OID_EC_PUBLIC_KEY {
        let curve = alg_id.read(TAG_OID)?;
        alg_id.finish()?;
        match curve {
            OID_P256 => VerifyingKey::ec_p256(key.to_vec()),
            OID_P384 => VerifyingKey::ec_p384(key.to_vec()),
            _ => Err(KeyError::UnsupportedKey),
        }
    } else if oid == OID_ED25519 {
        alg_id.finish()?;
        VerifyingKey::ed25519(key.to_vec())
    } else {
        Err(KeyError::UnsupportedKey)
    }
}

/// Parses a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }`.
pub fn rsa_from_pkcs1(der: &[u8]) -> Result<VerifyingKey, KeyError> {
    let mut outer = Reader::new(der);
    let mut seq = Reader::new(outer.read(TAG_SEQUENCE)?);
    outer.finish()?;
    let n = seq.read(TAG_INTEGER)?;
    let e = seq.read(TAG_INTEGER)?;
    seq.finish()?;
    VerifyingKey::rsa(strip_sign_byte(n), strip_sign_byte(e))
}

/// DER integers carry a leading zero when the top bit is set; key math wants
/// the plain unsigned big-endian bytes.
fn strip_sign_byte(int: &[u8]) -> &[u8] {
    match int {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    }
}

/// Reads definite-length DER TLVs from a slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn finish(&self) -> Result<(), KeyError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(KeyError::Der)
        }
    }

    /// Reads one element with the expected tag and returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], KeyError> {
        let (&found, rest) = self.rest.split_first().ok_or(KeyError::Der)?;
        if found != tag {
            return Err(KeyError::Der);
        }
        let (&first_len, mut rest) = rest.split_first().ok_or(KeyError::Der)?;
        let len = if first_len < 0x80 {
            usize::from(first_len)
        } else {
            // Long form: 1..=4 length bytes are plenty for public keys.
            let count = usize::from(first_len & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(KeyError::Der);
            }
            let (len_bytes, after) = rest.split_at(count);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        if rest.len() < len {
            return Err(KeyError::Der);
        }
        let (contents, after) = rest.split_at(len);
        self.rest = after;
        Ok(contents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::KeyFamily;

    #[test]
    fn truncated_and_garbage_der_is_an_error() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x05, 0x02],
        ] {
            assert!(key_from_spki(input).is_err());
            assert!(rsa_from_pkcs1(input).is_err());
        }
    }

    #[test]
    fn ed25519_spki_parses() {
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(&[7u8; 32]);
        let key = key_from_spki(&der).unwrap();
        assert_eq!(key.family(), KeyFamily::Ed25519);
    }

    #[test]
    fn private_key_pem_is_refused() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(keys_from_pem(pem), Err(KeyError::PemLabel)));
        assert!(matches!(keys_from_pem("no pem here"), Err(KeyError::Pem)));
    }
}
