//! rampart-core: the vocabulary every protection shares.
//!
//! A protection is a [`Filter`]: a handful of hooks (request headers, request
//! body chunk, response headers, response body chunk, log), each defaulting to
//! "continue". A hook returns a [`Decision`]; the gateway applies it according
//! to the filter's [`Mode`]. Per-request state lives in [`RequestCtx`], and
//! every denial — whether a filter's or the gateway's own — becomes an HTTP
//! response in exactly one place, [`respond::render`].

pub mod ctx;
pub mod decision;
pub mod events;
pub mod filter;
pub mod identity;
pub mod ipset;
pub mod peer_tls;
pub mod reason;
pub mod respond;

pub use ctx::{RequestCtx, SecurityEvent};
pub use decision::{Challenge, Decision, Denial, Mode};
pub use events::{EventRecord, EventSink};
pub use filter::{BodyInterest, Filter, RequestHead, ResponseHead, Verdict};
pub use identity::{AuthMethod, Identity, IdentityHeaders};
pub use ipset::IpSet;
pub use peer_tls::{CertName, ClientCert, PeerTls};
pub use reason::Reason;
