//! Consumer TOTP enrollments in Redis: one hash per consumer,
//! `consumertotp:<id>`, with the fields `secret`, `pending` (sealed text),
//! `last_step`, `failed`, `locked_until`, `created_at`, `updated_at`.
//!
//! The replay check runs as a Lua script, so "is this step later than the
//! last used one, then record it" is one atomic step on the server: two
//! gateway instances presenting the same code cannot both get `true`.

use super::RedisStore;
use crate::error::StoreError;
use crate::model::{ConsumerTotp, SealedSecret};
use crate::store::{ConsumerTotpStore, Result};
use async_trait::async_trait;
use std::collections::HashMap;

/// KEYS[1] = hash, ARGV[1] = step. 1 = claimed, 0 = replay or gone.
const CLAIM_STEP: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], 'last_step')
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'last_step', ARGV[1], 'failed', 0)
redis.call('HDEL', KEYS[1], 'locked_until')
return 1
"#;

/// KEYS[1] = hash. The new failure count, 0 if the enrollment is gone.
const ADD_FAILURE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'failed', 1)
"#;

/// KEYS[1] = hash, ARGV[1] = until. Never shortens a lockout.
const LOCK: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'locked_until') or '0')
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], 'locked_until', ARGV[1])
end
return 1
"#;

impl RedisStore {
    fn totp_key(&self, consumer_id: &str) -> String {
        self.k(&["consumertotp", consumer_id])
    }

    async fn eval(&self, script: &str, key: String, args: &[u64]) -> Result<i64> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(1).arg(key);
        for a in args {
            cmd.arg(*a);
        }
        Ok(cmd.query_async(&mut conn).await?)
    }
}

fn fields(t: &ConsumerTotp) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("failed", t.failed_attempts.to_string()),
        ("created_at", t.created_at.to_string()),
        ("updated_at", t.updated_at.to_string()),
    ];
    let optional = [
        ("secret", t.secret.as_ref().map(|s| s.0.clone())),
        ("pending", t.pending.as_ref().map(|s| s.0.clone())),
        ("last_step", t.last_step.map(|v| v.to_string())),
        ("locked_until", t.locked_until.map(|v| v.to_string())),
    ];
    out.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    out
}

fn parse(consumer_id: &str, mut map: HashMap<String, String>) -> Result<ConsumerTotp> {
    fn number<T: std::str::FromStr>(
        map: &HashMap<String, String>,
        field: &str,
    ) -> Result<Option<T>> {
        map.get(field)
            .map(|v| {
                v.parse()
                    .map_err(|_| StoreError::Corrupt(format!("consumertotp field {field}")))
            })
            .transpose()
    }
    Ok(ConsumerTotp {
        consumer_id: consumer_id.to_string(),
        secret: map.remove("secret").map(SealedSecret),
        pending: map.remove("pending").map(SealedSecret),
        last_step: number(&map, "last_step")?,
        failed_attempts: number(&map, "failed")?.unwrap_or(0),
        locked_until: number(&map, "locked_until")?,
        created_at: number(&map, "created_at")?.unwrap_or(0),
        updated_at: number(&map, "updated_at")?.unwrap_or(0),
    })
}

#[async_trait]
impl ConsumerTotpStore for RedisStore {
    async fn put_consumer_totp(&self, totp: &ConsumerTotp) -> Result<()> {
        let key = self.totp_key(&totp.consumer_id);
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for (field, value) in fields(totp) {
            hset.arg(field).arg(value);
        }
        let mut conn = self.conn.clone();
        // Replace the whole hash atomically (absent fields must not linger).
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .add_command(hset)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn get_consumer_totp(&self, consumer_id: &str) -> Result<Option<ConsumerTotp>> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.totp_key(consumer_id))
            .query_async(&mut conn)
            .await?;
        if map.is_empty() {
            return Ok(None);
        }
        parse(consumer_id, map).map(Some)
    }

    async fn delete_consumer_totp(&self, consumer_id: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let removed: u64 = redis::cmd("DEL")
            .arg(self.totp_key(consumer_id))
            .query_async(&mut conn)
            .await?;
        Ok(removed > 0)
    }

    async fn claim_totp_step(&self, consumer_id: &str, step: u64) -> Result<bool> {
        let claimed = self
            .eval(CLAIM_STEP, self.totp_key(consumer_id), &[step])
            .await?;
        Ok(claimed == 1)
    }

    async fn add_totp_failure(&self, consumer_id: &str) -> Result<u32> {
        let count = self
            .eval(ADD_FAILURE, self.totp_key(consumer_id), &[])
            .await?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn lock_totp(&self, consumer_id: &str, until: u64) -> Result<()> {
        self.eval(LOCK, self.totp_key(consumer_id), &[until])
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_parse() {
        let record = ConsumerTotp {
            consumer_id: "acme".into(),
            secret: Some(SealedSecret("v1:AAAA".into())),
            pending: None,
            last_step: Some(60_000_000),
            failed_attempts: 3,
            locked_until: Some(1_800_000_100),
            created_at: 1_800_000_000,
            updated_at: 1_800_000_050,
        };
        let map: HashMap<String, String> = fields(&record)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert!(!map.contains_key("pending"));
        assert_eq!(parse("acme", map).unwrap(), record);
    }

    #[test]
    fn corrupt_numbers_are_reported_not_panicked() {
        let map = HashMap::from([("last_step".to_string(), "x".to_string())]);
        assert!(matches!(parse("acme", map), Err(StoreError::Corrupt(_))));
    }
}
