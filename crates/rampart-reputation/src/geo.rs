//! MaxMind (`.mmdb`) country and ASN lookups, with allow/deny rules on both.
//!
//! Works with GeoIP2/GeoLite2 Country or City databases (`country.iso_code`) and ASN
//! databases (`autonomous_system_number`); one file may serve both when it carries both.
//! Lookups decode a single field by path, borrowing from the loaded file: no allocation.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{PathElement, Reader};

use crate::feedset::ListAction;

/// An ISO 3166-1 alpha-2 country code, upper case (`DE`, `US`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses two ASCII letters, any case.
    pub fn parse(code: &str) -> Option<CountryCode> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
            _ => None,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Opening a database failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot open MaxMind database {path}: {reason}")]
pub struct GeoError {
    /// The file.
    pub path: PathBuf,
    /// Why (missing, unreadable, not an MMDB file).
    pub reason: String,
}

/// Loaded MaxMind databases.
pub struct GeoDb {
    country: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field(
                "country",
                &self.country.as_ref().map(|r| &r.metadata().database_type),
            )
            .field(
                "asn",
                &self.asn.as_ref().map(|r| &r.metadata().database_type),
            )
            .finish()
    }
}

impl GeoDb {
    /// Opens the country database and/or the ASN database (pass the same path twice for a
    /// file that carries both). An absent or unreadable file is an error.
    pub fn open(country: Option<&Path>, asn: Option<&Path>) -> Result<GeoDb, GeoError> {
        Ok(GeoDb {
            country: country.map(open_reader).transpose()?,
            asn: asn.map(open_reader).transpose()?,
        })
    }

    /// Builds from database bytes already in memory (tests, embedded data).
    pub fn from_bytes(country: Option<Vec<u8>>, asn: Option<Vec<u8>>) -> Result<GeoDb, GeoError> {
        let reader = |bytes: Vec<u8>| {
            Reader::from_source(bytes).map_err(|error| GeoError {
                path: PathBuf::from("<memory>"),
                reason: error.to_string(),
            })
        };
        Ok(GeoDb {
            country: country.map(reader).transpose()?,
            asn: asn.map(reader).transpose()?,
        })
    }

    /// Country of `ip`, when a country database is loaded and knows the address.
    pub fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        let reader = self.country.as_ref()?;
        let path = [PathElement::Key("country"), PathElement::Key("iso_code")];
        let code: Option<&str> = decode(reader, ip, &path)?;
        code.and_then(CountryCode::parse)
    }

    /// Autonomous system number of `ip`, when an ASN database is loaded and knows it.
    pub fn asn(&self, ip: IpAddr) -> Option<u32> {
        let reader = self.asn.as_ref()?;
        let path = [PathElement::Key("autonomous_system_number")];
        decode(reader, ip, &path)?
    }
}

/// Decodes one field; a corrupt record is logged and treated as "unknown".
fn decode<'a, T: serde::Deserialize<'a>>(
    reader: &'a Reader<Vec<u8>>,
    ip: IpAddr,
    path: &[PathElement<'_>],
) -> Option<Option<T>> {
    let result = reader
        .lookup(ip)
        .and_then(|found| found.decode_path::<T>(path));
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::debug!(%error, "MaxMind lookup failed");
            metrics::counter!("rampart_reputation_geo_lookup_errors_total").increment(1);
            None
        }
    }
}

fn open_reader(path: &Path) -> Result<Reader<Vec<u8>>, GeoError> {
    Reader::open_readfile(path).map_err(|error| GeoError {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })
}

/// Country and ASN rules. Evaluation order, first hit wins:
/// 1. ASN in `allow_asns` → allow (an exemption, e.g. a partner's network);
/// 2. ASN in `deny_asns` → deny;
/// 3. country in `deny_countries` → deny;
/// 4. `allow_countries` non-empty and the country is not in it → deny; an address whose
///    country is unknown (private ranges, gaps in the database) is denied only when
///    `deny_unknown_country` is set;
/// 5. otherwise no opinion.
#[derive(Clone, Debug, Default)]
pub struct GeoRules {
    /// Countries to block. Default: none.
    pub deny_countries: HashSet<CountryCode>,
    /// When non-empty, only these countries pass. Default: empty (all pass).
    pub allow_countries: HashSet<CountryCode>,
    /// Autonomous systems to block. Default: none.
    pub deny_asns: HashSet<u32>,
    /// Autonomous systems exempt from every geo rule. Default: none.
    pub allow_asns: HashSet<u32>,
    /// With `allow_countries` set, also deny addresses of unknown country. Default: false.
    pub deny_unknown_country: bool,
}

impl GeoRules {
    /// True when some rule needs a country database.
    pub fn needs_country_db(&self) -> bool {
        !self.deny_countries.is_empty() || !self.allow_countries.is_empty()
    }

    /// True when some rule needs an ASN database.
    pub fn needs_asn_db(&self) -> bool {
        !self.deny_asns.is_empty() || !self.allow_asns.is_empty()
    }
}

/// Which geo rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeoRule {
    /// The ASN is listed (in `allow_asns` or `deny_asns`).
    Asn(u32),
    /// The country is in `deny_countries`.
    Country(CountryCode),
    /// `allow_countries` is set and this country (or unknown: `None`) is not in it.
    CountryNotAllowed(Option<CountryCode>),
}

/// A decision of [`GeoPolicy::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeoMatch {
    /// Allow or deny.
    pub action: ListAction,
    /// The rule that decided.
    pub rule: GeoRule,
}

/// A database plus rules.
#[derive(Debug)]
pub struct GeoPolicy {
    db: GeoDb,
    rules: GeoRules,
}

impl GeoPolicy {
    /// Combines a database and rules.
    pub fn new(db: GeoDb, rules: GeoRules) -> GeoPolicy {
        GeoPolicy { db, rules }
    }

    /// The database, for plain country/ASN lookups (logging, events).
    pub fn db(&self) -> &GeoDb {
        &self.db
    }

    /// Applies the rules to `ip` (see [`GeoRules`] for the order). Allocation-free.
    pub fn check(&self, ip: IpAddr) -> Option<GeoMatch> {
        let rules = &self.rules;
        let decided = |action, rule| Some(GeoMatch { action, rule });
        if rules.needs_asn_db() {
            if let Some(asn) = self.db.asn(ip) {
                if rules.allow_asns.contains(&asn) {
                    return decided(ListAction::Allow, GeoRule::Asn(asn));
                }
                if rules.deny_asns.contains(&asn) {
                    return decided(ListAction::Deny, GeoRule::Asn(asn));
                }
            }
        }
        if !rules.needs_country_db() {
            return None;
        }
        let country = self.db.country(ip);
        if let Some(code) = country {
            if rules.deny_countries.contains(&code) {
                return decided(ListAction::Deny, GeoRule::Country(code));
            }
        }
        let outside_allowed = match country {
            Some(code) => !rules.allow_countries.contains(&code),
            None => rules.deny_unknown_country,
        };
        if !rules.allow_countries.is_empty() && outside_allowed {
            return decided(ListAction::Deny, GeoRule::CountryNotAllowed(country));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_normalise_and_reject_junk() {
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        assert!(CountryCode::parse("DEU").is_none());
        assert!(CountryCode::parse("1A").is_none());
        assert!(CountryCode::parse("ü").is_none());
    }
}
