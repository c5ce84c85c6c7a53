//! Finding records: what was found where, and what was done — never the
//! value itself.
//!
//! A finding carries a keyed fingerprint (SipHash with a per-process random
//! key, 32 bits shown) so that operators can tell "the same value leaked
//! twice" from "two different values" without the value ever being stored.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use crate::detector::{Action, DetectorId};

/// What produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// A detector matched.
    Detector(DetectorId),
    /// A JSON-path rule selected the field (index into the configured rules).
    PathRule(usize),
}

impl FindingKind {
    /// The id used in security events and metric labels: the detector id, or
    /// `json_path` for path rules.
    pub fn id(self) -> &'static str {
        match self {
            FindingKind::Detector(d) => d.as_str(),
            FindingKind::PathRule(_) => "json_path",
        }
    }
}

/// Where in the body a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Byte offset in the (decompressed) body.
    Offset(u64),
    /// JSON path of the value, e.g. `$.user.cards[2]`. Keys that are not
    /// plain identifiers are shown as `[?]`, so a path cannot leak data.
    JsonPath(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Offset(o) => write!(f, "@{o}"),
            Location::JsonPath(p) => f.write_str(p),
        }
    }
}

/// One finding. Holds no clear value: safe to log and to `Debug`-print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub action: Action,
    pub location: Location,
    /// Keyed hash prefix of the matched value (see module docs).
    pub fingerprint: Fingerprint,
}

/// 32-bit keyed hash of a leaked value; `Display` shows 8 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u32);

impl Fingerprint {
    /// Fingerprints `value` with the process-wide random key.
    pub fn of(value: &[u8]) -> Fingerprint {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        let hash = KEY.get_or_init(RandomState::new).hash_one(value);
        Fingerprint((hash >> 32) as u32)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_within_process_and_hides_value() {
        let a = Fingerprint::of(b"4111111111111111");
        assert_eq!(a, Fingerprint::of(b"4111111111111111"));
        assert_ne!(a, Fingerprint::of(b"4111111111111112"));
        let f = Finding {
            kind: FindingKind::Detector(DetectorId::Card),
            action: Action::Mask,
            location: Location::Offset(3),
            fingerprint: a,
        };
        let dbg = format!("{f:?}");
        assert!(!dbg.contains("4111"), "{dbg}");
        assert_eq!(a.to_string().len(), 8);
    }
}
