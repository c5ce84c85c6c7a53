//! IP reputation for the rampart gateway.
//!
//! - [`IpTrie`]: longest-prefix match over IPv4/IPv6 CIDRs, allocation-free lookups.
//! - [`FeedSet`]: named allow/deny feeds (plain, FireHOL netset, Spamhaus DROP/EDROP) read
//!   from files, reloaded on change and swapped in atomically; [`FeedSet::check`].
//! - [`GeoPolicy`]: MaxMind country/ASN lookups with allow/deny rules.
//! - [`ThreatTracker`]: decaying threat scores per client, escalating automatic bans, manual
//!   bans; stored by a [`BanStore`]: [`LocalBanStore`] (memory + JSON file) or
//!   [`RedisBanStore`] (shared by a fleet, local mirror, pub/sub propagation).
//!
//! Everything a request path calls (`FeedSet::check`, `GeoPolicy::check`,
//! `ThreatTracker::is_banned`) is synchronous, lock-free and does not allocate.

pub mod ban;
pub mod clock;
pub mod feed;
pub mod feedset;
pub mod geo;
pub mod store;
pub mod threat;
pub mod tracker;
pub mod trie;

pub use ban::{BanIndex, BanInfo, BanSource};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use feed::{parse_feed, BadLine, FeedEntry, FeedFormat, ParsedFeed};
pub use feedset::{FeedError, FeedSet, FeedSpec, FeedStats, ListAction, Match};
pub use geo::{CountryCode, GeoDb, GeoError, GeoMatch, GeoPolicy, GeoRule, GeoRules};
pub use store::local::{LocalBanStore, LocalStoreOptions};
pub use store::redis::{RedisBanStore, RedisStoreOptions};
pub use store::{BanStore, StoreError};
pub use threat::{kinds, ThreatConfig};
pub use tracker::ThreatTracker;
pub use trie::{parse_net, IpTrie};
