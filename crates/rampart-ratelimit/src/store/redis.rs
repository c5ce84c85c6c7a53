//! The Redis store: one atomic Lua script decides all of a request's limits.
//!
//! The script reads each key's TAT, decides with GCRA, and — only if every
//! limit admits — writes every TAT back with `SET … PX`, so an idle key
//! vanishes once its bucket is full again. It runs with `EVALSHA`, loading
//! the script on `NOSCRIPT` (handled by `redis::Script`).
//!
//! **Time comes from Redis (`TIME`)**, not from the caller: every node of a
//! fleet then judges a key against the same clock, so a node whose clock is
//! ahead cannot drain buckets early, nor one behind refill them. The cost is
//! nothing (the script already runs on the server); Redis ≥ 5 replicates
//! scripts by effects, so reading `TIME` in a script is allowed. TATs are kept
//! in whole microseconds, the resolution of `TIME`.
//!
//! Each call has a short timeout (default 50 ms). Errors and timeouts are
//! counted in [`METRIC_ERRORS`] and returned: the caller applies its
//! [`crate::OnStoreError`] policy. The connection manager reconnects in the
//! background, so the store recovers by itself when Redis is back.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::clock::Clock;
use crate::gcra;
use crate::store::lease::{signature, LeaseConfig, LeaseTable};
use crate::store::{CheckItem, Checked, RateStore, StoreCall, StoreError, StoreResult};

/// Counter: rate-limit store errors, labelled by `kind` (timeout,
/// unavailable, bad_reply). No key ever appears in a label.
pub const METRIC_ERRORS: &str = "rampart_ratelimit_store_errors_total";

/// Settings of a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Prefix of every key written. Default `rampart:rl:`.
    pub prefix: String,
    /// Longest wait for one decision, connection included. Default 50 ms.
    pub timeout: Duration,
    /// The local fast path; see [`crate::store::lease`].
    pub lease: LeaseConfig,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            prefix: "rampart:rl:".to_string(),
            timeout: Duration::from_millis(50),
            lease: LeaseConfig::default(),
        }
    }
}

/// Reads every limit's TAT with Redis' clock, decides, and charges all limits
/// (plus a lease of extra copies when there is room) or none.
///
/// ARGV: lease fraction (permille), lease max, then per key: interval (ns),
/// capacity (ns), cost. Returns {admitted, lease, backlog_us...}.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local frac = tonumber(ARGV[1]) / 1000
local lease = tonumber(ARGV[2])
local n = #KEYS
local backlog = {}
local ok = 1
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local step = tonumber(ARGV[b]) / 1000 * tonumber(ARGV[b + 2])
  local cap = tonumber(ARGV[b + 1]) / 1000
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  local bl = math.max(tat - now, 0)
  backlog[i] = bl
  local after = bl + step
  -- the tolerance absorbs float rounding of fractional intervals
  if after > cap + 0.001 then ok = 0 end
  if step > 0 then
    lease = math.min(lease, math.floor(math.floor((cap + 0.001 - after) / step) * frac))
  end
end
if ok == 0 or lease < 0 then lease = 0 end
local out = {ok, lease}
for i = 1, n do
  local b = 3 + (i - 1) * 3
  if ok == 1 then
    local step = tonumber(ARGV[b]) / 1000 * tonumber(ARGV[b + 2])
    local left = backlog[i] + step * (1 + lease)
    redis.call('SET', KEYS[i], string.format('%.0f', now + left),
      'PX', math.ceil(left / 1000) + 1000)
  end
  out[i + 2] = math.floor(backlog[i])
end
return out
"#;

/// A Redis-backed store with a local lease fast path.
pub struct RedisStore {
    conn: ConnectionManager,
    script: redis::Script,
    config: RedisConfig,
    leases: LeaseTable,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never shown.
        f.debug_struct("RedisStore")
            .field("prefix", &self.config.prefix)
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the server at `url` (`redis://[:password@]host:port/db`).
    /// Connects lazily, so it can be built while Redis is down; requests
    /// fail (and the error policy applies) until it is up. Must be called
    /// within a Tokio runtime.
    pub fn new(url: &str, config: RedisConfig, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let client =
            redis::Client::open(url).map_err(|_| StoreError::Unavailable("bad redis url"))?;
        let conn_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, conn_config)
            .map_err(|_| StoreError::Unavailable("cannot create redis connection"))?;
        Ok(RedisStore {
            conn,
            script: redis::Script::new(SCRIPT),
            leases: LeaseTable::new(config.lease),
            config,
            clock,
        })
    }

    /// Connects and loads the script, so the first request does not pay
    /// for it (call at startup; an error only means Redis is not there yet,
    /// the store keeps retrying by itself). Waits at most 10× the timeout.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let load = self.script.load_async(&mut conn);
        match tokio::time::timeout(self.config.timeout * 10, load).await {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(_)) => Ok(()),
        }
    }

    async fn round_trip(&self, items: Vec<CheckItem>, sig: Vec<u8>) -> StoreResult {
        let reply = tokio::time::timeout(self.config.timeout, self.invoke(&items)).await;
        let reply = match reply {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(v)) => Ok(v),
        };
        let reply = reply.inspect_err(|e| {
            metrics::counter!(METRIC_ERRORS, "kind" => e.kind()).increment(1);
            tracing::debug!(error = %e, "rate-limit store error");
        })?;
        let (checked, lease) = interpret(&items, &reply)?;
        let now = self.clock.now_nanos();
        if checked.admitted {
            self.leases.grant(sig, &items, &checked, lease, now);
        } else {
            self.leases.refuse(sig, &checked, now);
        }
        Ok(checked)
    }

    async fn invoke(&self, items: &[CheckItem]) -> redis::RedisResult<Vec<i64>> {
        let lease = self.leases.config();
        let mut inv = self.script.prepare_invoke();
        let (permille, max) = if lease.enabled {
            (lease.fraction_permille, lease.max_units)
        } else {
            (0, 0)
        };
        inv.arg(permille).arg(max);
        for item in items {
            let mut key = Vec::with_capacity(self.config.prefix.len() + item.key.len());
            key.extend_from_slice(self.config.prefix.as_bytes());
            key.extend_from_slice(&item.key);
            inv.key(key);
            inv.arg(item.limit.interval_nanos())
                .arg(item.limit.capacity_nanos())
                .arg(item.cost);
        }
        let mut conn = self.conn.clone();
        inv.invoke_async(&mut conn).await
    }
}

fn classify(e: &redis::RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        StoreError::Unavailable("redis connection failed")
    } else {
        StoreError::Unavailable("redis command failed")
    }
}

/// Turns the script's reply into outcomes (and the lease granted).
fn interpret(items: &[CheckItem], reply: &[i64]) -> Result<(Checked, u64), StoreError> {
    if reply.len() != items.len() + 2 {
        return Err(StoreError::BadReply);
    }
    let admitted = reply[0] == 1;
    let lease = u64::try_from(reply[1]).map_err(|_| StoreError::BadReply)?;
    let outcomes = items
        .iter()
        .zip(&reply[2..])
        .map(|(item, &us)| {
            let backlog = u64::try_from(us).unwrap_or(0).saturating_mul(1000);
            gcra::outcome(&item.limit, backlog, item.cost, admitted)
        })
        .collect();
    Ok((Checked { admitted, outcomes }, lease))
}

impl RateStore for RedisStore {
    fn check(&self, items: Vec<CheckItem>) -> StoreCall<'_> {
        let sig = signature(&items);
        if let Some(local) = self.leases.try_local(&sig, &items, self.clock.now_nanos()) {
            return StoreCall::Ready(Ok(local));
        }
        StoreCall::Pending(Box::pin(self.round_trip(items, sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcra::Limit;

    #[test]
    fn interpret_rejects_short_replies() {
        let l = Limit::per(1, Duration::from_secs(1)).unwrap();
        let items = vec![CheckItem {
            key: b"k"[..].into(),
            limit: l,
            cost: 1,
        }];
        assert_eq!(interpret(&items, &[1, 0]), Err(StoreError::BadReply));
        assert_eq!(interpret(&items, &[1, -1, 0]), Err(StoreError::BadReply));
        let (c, lease) = interpret(&items, &[0, 0, 1_000_000]).unwrap();
        assert!(!c.admitted);
        assert_eq!(lease, 0);
        assert_eq!(c.outcomes[0].retry_after, Some(Duration::from_secs(1)));
    }
}
