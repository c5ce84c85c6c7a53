//! The embedded store: one SQLite file (`rampart.db`) in the caller's data
//! folder, in WAL mode with `synchronous=FULL`, so a write is on disk before
//! it is acknowledged and survives `kill -9` and power loss.
//!
//! One dedicated thread owns the connection; async callers send it closures
//! and await the answer, so the runtime never blocks on disk I/O. Reads on
//! the request path come from the in-memory caches, not from here.

mod consumer_totp;
pub mod migrations;

use crate::error::StoreError;
use crate::model::*;
use crate::secret::Digest;
use crate::store::*;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The embedded SQLite store. Cheap to clone; the worker thread stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The database file name inside the data folder.
pub const DB_FILE: &str = "rampart.db";

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/rampart.db` and migrates it.
    /// Blocking: call it at startup, before serving.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Backend(format!("create data folder: {e}")))?;
        let path = data_dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        migrations::migrate(&mut conn)?;
        let (jobs, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("rampart-store-sqlite".into())
            .spawn(move || {
                while let Ok(job) = receiver.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Backend(format!("spawn sqlite thread: {e}")))?;
        Ok(SqliteStore { jobs, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the store thread and awaits its result.
    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| StoreError::Backend("sqlite thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("sqlite thread dropped the request".into()))?
    }

    /// Runs raw SQL (for tests proving the triggers hold).
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &'static str) -> Result<usize> {
        self.call(move |c| Ok(c.execute(sql, [])?)).await
    }
}

fn configure(conn: &Connection) -> Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "sqlite refused WAL mode (got {mode})"
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
    )?;
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("encode: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    Ok(serde_json::from_str(text)?)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(err, _)
            if err.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

fn list_json<T: serde::de::DeserializeOwned>(conn: &Connection, sql: &str) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(from_json(&row?)?);
    }
    Ok(out)
}

#[async_trait]
impl ConsumerStore for SqliteStore {
    async fn put_consumer(&self, consumer: &Consumer) -> Result<()> {
        let (id, data) = (consumer.id.clone(), to_json(consumer)?);
        self.call(move |c| {
            c.execute(
                "INSERT INTO consumers (id, data) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                params![id, data],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_consumer(&self, id: &str) -> Result<Option<Consumer>> {
        let id = id.to_string();
        self.call(move |c| {
            let data: Option<String> = c
                .query_row("SELECT data FROM consumers WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            data.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        self.call(|c| list_json(c, "SELECT data FROM consumers ORDER BY id"))
            .await
    }
}

const KEY_COLUMNS: &str = "SELECT data, last_used_at, last_used_ip FROM api_keys";

fn key_from_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, Option<u64>, Option<String>)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn assemble_key(parts: (String, Option<u64>, Option<String>)) -> Result<ApiKeyRecord> {
    let mut key: ApiKeyRecord = from_json(&parts.0)?;
    key.last_used_at = parts.1;
    key.last_used_ip = parts.2.and_then(|ip| ip.parse().ok());
    Ok(key)
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn insert_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let (id, digest, consumer, data) = (
            key.key_id.clone(),
            key.digest.to_hex(),
            key.consumer_id.clone(),
            to_json(key)?,
        );
        self.call(move |c| {
            c.execute(
                "INSERT INTO api_keys (key_id, digest, consumer_id, data) VALUES (?1, ?2, ?3, ?4)",
                params![id, digest, consumer, data],
            )
            .map_err(|e| match is_unique_violation(&e) {
                true => StoreError::Conflict(format!("api key {id}")),
                false => e.into(),
            })?;
            Ok(())
        })
        .await
    }

    async fn update_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let (id, data) = (key.key_id.clone(), to_json(key)?);
        self.call(move |c| {
            let n = c.execute(
                "UPDATE api_keys SET data = ?2 WHERE key_id = ?1",
                params![id, data],
            )?;
            match n {
                0 => Err(StoreError::NotFound(format!("api key {id}"))),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn get_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        let id = key_id.to_string();
        self.call(move |c| {
            let sql = format!("{KEY_COLUMNS} WHERE key_id = ?1");
            let parts = c.query_row(&sql, [id], key_from_row).optional()?;
            parts.map(assemble_key).transpose()
        })
        .await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.call(|c| {
            let mut stmt = c.prepare(&format!("{KEY_COLUMNS} ORDER BY key_id"))?;
            let rows = stmt.query_map([], key_from_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(assemble_key(row?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn record_key_usage(&self, usage: &[KeyUsage<'_>]) -> Result<()> {
        let rows: Vec<(String, u64, String)> = usage
            .iter()
            .map(|u| (u.key_id.to_string(), u.at, u.ip.to_string()))
            .collect();
        self.call(move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare(
                    "UPDATE api_keys SET last_used_at = ?2, last_used_ip = ?3 WHERE key_id = ?1",
                )?;
                for (id, at, ip) in &rows {
                    stmt.execute(params![id, at, ip])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl AdminUserStore for SqliteStore {
    async fn insert_admin(&self, user: &AdminUser) -> Result<()> {
        let (name, data) = (user.username.clone(), to_json(user)?);
        self.call(move |c| {
            c.execute(
                "INSERT INTO admin_users (username, data) VALUES (?1, ?2)",
                params![name, data],
            )
            .map_err(|e| match is_unique_violation(&e) {
                true => StoreError::Conflict(format!("admin user {name}")),
                false => e.into(),
            })?;
            Ok(())
        })
        .await
    }

    async fn update_admin(&self, user: &AdminUser) -> Result<()> {
        let (name, data) = (user.username.clone(), to_json(user)?);
        self.call(move |c| {
            let n = c.execute(
                "UPDATE admin_users SET data = ?2 WHERE username = ?1",
                params![name, data],
            )?;
            match n {
                0 => Err(StoreError::NotFound(format!("admin user {name}"))),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn get_admin(&self, username: &str) -> Result<Option<AdminUser>> {
        let name = username.to_string();
        self.call(move |c| {
            let data: Option<String> = c
                .query_row(
                    "SELECT data FROM admin_users WHERE username = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            data.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list_admins(&self) -> Result<Vec<AdminUser>> {
        self.call(|c| list_json(c, "SELECT data FROM admin_users ORDER BY username"))
            .await
    }
}

#[async_trait]
impl AdminTokenStore for SqliteStore {
    async fn put_token(&self, token: &AdminToken) -> Result<()> {
        let (digest, id, data) = (
            token.digest.to_hex(),
            token.token_id.clone(),
            to_json(token)?,
        );
        self.call(move |c| {
            c.execute(
                "INSERT INTO admin_tokens (digest, token_id, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT(digest) DO UPDATE SET data = excluded.data",
                params![digest, id, data],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_token_by_digest(&self, digest: &Digest) -> Result<Option<AdminToken>> {
        let digest = digest.to_hex();
        self.call(move |c| {
            let data: Option<String> = c
                .query_row(
                    "SELECT data FROM admin_tokens WHERE digest = ?1",
                    [digest],
                    |r| r.get(0),
                )
                .optional()?;
            data.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<AdminToken>> {
        self.call(|c| list_json(c, "SELECT data FROM admin_tokens ORDER BY token_id"))
            .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_session(&self, session: &Session) -> Result<()> {
        let (digest, expires, data) = (
            session.digest.to_hex(),
            session.expires_at,
            to_json(session)?,
        );
        self.call(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO sessions (digest, expires_at, data) VALUES (?1, ?2, ?3)",
                params![digest, expires, data],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, digest: &Digest) -> Result<Option<Session>> {
        let digest = digest.to_hex();
        self.call(move |c| {
            let data: Option<String> = c
                .query_row(
                    "SELECT data FROM sessions WHERE digest = ?1",
                    [digest],
                    |r| r.get(0),
                )
                .optional()?;
            data.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn delete_session(&self, digest: &Digest) -> Result<()> {
        let digest = digest.to_hex();
        self.call(move |c| {
            c.execute("DELETE FROM sessions WHERE digest = ?1", [digest])?;
            Ok(())
        })
        .await
    }

    async fn purge_sessions(&self, now: u64) -> Result<u64> {
        self.call(move |c| {
            Ok(c.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])? as u64)
        })
        .await
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, event: NewAuditEvent<'_>) -> Result<u64> {
        let row = (
            event.at,
            event.actor.to_string(),
            event.action.to_string(),
            event.target.to_string(),
            event.source_ip.map(|ip| ip.to_string()),
            event.detail.to_string(),
        );
        self.call(move |c| {
            c.execute(
                "INSERT INTO audit_log (at, actor, action, target, source_ip, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.0, row.1, row.2, row.3, row.4, row.5],
            )?;
            Ok(c.last_insert_rowid() as u64)
        })
        .await
    }

    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, at, actor, action, target, source_ip, detail
                 FROM audit_log ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, at, actor, action, target, ip, detail) = row?;
                out.push(AuditEvent {
                    id,
                    at,
                    actor,
                    action,
                    target,
                    source_ip: ip.and_then(|ip| ip.parse().ok()),
                    detail: serde_json::from_str(&detail)?,
                });
            }
            Ok(out)
        })
        .await
    }
}

impl Backend for SqliteStore {}
