//! Consumer TOTP enrollments in SQLite (table `consumer_totp`, migration 2).
//!
//! The replay check is one conditional `UPDATE` (the step is written only
//! when it is later than the stored one), so it holds even if several
//! processes ever shared the file; the store thread serialises it anyway.

use super::SqliteStore;
use crate::model::{ConsumerTotp, SealedSecret};
use crate::store::{ConsumerTotpStore, Result};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

const COLUMNS: &str = "SELECT consumer_id, secret, pending, last_step, failed_attempts, \
                       locked_until, created_at, updated_at FROM consumer_totp";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConsumerTotp> {
    Ok(ConsumerTotp {
        consumer_id: row.get(0)?,
        secret: row.get::<_, Option<String>>(1)?.map(SealedSecret),
        pending: row.get::<_, Option<String>>(2)?.map(SealedSecret),
        last_step: row.get(3)?,
        failed_attempts: row.get(4)?,
        locked_until: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

#[async_trait]
impl ConsumerTotpStore for SqliteStore {
    async fn put_consumer_totp(&self, totp: &ConsumerTotp) -> Result<()> {
        let t = totp.clone();
        self.call(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO consumer_totp (consumer_id, secret, pending, last_step, \
                 failed_attempts, locked_until, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    t.consumer_id,
                    t.secret.map(|s| s.0),
                    t.pending.map(|s| s.0),
                    t.last_step,
                    t.failed_attempts,
                    t.locked_until,
                    t.created_at,
                    t.updated_at,
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_consumer_totp(&self, consumer_id: &str) -> Result<Option<ConsumerTotp>> {
        let id = consumer_id.to_string();
        self.call(move |c| {
            let sql = format!("{COLUMNS} WHERE consumer_id = ?1");
            Ok(c.query_row(&sql, [id], from_row).optional()?)
        })
        .await
    }

    async fn delete_consumer_totp(&self, consumer_id: &str) -> Result<bool> {
        let id = consumer_id.to_string();
        self.call(move |c| {
            let n = c.execute("DELETE FROM consumer_totp WHERE consumer_id = ?1", [id])?;
            Ok(n > 0)
        })
        .await
    }

    async fn claim_totp_step(&self, consumer_id: &str, step: u64) -> Result<bool> {
        let id = consumer_id.to_string();
        self.call(move |c| {
            let n = c.execute(
                "UPDATE consumer_totp \
                 SET last_step = ?2, failed_attempts = 0, locked_until = NULL \
                 WHERE consumer_id = ?1 AND secret IS NOT NULL \
                   AND (last_step IS NULL OR last_step < ?2)",
                params![id, step],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn add_totp_failure(&self, consumer_id: &str) -> Result<u32> {
        let id = consumer_id.to_string();
        self.call(move |c| {
            let count: Option<u32> = c
                .query_row(
                    "UPDATE consumer_totp SET failed_attempts = failed_attempts + 1 \
                     WHERE consumer_id = ?1 RETURNING failed_attempts",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(count.unwrap_or(0))
        })
        .await
    }

    async fn lock_totp(&self, consumer_id: &str, until: u64) -> Result<()> {
        let id = consumer_id.to_string();
        self.call(move |c| {
            c.execute(
                "UPDATE consumer_totp SET locked_until = MAX(COALESCE(locked_until, 0), ?2) \
                 WHERE consumer_id = ?1",
                params![id, until],
            )?;
            Ok(())
        })
        .await
    }
}
