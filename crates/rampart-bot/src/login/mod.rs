//! Credential-stuffing protection for login routes.
//!
//! [`guard::LoginGuard`] is the library (counters, detection, decisions);
//! [`filter::LoginGuardFilter`] wires it into the gateway's filter pipeline;
//! [`breached`] checks passwords against a local Pwned Passwords dataset;
//! [`store`] holds the counter-store trait and its in-memory implementation.

pub mod breached;
pub mod extract;
pub mod filter;
pub mod guard;
pub mod store;

pub use breached::{BreachedPasswords, BreachedSource};
pub use extract::CredentialSource;
pub use filter::{LoginGuardFilter, LoginOptions, LoginOutcome};
pub use guard::{
    AttemptVerdict, BreachedAction, DelayPolicy, GuardAction, GuardOptions, LoginGuard, Thresholds,
    UserKey,
};
pub use store::{CounterStore, MemoryCounterStore};
