//! MaxMind lookups and geo rules against databases generated in the test with `mmdb-writer`.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use mmdb_writer::Writer;
use rampart_reputation::{CountryCode, GeoDb, GeoPolicy, GeoRule, GeoRules, ListAction};
use serde::Serialize;

#[derive(Serialize)]
struct Country {
    iso_code: &'static str,
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct CountryRecord {
    country: Country,
}

#[derive(Serialize)]
struct AsnRecord {
    autonomous_system_number: u32,
    autonomous_system_organization: &'static str,
}

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn country_db() -> Vec<u8> {
    let mut writer = Writer::new("GeoLite2-Country");
    let record = |code, name| CountryRecord {
        country: Country {
            iso_code: code,
            names: [("en", name)].into(),
        },
    };
    writer
        .insert(net("81.2.69.0/24"), &record("GB", "United Kingdom"))
        .unwrap();
    writer
        .insert(net("89.160.20.0/24"), &record("SE", "Sweden"))
        .unwrap();
    writer
        .insert(net("2a02:d300::/32"), &record("DE", "Germany"))
        .unwrap();
    writer.to_bytes().unwrap()
}

fn asn_db() -> Vec<u8> {
    let mut writer = Writer::new("GeoLite2-ASN");
    let record = |asn, org| AsnRecord {
        autonomous_system_number: asn,
        autonomous_system_organization: org,
    };
    writer
        .insert(net("81.2.69.0/25"), &record(64_500, "Hosting A"))
        .unwrap();
    writer
        .insert(net("89.160.20.0/24"), &record(64_501, "Partner B"))
        .unwrap();
    writer.to_bytes().unwrap()
}

fn db() -> GeoDb {
    GeoDb::from_bytes(Some(country_db()), Some(asn_db())).unwrap()
}

fn cc(code: &str) -> CountryCode {
    CountryCode::parse(code).unwrap()
}

#[test]
fn country_and_asn_lookups_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let country = dir.path().join("country.mmdb");
    let asn = dir.path().join("asn.mmdb");
    std::fs::write(&country, country_db()).unwrap();
    std::fs::write(&asn, asn_db()).unwrap();
    let db = GeoDb::open(Some(&country), Some(&asn)).unwrap();
    assert_eq!(db.country(ip("81.2.69.160")), Some(cc("GB")));
    assert_eq!(db.country(ip("2a02:d300::1")), Some(cc("DE")));
    assert_eq!(db.country(ip("8.8.8.8")), None);
    assert_eq!(db.asn(ip("81.2.69.1")), Some(64_500));
    assert_eq!(db.asn(ip("81.2.69.200")), None);
}

#[test]
fn missing_or_garbage_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.mmdb");
    let error = GeoDb::open(Some(&missing), None).unwrap_err();
    assert!(error.to_string().contains("absent.mmdb"), "{error}");
    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(&garbage, b"definitely not a maxmind database").unwrap();
    assert!(GeoDb::open(None, Some(&garbage)).is_err());
}

#[test]
fn deny_country_and_deny_asn() {
    let rules = GeoRules {
        deny_countries: HashSet::from([cc("GB")]),
        deny_asns: HashSet::from([64_501]),
        ..GeoRules::default()
    };
    let policy = GeoPolicy::new(db(), rules);
    let gb = policy.check(ip("81.2.69.200")).unwrap();
    assert_eq!(
        (gb.action, gb.rule),
        (ListAction::Deny, GeoRule::Country(cc("GB")))
    );
    let asn = policy.check(ip("89.160.20.5")).unwrap();
    assert_eq!(asn.rule, GeoRule::Asn(64_501));
    assert_eq!(policy.check(ip("2a02:d300::1")), None);
}

#[test]
fn allow_countries_denies_others_and_allow_asn_exempts() {
    let rules = GeoRules {
        allow_countries: HashSet::from([cc("DE")]),
        allow_asns: HashSet::from([64_501]),
        ..GeoRules::default()
    };
    let policy = GeoPolicy::new(db(), rules.clone());
    assert_eq!(policy.check(ip("2a02:d300::1")), None);
    let gb = policy.check(ip("81.2.69.200")).unwrap();
    assert_eq!(gb.rule, GeoRule::CountryNotAllowed(Some(cc("GB"))));
    let partner = policy.check(ip("89.160.20.5")).unwrap();
    assert_eq!(
        (partner.action, partner.rule),
        (ListAction::Allow, GeoRule::Asn(64_501))
    );
    assert_eq!(
        policy.check(ip("10.0.0.1")),
        None,
        "unknown country passes by default"
    );

    let strict = GeoPolicy::new(
        db(),
        GeoRules {
            deny_unknown_country: true,
            ..rules
        },
    );
    assert_eq!(
        strict.check(ip("10.0.0.1")).map(|m| m.rule),
        Some(GeoRule::CountryNotAllowed(None))
    );
}
