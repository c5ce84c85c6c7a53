//! Forward-only, numbered schema migrations.
//!
//! `schema_version` records every applied migration. Opening a database
//! whose version is newer than [`LATEST`] is refused: an older binary must
//! not read or write a schema it does not know.

use crate::error::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// Migrations in order; a migration is never edited once released, only
/// followed by a new one.
const MIGRATIONS: &[(u32, &str)] = &[(1, V1), (2, V2)];

/// The schema version this binary writes.
pub const LATEST: u32 = 2;

const V1: &str = r#"
CREATE TABLE consumers (
    id   TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE api_keys (
    key_id       TEXT PRIMARY KEY,
    digest       TEXT NOT NULL UNIQUE,
    consumer_id  TEXT NOT NULL,
    data         TEXT NOT NULL,
    last_used_at INTEGER,
    last_used_ip TEXT
);
CREATE INDEX api_keys_consumer ON api_keys(consumer_id);
CREATE TABLE admin_users (
    username TEXT PRIMARY KEY,
    data     TEXT NOT NULL
);
CREATE TABLE admin_tokens (
    digest   TEXT PRIMARY KEY,
    token_id TEXT NOT NULL UNIQUE,
    data     TEXT NOT NULL
);
CREATE TABLE sessions (
    digest     TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    source_ip TEXT,
    detail    TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"#;

/// Consumer TOTP for MFA step-up. Secrets are sealed (encrypted) text;
/// the counters are columns so replay and failure updates are single
/// conditional statements.
const V2: &str = r#"
CREATE TABLE consumer_totp (
    consumer_id     TEXT PRIMARY KEY,
    secret          TEXT,
    pending         TEXT,
    last_step       INTEGER,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
"#;

/// Applies every migration newer than the database's version; returns the
/// resulting version.
pub fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         );",
    )?;
    let current = current_version(conn)?;
    if current > LATEST {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: LATEST,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, strftime('%s','now'))",
            params![version],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied store migration");
    }
    Ok(LATEST)
}

/// The highest applied version (0 for a new database).
pub fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: Option<u32> = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(v.unwrap_or(0))
}
