//! rampart's identity store and credential library.
//!
//! - [`Keyring`]: consumers and API keys (`rk_live_…`/`rk_test_…`), with a
//!   fast in-memory [`Keyring::verify`] for the request path, rotation with
//!   a grace period, immediate revocation, coalesced last-used tracking.
//! - [`AdminService`]: admin users (argon2id, TOTP, lockout), admin API
//!   tokens and dashboard sessions.
//! - [`ConsumerTotpService`]: consumer TOTP for MFA step-up (enrollment,
//!   replay-protected verification, lockout), secrets sealed at rest.
//! - Storage behind one trait per concern ([`store`]): [`SqliteStore`]
//!   (embedded, crash-safe) and [`RedisStore`] (fleet, with pub/sub cache
//!   invalidation). The audit log is append-only in both.
//!
//! Secrets never appear in `Debug`, `Display` or error messages.

pub mod admin;
mod cache;
pub mod clock;
pub mod consumer_totp;
pub mod error;
pub mod keyformat;
pub mod keyring;
pub mod model;
pub mod redis_store;
mod seal;
pub mod secret;
pub mod sqlite;
pub mod store;
pub mod totp;

pub use admin::{
    AdminOptions, AdminService, CreatedSession, CreatedToken, HashCost, TokenVerifyError,
    TotpEnrollment,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use consumer_totp::{ConsumerTotpOptions, ConsumerTotpService, StepUpOutcome, TotpStatus};
pub use error::{KeyError, LoginError, StoreError, TokenError};
pub use keyformat::KeyEnv;
pub use keyring::{CreatedKey, Keyring, KeyringOptions, VerifiedKey};
pub use model::*;
pub use redis_store::{RedisOptions, RedisStore};
pub use secret::{SecretString, ServerSecret};
pub use sqlite::SqliteStore;
pub use store::Backend;
