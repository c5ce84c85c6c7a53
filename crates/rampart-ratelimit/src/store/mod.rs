//! Where rate-limit state lives: one trait, a local and a Redis store.
//!
//! A store decides a whole request at once (all its limits, no partial
//! consumption). [`RateStore::check`] returns a [`StoreCall`]: the local store
//! answers `Ready` without allocating a future; the Redis store answers
//! `Ready` from its local leases when it can and `Pending` only when it needs
//! a round trip.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::gcra::{Limit, Outcome};

pub mod lease;
pub mod local;
pub mod redis;

/// One limit of a request: the key's bucket, the limit and the cost.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// The bucket's key, unique across limits (see [`crate::key`]). May hold
    /// client data (IPs, header values), so it is never logged.
    pub key: Box<[u8]>,
    pub limit: Limit,
    pub cost: u64,
}

impl fmt::Debug for CheckItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckItem")
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("limit", &self.limit)
            .field("cost", &self.cost)
            .finish()
    }
}

/// A store's answer: admitted only if every limit admitted, and then every
/// limit was charged; otherwise none was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub admitted: bool,
    /// One outcome per item, in request order.
    pub outcomes: Vec<Outcome>,
}

/// Why a store could not decide. Messages never contain keys or addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("rate-limit store timed out")]
    Timeout,
    #[error("rate-limit store unavailable: {0}")]
    Unavailable(&'static str),
    #[error("rate-limit store answered something unexpected")]
    BadReply,
}

impl StoreError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::BadReply => "bad_reply",
        }
    }
}

pub type StoreResult = Result<Checked, StoreError>;

/// A decision that needs waiting for (a network round trip).
pub type StoreFuture<'a> = Pin<Box<dyn Future<Output = StoreResult> + Send + 'a>>;

/// A store's answer, now or later.
pub enum StoreCall<'a> {
    Ready(StoreResult),
    Pending(StoreFuture<'a>),
}

impl StoreCall<'_> {
    pub async fn resolve(self) -> StoreResult {
        match self {
            StoreCall::Ready(r) => r,
            StoreCall::Pending(f) => f.await,
        }
    }
}

/// A rate-limit store shared by all requests.
pub trait RateStore: Send + Sync + fmt::Debug {
    /// Decides a request's limits together. Never panics; a store that cannot
    /// decide in its configured time answers an error.
    fn check(&self, items: Vec<CheckItem>) -> StoreCall<'_>;
}
