//! rampart-bot: bot defence and credential-stuffing protection.
//!
//! * [`score`]: bot score 0–100 from weighted signals ([`ua`] classes,
//!   [`headers`] anomalies, [`cadence`], JA4 and IP reputation inputs) and
//!   the policy mapping score bands to allow / challenge / block.
//! * [`ja4`]: JA4 fingerprints of raw TLS ClientHello bytes.
//! * [`pow`], [`captcha`], [`clearance`]: challenges and the signed
//!   clearance that spares a client further challenges; [`replay`] makes
//!   challenges single-use.
//! * [`pages`]: the challenge page, API challenge and answers as
//!   [`Page`]s; the filters return each as a `Decision::Deny` whose denial
//!   carries the page as its body (`Denial::with_body`), so the gateway's
//!   `respond::render` sends it unchanged. [`kit`] bundles the challengers.
//! * [`keys`]: epoch signing keys shared by a fleet and rotated
//!   ([`keys::EmbeddedKeys`] from a server secret, [`shared::RedisKeys`]
//!   from Redis).
//! * [`shared`]: Redis implementations of the used-token set, the login
//!   guard's counters and marks, and the key source, for a fleet of
//!   gateways.
//! * [`filter`]: the [`BotFilter`](filter::BotFilter).
//! * [`login`]: the credential-stuffing guard, its filter and the
//!   breached-password check.

pub mod binding;
pub mod cadence;
pub mod captcha;
pub mod clearance;
pub mod crypto;
pub mod filter;
pub mod headers;
pub mod ja4;
pub mod keys;
pub mod kit;
pub mod login;
pub mod pages;
pub mod pow;
pub mod replay;
pub mod score;
pub mod shared;
pub mod ua;

pub use binding::Binding;
pub use crypto::{Key, KeyRing, TokenError};
pub use filter::{BotFilter, BotOptions, BotVerdict};
pub use keys::{EmbeddedKeys, KeyHandle, RotationOptions};
pub use kit::{ChallengeKit, IpReputation, Ja4};
pub use pages::Page;
