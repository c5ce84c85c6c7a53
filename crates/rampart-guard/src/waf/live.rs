//! A WAF transaction that outlives the request hooks, for the response
//! phases.
//!
//! The engine's `Transaction` borrows its rule set; the filter keeps the rule
//! set in an `Arc`, so a live transaction owns that `Arc` and the transaction
//! borrowing it together (`self_cell`), and sits in the request context
//! between the request and the response hooks behind a mutex (the context
//! wants `Send + Sync + Clone` values).

use std::sync::{Arc, Mutex};

use rampart_waf::{RuleSet, Transaction};

self_cell::self_cell!(
    /// A rule set and one transaction over it.
    pub struct LiveTx {
        owner: Arc<RuleSet>,
        #[covariant]
        dependent: Transaction,
    }
);

impl LiveTx {
    pub fn start(rules: Arc<RuleSet>) -> LiveTx {
        LiveTx::new(rules, |r| Transaction::new(r))
    }

    /// Runs `f` on the transaction.
    pub fn with<T>(&mut self, f: impl FnOnce(&mut Transaction<'_>) -> T) -> T {
        self.with_dependent_mut(|_, tx| f(tx))
    }
}

/// The slot a live transaction waits in between hooks.
#[derive(Clone)]
pub struct LiveSlot {
    pub tx: Arc<Mutex<LiveTx>>,
    /// Matched rules already audited (the request phases').
    pub audited: usize,
    /// The response body was judged; later chunks pass.
    pub done: bool,
}

impl LiveSlot {
    pub fn new(tx: LiveTx, audited: usize) -> LiveSlot {
        LiveSlot {
            tx: Arc::new(Mutex::new(tx)),
            audited,
            done: false,
        }
    }
}
