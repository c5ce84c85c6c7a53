//! Threat scoring with a manual clock, ban escalation, manual bans, and the local store's
//! persistence across a simulated restart.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use rampart_reputation::{
    kinds, BanSource, BanStore, Clock, LocalBanStore, LocalStoreOptions, ManualClock, ThreatConfig,
    ThreatTracker,
};

const START_MS: u64 = 1_700_000_000_000;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn config() -> ThreatConfig {
    ThreatConfig {
        threshold: 30.0,
        half_life: Duration::from_secs(60),
        base_ban: Duration::from_secs(60),
        max_ban: Duration::from_secs(300),
        offence_memory: Duration::from_secs(3600),
        node: "node-a".into(),
        ..ThreatConfig::default()
    }
}

fn tracker(clock: &ManualClock) -> ThreatTracker {
    let store = Arc::new(LocalBanStore::in_memory());
    ThreatTracker::new(config(), store, Arc::new(clock.clone()))
}

#[tokio::test]
async fn score_decays_with_half_life() {
    let clock = ManualClock::new(START_MS);
    let tracker = tracker(&clock);
    let client = ip("198.51.100.7");
    tracker.record(client, kinds::WAF_BLOCK).await; // 10
    tracker.record(client, kinds::WAF_BLOCK).await; // 20
    assert!((tracker.score(client).await.unwrap() - 20.0).abs() < 1e-9);
    clock.advance(Duration::from_secs(60));
    assert!((tracker.score(client).await.unwrap() - 10.0).abs() < 1e-9);
    tracker.record(client, kinds::AUTH_FAILED).await; // 10 + 5
    clock.advance(Duration::from_secs(120));
    assert!((tracker.score(client).await.unwrap() - 3.75).abs() < 1e-9);
}

#[tokio::test]
async fn slow_offenders_never_reach_the_threshold() {
    let clock = ManualClock::new(START_MS);
    let tracker = tracker(&clock);
    let client = ip("198.51.100.8");
    // 10 points per half-life converges to 20 < 30.
    for _ in 0..50 {
        assert!(tracker.record(client, kinds::WAF_BLOCK).await.is_none());
        clock.advance(Duration::from_secs(60));
    }
    assert!(tracker.is_banned(client).is_none());
}

#[tokio::test]
async fn crossing_threshold_bans_and_unknown_kinds_are_ignored() {
    let clock = ManualClock::new(START_MS);
    let tracker = tracker(&clock);
    let client = ip("198.51.100.9");
    assert!(tracker.record(client, "not_configured").await.is_none());
    assert_eq!(tracker.score(client).await.unwrap(), 0.0);
    assert!(tracker.record(client, kinds::WAF_BLOCK).await.is_none());
    assert!(tracker.record(client, kinds::WAF_BLOCK).await.is_none());
    let ban = tracker
        .record(client, kinds::WAF_BLOCK)
        .await
        .expect("third block bans");
    assert_eq!(
        (&*ban.reason, ban.source, &*ban.node, ban.offence),
        ("waf_block", BanSource::Automatic, "node-a", 1)
    );
    assert_eq!(ban.expires_ms - ban.created_ms, 60_000);
    assert_eq!(tracker.is_banned(client), Some(ban));
    assert!(
        tracker.record(client, kinds::WAF_BLOCK).await.is_none(),
        "already banned"
    );
    assert!(tracker.is_banned(ip("198.51.100.10")).is_none());
    clock.advance(Duration::from_secs(61));
    assert!(tracker.is_banned(client).is_none(), "ban expires");
}

#[tokio::test]
async fn repeat_offenders_get_doubling_bans_up_to_the_cap_and_are_forgiven_later() {
    let clock = ManualClock::new(START_MS);
    let tracker = tracker(&clock);
    let client = ip("203.0.113.5");
    let mut lengths = Vec::new();
    for _ in 0..5 {
        let ban = loop {
            if let Some(ban) = tracker.record(client, kinds::WAF_BLOCK).await {
                break ban;
            }
        };
        lengths.push((ban.expires_ms - ban.created_ms) / 1000);
        clock.set_ms(ban.expires_ms);
    }
    assert_eq!(lengths, [60, 120, 240, 300, 300]);

    clock.advance(Duration::from_secs(3601));
    let ban = loop {
        if let Some(ban) = tracker.record(client, kinds::WAF_BLOCK).await {
            break ban;
        }
    };
    assert_eq!(
        (ban.offence, (ban.expires_ms - ban.created_ms) / 1000),
        (1, 60)
    );
}

#[tokio::test]
async fn ipv6_offences_ban_the_whole_slash_64() {
    let clock = ManualClock::new(START_MS);
    let tracker = tracker(&clock);
    for host in 1..=3 {
        tracker
            .record(ip(&format!("2001:db8:5:6::{host}")), kinds::WAF_BLOCK)
            .await;
    }
    let ban = tracker
        .is_banned(ip("2001:db8:5:6:ffff::9"))
        .expect("neighbour in /64 banned");
    assert_eq!(ban.target, "2001:db8:5:6::/64".parse::<IpNet>().unwrap());
    assert!(tracker.is_banned(ip("2001:db8:5:7::1")).is_none());
}

#[tokio::test]
async fn manual_cidr_ban_and_unban() {
    let clock = ManualClock::new(START_MS);
    let tracker = tracker(&clock);
    let net: IpNet = "192.0.2.0/24".parse().unwrap();
    let ban = tracker
        .ban(net, Duration::from_secs(600), "scanner")
        .await
        .unwrap();
    assert_eq!(
        (ban.source, ban.offence, &*ban.reason),
        (BanSource::Manual, 0, "scanner")
    );
    assert_eq!(tracker.is_banned(ip("192.0.2.77")).unwrap().target, net);
    assert_eq!(tracker.list().len(), 1);
    assert!(tracker.unban(net).await.unwrap());
    assert!(
        !tracker.unban(net).await.unwrap(),
        "second unban finds nothing"
    );
    assert!(tracker.is_banned(ip("192.0.2.77")).is_none());
    assert!(tracker.list().is_empty());
}

#[tokio::test]
async fn bans_and_offences_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = LocalStoreOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..LocalStoreOptions::default()
    };
    let clock = ManualClock::new(START_MS);
    let client = ip("198.51.100.77");
    {
        let store = Arc::new(LocalBanStore::open(options.clone(), clock.now_ms()).unwrap());
        let tracker = ThreatTracker::new(config(), store, Arc::new(clock.clone()));
        tracker
            .ban(
                "192.0.2.0/24".parse().unwrap(),
                Duration::from_secs(600),
                "manual",
            )
            .await
            .unwrap();
        tracker
            .ban(
                "192.0.2.200/32".parse().unwrap(),
                Duration::from_secs(5),
                "short",
            )
            .await
            .unwrap();
        while tracker.record(client, kinds::WAF_BLOCK).await.is_none() {}
    }
    assert!(dir.path().join("bans.json").exists());
    assert!(!dir.path().join("bans.json.tmp").exists());

    clock.advance(Duration::from_secs(61));
    let store = Arc::new(LocalBanStore::open(options, clock.now_ms()).unwrap());
    assert_eq!(
        store.list(clock.now_ms()).len(),
        1,
        "expired bans dropped on load"
    );
    let tracker = ThreatTracker::new(config(), store, Arc::new(clock.clone()));
    assert_eq!(
        &*tracker.is_banned(ip("192.0.2.200")).unwrap().reason,
        "manual"
    );
    // The offence count was persisted: the next ban is the second offence.
    let ban = loop {
        if let Some(ban) = tracker.record(client, kinds::WAF_BLOCK).await {
            break ban;
        }
    };
    assert_eq!(ban.offence, 2);
}

#[tokio::test]
async fn corrupt_ban_file_is_an_error_not_a_silent_reset() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bans.json"), b"{ not json").unwrap();
    let options = LocalStoreOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..LocalStoreOptions::default()
    };
    let error = LocalBanStore::open(options, START_MS).unwrap_err();
    assert!(error.to_string().contains("corrupt"), "{error}");
}

#[tokio::test]
async fn ban_table_is_bounded() {
    let options = LocalStoreOptions {
        max_bans: 3,
        ..LocalStoreOptions::default()
    };
    let clock = ManualClock::new(START_MS);
    let store = Arc::new(LocalBanStore::open(options, START_MS).unwrap());
    let tracker = ThreatTracker::new(config(), store, Arc::new(clock.clone()));
    for (i, secs) in [(1, 500), (2, 100), (3, 900), (4, 700)] {
        let target = format!("192.0.2.{i}/32").parse().unwrap();
        tracker
            .ban(target, Duration::from_secs(secs), "t")
            .await
            .unwrap();
    }
    let mut kept: Vec<String> = tracker
        .list()
        .iter()
        .map(|b| b.target.to_string())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        ["192.0.2.1/32", "192.0.2.3/32", "192.0.2.4/32"],
        "soonest-expiring evicted"
    );
}
