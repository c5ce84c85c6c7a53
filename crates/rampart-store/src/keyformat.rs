//! The API key wire format: `rk_live_<secret><checksum>` / `rk_test_...`.
//!
//! The secret is 256 random bits written as 43 base62 characters; the
//! checksum is the CRC32 of `prefix + secret`, written as 6 base62
//! characters. The fixed prefix lets secret scanners find leaked keys; the
//! checksum lets tools and the gateway tell a typo ("malformed") from a key
//! that was never issued or was deleted ("invalid"). On the request path the
//! gateway checks only length and prefix before the HMAC lookup ([`shape`]);
//! a digest found in the cache is a key rampart issued, so its checksum is
//! known good, and the full [`parse`] runs only to name why a key failed. The public key id is the first 8 characters
//! of the secret: enough to find a key in logs, far too little to guess it.

use crate::secret::{base62_fixed, is_base62, random_bytes, BASE62_LEN_256};

/// Which environment a key belongs to (visible in its prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyEnv {
    Live,
    Test,
}

impl KeyEnv {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyEnv::Live => "rk_live_",
            KeyEnv::Test => "rk_test_",
        }
    }
}

const CHECKSUM_LEN: usize = 6;
const KEY_ID_LEN: usize = 8;
const PREFIX_LEN: usize = 8;
/// Total length of a well-formed key: prefix + secret + checksum.
pub const KEY_LEN: usize = PREFIX_LEN + BASE62_LEN_256 + CHECKSUM_LEN;

/// A freshly generated key (the full text is secret).
pub(crate) struct GeneratedKey {
    pub text: String,
    pub key_id: String,
}

/// Generates a new key from the OS CSPRNG.
pub(crate) fn generate(env: KeyEnv) -> GeneratedKey {
    let secret = base62_fixed(&random_bytes::<32>(), BASE62_LEN_256);
    let mut text = String::with_capacity(KEY_LEN);
    text.push_str(env.prefix());
    text.push_str(&secret);
    text.push_str(&checksum(env.prefix(), &secret).to_string());
    GeneratedKey {
        key_id: secret[..KEY_ID_LEN].to_string(),
        text,
    }
}

/// A syntactically valid key (checksum verified), borrowed from the input.
#[derive(Clone, Copy)]
pub struct ParsedKey<'a> {
    pub env: KeyEnv,
    /// The public key id (first 8 characters of the secret).
    pub key_id: &'a str,
}

/// The key id of a presented key that has a key's length and prefix, without
/// checking its alphabet or checksum: the cheap gate before the HMAC lookup.
pub fn shape(presented: &str) -> Option<&str> {
    if presented.len() != KEY_LEN
        || !(presented.starts_with(KeyEnv::Live.prefix())
            || presented.starts_with(KeyEnv::Test.prefix()))
    {
        return None;
    }
    presented.get(PREFIX_LEN..PREFIX_LEN + KEY_ID_LEN)
}

/// Checks prefix, length, alphabet and checksum. `None` means malformed:
/// no lookup is needed to refuse it.
pub fn parse(presented: &str) -> Option<ParsedKey<'_>> {
    if presented.len() != KEY_LEN {
        return None;
    }
    let env = if presented.starts_with(KeyEnv::Live.prefix()) {
        KeyEnv::Live
    } else if presented.starts_with(KeyEnv::Test.prefix()) {
        KeyEnv::Test
    } else {
        return None;
    };
    let body = &presented[PREFIX_LEN..];
    if !is_base62(body.as_bytes()) {
        return None;
    }
    let (secret, sum) = body.split_at(BASE62_LEN_256);
    if checksum(env.prefix(), secret) != sum {
        return None;
    }
    Some(ParsedKey {
        env,
        key_id: &secret[..KEY_ID_LEN],
    })
}

/// CRC32 of prefix + secret as 6 base62 characters, on the stack.
fn checksum(prefix: &str, secret: &str) -> ChecksumText {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(prefix.as_bytes());
    hasher.update(secret.as_bytes());
    let mut value = hasher.finalize();
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = crate::secret::BASE62[(value % 62) as usize];
        value /= 62;
    }
    ChecksumText(out)
}

/// A checksum rendered without allocating (this runs on every request).
#[derive(PartialEq, Eq)]
struct ChecksumText([u8; CHECKSUM_LEN]);

impl PartialEq<&str> for ChecksumText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl std::fmt::Display for ChecksumText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Always base62 ASCII.
        f.write_str(std::str::from_utf8(&self.0).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_carry_their_id() {
        let key = generate(KeyEnv::Live);
        assert!(key.text.starts_with("rk_live_"));
        assert_eq!(key.text.len(), KEY_LEN);
        let parsed = parse(&key.text).expect("well-formed");
        assert_eq!(parsed.env, KeyEnv::Live);
        assert_eq!(parsed.key_id, key.key_id);
        let test_key = generate(KeyEnv::Test);
        assert_eq!(parse(&test_key.text).unwrap().env, KeyEnv::Test);
    }

    #[test]
    fn checksum_matches_base62_of_crc32() {
        let secret = "0".repeat(BASE62_LEN_256);
        let crc = crc32fast::hash(format!("rk_live_{secret}").as_bytes());
        let expected = base62_fixed(&crc.to_be_bytes(), CHECKSUM_LEN);
        assert_eq!(checksum("rk_live_", &secret).to_string(), expected);
    }

    #[test]
    fn a_single_typo_fails_the_checksum() {
        let key = generate(KeyEnv::Live).text;
        let mut bytes = key.into_bytes();
        bytes[20] = if bytes[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert!(parse(&typo).is_none());
    }

    #[test]
    fn wrong_prefix_length_or_alphabet_is_malformed() {
        let key = generate(KeyEnv::Live).text;
        assert!(parse(&key.replacen("rk_live_", "rk_prod_", 1)).is_none());
        assert!(parse(&key[..KEY_LEN - 1]).is_none());
        assert!(parse("").is_none());
        let mut bad = key.clone();
        bad.replace_range(10..11, "-");
        assert!(parse(&bad).is_none());
        // Multi-byte input of exactly the right byte length must not panic.
        let odd = format!("rk_live_{}{}", "é".repeat(24), "a");
        assert_eq!(odd.len(), KEY_LEN);
        assert!(parse(&odd).is_none());
    }
}
