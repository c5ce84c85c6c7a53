//! The embedded store: migrations, reopening, the append-only audit log and
//! crash safety under SIGKILL.

mod common;

use common::*;
use rampart_store::store::*;
use rampart_store::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn migrates_from_empty_and_reopens_with_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(store.path().ends_with("rampart.db"));
        let ring = keyring(
            std::sync::Arc::new(store),
            std::sync::Arc::new(ManualClock::new(T0)),
        )
        .await;
        ring.create_consumer(new_consumer("acme"), &actor())
            .await
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let conn = rusqlite_version(&store).await;
    assert_eq!(conn, rampart_store::sqlite::migrations::LATEST);
    let consumer = store.get_consumer("acme").await.unwrap().unwrap();
    assert_eq!(consumer.tier.as_deref(), Some("pro"));
}

async fn rusqlite_version(store: &SqliteStore) -> u32 {
    store.execute_raw("SELECT 1").await.ok();
    let dir = store.path().to_path_buf();
    let conn = rusqlite::Connection::open(dir).unwrap();
    rampart_store::sqlite::migrations::current_version(&conn).unwrap()
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("rampart.db")).unwrap();
    conn.execute(
        "INSERT INTO schema_version (version, applied_at) VALUES (999, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    match SqliteStore::open(dir.path()) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!(found, 999);
            assert_eq!(supported, rampart_store::sqlite::migrations::LATEST);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_or_deleted() {
    let env = sqlite_env();
    let event = NewAuditEvent {
        at: T0,
        actor: "ops",
        action: "key.create",
        target: "abcd1234",
        source_ip: None,
        detail: serde_json::json!({}),
    };
    let id = env.store.append_audit(event).await.unwrap();
    assert!(id > 0);
    let update = env
        .store
        .execute_raw("UPDATE audit_log SET actor = 'x'")
        .await;
    assert!(update.is_err(), "update must be refused");
    let delete = env.store.execute_raw("DELETE FROM audit_log").await;
    assert!(delete.is_err(), "delete must be refused");
    let events = env.store.recent_audit(5).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, "ops");
}

#[tokio::test]
async fn sessions_are_purged_after_expiry() {
    let env = sqlite_env();
    let secret = secret();
    for (n, expires) in [(1u8, T0 - 1), (2, T0 + 100)] {
        let session = Session {
            digest: secret.digest(&[n]),
            username: "alice".into(),
            csrf_token: "c".into(),
            created_at: T0 - 10,
            expires_at: expires,
        };
        env.store.put_session(&session).await.unwrap();
    }
    assert_eq!(env.store.purge_sessions(T0).await.unwrap(), 1);
    assert!(env
        .store
        .get_session(&secret.digest(&[2]))
        .await
        .unwrap()
        .is_some());
}

/// Child side of the crash test: writes consumers and prints each id once
/// its write is acknowledged. Runs only when re-executed by the parent.
#[test]
#[ignore = "helper process for acknowledged_writes_survive_sigkill"]
fn crash_writer_child() {
    let Ok(dir) = std::env::var("RAMPART_CRASH_DIR") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(std::path::Path::new(&dir)).unwrap();
        use std::io::Write;
        let mut out = std::io::stdout();
        for i in 0.. {
            let consumer = Consumer {
                id: format!("c{i}"),
                name: format!("consumer {i}"),
                tier: None,
                scopes: vec![],
                metadata: serde_json::json!({"n": i}),
                allowed_cidrs: vec![],
                state: ConsumerState::Active,
                created_at: T0,
                updated_at: T0,
            };
            store.put_consumer(&consumer).await.unwrap();
            writeln!(out, "ack c{i}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RAMPART_CRASH_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ack ") {
            acked.push(id.to_string());
            if acked.len() == 150 {
                // SIGKILL mid-stream: the child is still writing.
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 150, "child must have acknowledged writes");
    let store = SqliteStore::open(dir.path()).unwrap();
    let stored: std::collections::HashSet<String> = store
        .list_consumers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged {id} lost after SIGKILL");
    }
}
