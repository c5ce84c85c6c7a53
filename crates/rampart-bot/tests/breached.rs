//! Breached-password lookups against small datasets in both layouts.

use std::io::Write;
use std::sync::Arc;

use rampart_bot::login::breached::sha1_hex_upper;
use rampart_bot::login::{
    BreachedAction, BreachedPasswords, BreachedSource, GuardAction, GuardOptions, LoginGuard,
    MemoryCounterStore,
};

const LEAKED: &[(&str, u64)] = &[
    ("password", 9_545_824),
    ("123456", 37_359_195),
    ("letmein!", 12),
];

fn hash(p: &str) -> String {
    String::from_utf8(sha1_hex_upper(p.as_bytes()).to_vec()).unwrap()
}

fn sorted_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut lines: Vec<String> = LEAKED
        .iter()
        .map(|(p, n)| format!("{}:{n}", hash(p)))
        .collect();
    // Filler so the binary search has real work to do.
    for i in 0..5000u32 {
        lines.push(format!("{}:1", hash(&format!("filler-{i}"))));
    }
    lines.sort();
    let path = dir.join("pwned-sorted.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    for l in lines {
        write!(f, "{l}\r\n").unwrap();
    }
    path
}

fn range_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let root = dir.join("range");
    std::fs::create_dir_all(&root).unwrap();
    for (p, n) in LEAKED {
        let h = hash(p);
        let file = root.join(&h[..5]);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .unwrap();
        writeln!(f, "0000000000000000000000000000000000A:3").unwrap();
        writeln!(f, "{}:{n}", &h[5..]).unwrap();
    }
    root
}

#[test]
fn sorted_file_layout() {
    let dir = tempfile::tempdir().unwrap();
    let set = BreachedPasswords::new(BreachedSource::SortedFile(sorted_file(dir.path())));
    for (p, n) in LEAKED {
        assert_eq!(set.count(p.as_bytes()).unwrap(), *n, "{p}");
    }
    assert_eq!(set.count(b"filler-4999").unwrap(), 1);
    assert_eq!(set.count(b"correct horse battery staple 2026").unwrap(), 0);
    assert_eq!(set.count(b"").unwrap(), 0);
}

#[test]
fn range_directory_layout() {
    let dir = tempfile::tempdir().unwrap();
    let set = BreachedPasswords::new(BreachedSource::RangeDirectory(range_dir(dir.path())));
    for (p, n) in LEAKED {
        assert_eq!(set.count(p.as_bytes()).unwrap(), *n, "{p}");
    }
    assert_eq!(set.count(b"not-in-the-list-xyz").unwrap(), 0);
}

#[test]
fn missing_dataset_is_an_error_without_the_password() {
    let set = BreachedPasswords::new(BreachedSource::SortedFile("/nonexistent/pwned.txt".into()));
    let err = set.count(b"hunter2").unwrap_err().to_string();
    assert!(!err.contains("hunter2"));
}

#[test]
fn guard_policy_uses_breached_check() {
    let dir = tempfile::tempdir().unwrap();
    let set = BreachedPasswords::new(BreachedSource::SortedFile(sorted_file(dir.path())));
    for (action, expected) in [
        (BreachedAction::Flag, GuardAction::Allow),
        (
            BreachedAction::Challenge,
            GuardAction::Challenge("breached_password"),
        ),
        (
            BreachedAction::Block,
            GuardAction::Block("breached_password"),
        ),
    ] {
        let g = LoginGuard::new(
            GuardOptions {
                breached: Some((set.clone(), action)),
                ..GuardOptions::default()
            },
            Arc::new(MemoryCounterStore::default()),
            &[1u8; 32],
        );
        let key = g.user_key("alice");
        let v = g.on_attempt(
            "192.0.2.1".parse().unwrap(),
            &key,
            Some(b"letmein!"),
            false,
            1000,
        );
        assert_eq!(v.action, expected);
        assert_eq!(v.breached, Some(12));
        let v = g.on_attempt(
            "192.0.2.1".parse().unwrap(),
            &key,
            Some(b"Tr0ub4dor&3-unique"),
            false,
            1000,
        );
        assert_eq!(v.action, GuardAction::Allow);
        assert_eq!(v.breached, None);
    }
}
