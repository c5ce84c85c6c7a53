//! Feed formats with malformed lines, auto-detection, and `FeedSet` loading and reloading.

use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rampart_reputation::{parse_feed, FeedFormat, FeedSet, FeedSpec, ListAction};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn plain_list_accepts_ips_cidrs_and_comments_and_reports_bad_lines() {
    let text = "# my list\n\n192.0.2.1\n198.51.100.0/24   # office\n2001:db8::/32\nnot-an-ip\n10.0.0.0/33\n1.2.3.4 5.6.7.8\n";
    let parsed = parse_feed(text, FeedFormat::Plain, "list.txt");
    let nets: Vec<String> = parsed.entries.iter().map(|e| e.net.to_string()).collect();
    assert_eq!(nets, ["192.0.2.1/32", "198.51.100.0/24", "2001:db8::/32"]);
    assert_eq!(parsed.bad_line_count, 3);
    let lines: Vec<usize> = parsed.bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(lines, [6, 7, 8]);
    let first = parsed.bad_lines[0].to_string();
    assert!(
        first.starts_with("list.txt:6:") && first.contains("not-an-ip"),
        "{first}"
    );
}

#[test]
fn firehol_netset_with_metadata_comments() {
    let text = "#\n# firehol_level1\n#\n# Maintainer      : FireHOL\n#\n0.0.0.0/8\n1.10.16.0/20\n223.254.0.0/16\n999.1.1.1\n";
    let parsed = parse_feed(text, FeedFormat::Netset, "firehol_level1.netset");
    assert_eq!(parsed.entries.len(), 3);
    assert_eq!(parsed.bad_line_count, 1);
    assert_eq!(parsed.bad_lines[0].line, 9);
}

#[test]
fn spamhaus_drop_keeps_sbl_reference_and_skips_bad_lines() {
    let text = "; Spamhaus DROP List 2024/01/01 - (c) 2024 The Spamhaus Project\n; Last-Modified: Mon, 01 Jan 2024\n1.10.16.0/20 ; SBL256894\n1.19.0.0/16 ; SBL434604\nbogus ; SBL1\n2.56.192.0/22\n";
    let parsed = parse_feed(text, FeedFormat::Spamhaus, "drop.txt");
    assert_eq!(parsed.entries.len(), 3);
    assert_eq!(parsed.entries[0].reason.as_deref(), Some("SBL256894"));
    assert_eq!(parsed.entries[2].reason, None);
    assert_eq!(parsed.bad_line_count, 1);
    assert_eq!(parsed.bad_lines[0].line, 5);
}

#[test]
fn auto_detection_picks_spamhaus_or_plain() {
    let drop = parse_feed(
        "; header\n1.10.16.0/20 ; SBL256894\n",
        FeedFormat::Auto,
        "d",
    );
    assert_eq!(drop.format, FeedFormat::Spamhaus);
    assert_eq!(drop.entries[0].reason.as_deref(), Some("SBL256894"));
    let plain = parse_feed("# header\n1.10.16.0/20\n", FeedFormat::Auto, "p");
    assert_eq!(plain.format, FeedFormat::Plain);
    assert_eq!(plain.entries.len(), 1);
}

fn spec(name: &str, path: &Path, action: ListAction) -> FeedSpec {
    FeedSpec {
        name: name.to_owned(),
        path: path.to_path_buf(),
        format: FeedFormat::Auto,
        action,
    }
}

#[test]
fn feedset_allow_beats_deny_and_reports_stats() {
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("drop.txt");
    let allow = dir.path().join("allow.txt");
    fs::write(&deny, "203.0.113.0/24 ; SBL9\nbad line here\n").unwrap();
    fs::write(&allow, "203.0.113.7\n").unwrap();
    let set = FeedSet::load(vec![
        spec("spamhaus_drop", &deny, ListAction::Deny),
        spec("partners", &allow, ListAction::Allow),
    ])
    .unwrap();

    let hit = set.check(ip("203.0.113.9")).unwrap();
    assert_eq!(
        (&*hit.list, hit.action),
        ("spamhaus_drop", ListAction::Deny)
    );
    assert_eq!(hit.reason.as_deref(), Some("SBL9"));
    assert_eq!(
        set.check(ip("203.0.113.7")).unwrap().action,
        ListAction::Allow
    );
    assert!(set.check(ip("192.0.2.1")).is_none());

    let stats = set.stats();
    assert_eq!((stats[0].entries, stats[0].bad_lines), (1, 1));
    assert_eq!(stats[0].bad_line_samples[0].line, 2);
}

#[test]
fn feedset_missing_file_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let error = FeedSet::load(vec![spec("x", &missing, ListAction::Deny)]).unwrap_err();
    assert!(error.to_string().contains("nope.txt"), "{error}");
}

#[test]
fn feedset_reloads_changed_file_and_keeps_old_entries_when_file_vanishes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.txt");
    fs::write(&path, "192.0.2.0/24\n").unwrap();
    let set = FeedSet::load(vec![spec("blocklist", &path, ListAction::Deny)]).unwrap();
    assert!(set.check(ip("192.0.2.1")).is_some());
    assert!(
        set.reload_if_changed().is_empty(),
        "unchanged file must not reload"
    );

    // Different size, so the change is seen even on coarse mtime filesystems.
    fs::write(&path, "198.51.100.0/24\n10.0.0.0/8\n").unwrap();
    assert_eq!(set.reload_if_changed().len(), 1);
    assert!(set.check(ip("192.0.2.1")).is_none());
    assert!(set.check(ip("198.51.100.1")).is_some());

    fs::remove_file(&path).unwrap();
    assert!(set.reload_if_changed().is_empty());
    assert!(
        set.check(ip("10.1.1.1")).is_some(),
        "last good entries stay in force"
    );
    assert!(set.stats()[0].last_error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_reloader_picks_up_file_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.txt");
    fs::write(&path, "192.0.2.0/24\n").unwrap();
    let set = std::sync::Arc::new(FeedSet::load(vec![spec("b", &path, ListAction::Deny)]).unwrap());
    let task = set.spawn_reloader(Duration::from_millis(50), None);
    fs::write(&path, "192.0.2.0/24\n198.51.100.0/24\n").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while set.check(ip("198.51.100.1")).is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reload not seen within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
}
