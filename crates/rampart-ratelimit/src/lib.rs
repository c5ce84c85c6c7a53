//! rampart-ratelimit: GCRA rate limits and quotas for the gateway.
//!
//! - [`gcra`]: the algorithm, pure functions of time ([`clock`] injects it).
//! - [`store`]: where buckets live — [`LocalStore`] (sharded, bounded memory)
//!   and [`RedisStore`] (one atomic Lua script per request, with a local
//!   lease fast path whose over-admission is bounded; see [`store::lease`]).
//! - [`key`]: bucket keys from request parts; [`rules`]: limits, costs and
//!   tier quotas; [`headers`]: `RateLimit-Policy`, `RateLimit`, `Retry-After`.
//! - [`filter`]: the [`RateLimitFilter`] the gateway runs.
//!
//! Operator documentation: `docs/rate-limiting.md`.

#![forbid(unsafe_code)]

pub mod clock;
pub mod filter;
pub mod gcra;
pub mod headers;
pub mod key;
pub mod rules;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use filter::{OnStoreError, RateLimitFilter, RateLimitOptions};
pub use gcra::{Limit, LimitError, Outcome};
pub use key::{KeyPart, KeySpec, OnMissing};
pub use rules::{CostRule, LimitRule};
pub use store::lease::LeaseConfig;
pub use store::local::{LocalConfig, LocalStore, StoreSize};
pub use store::redis::{RedisConfig, RedisStore};
pub use store::{CheckItem, Checked, RateStore, StoreCall, StoreError};
