//! JWS signature algorithms the gateway accepts, and the key family each needs.
//!
//! `none` is deliberately not representable: a token whose header says `none`
//! fails to parse into an [`Algorithm`] and is refused as not allowed.

use std::fmt;

/// A JWS `alg` value (RFC 7518 section 3, RFC 8037 for EdDSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    /// Ed25519 only (Ed448 is not supported).
    EdDSA,
}

/// The kind of key an algorithm verifies with. A key is only ever used with
/// algorithms of its own family, which rules out algorithm confusion
/// (for example an RSA public key used as an HMAC secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// Parses a header `alg` value (case-sensitive, as RFC 7515 requires).
    /// Returns `None` for `none` and for anything unsupported.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The registered JWS name, e.g. `"RS256"`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The key family this algorithm verifies with.
    pub fn family(self) -> KeyFamily {
        match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeyFamily::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 => KeyFamily::EcP256,
            Algorithm::ES384 => KeyFamily::EcP384,
            Algorithm::EdDSA => KeyFamily::Ed25519,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
    }

    #[test]
    fn none_and_case_variants_are_not_algorithms() {
        for name in [
            "none", "None", "NONE", "hs256", "rs256", "", "ES512", "Ed25519",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn families_separate_hmac_from_public_keys() {
        assert_eq!(Algorithm::HS256.family(), KeyFamily::Hmac);
        assert_eq!(Algorithm::RS256.family(), KeyFamily::Rsa);
        assert_eq!(Algorithm::PS512.family(), KeyFamily::Rsa);
        assert_eq!(Algorithm::ES256.family(), KeyFamily::EcP256);
        assert_eq!(Algorithm::ES384.family(), KeyFamily::EcP384);
        assert_eq!(Algorithm::EdDSA.family(), KeyFamily::Ed25519);
    }
}
