//! Config → filter: each protection's section of a route becomes its filter
//! here, once per load. Errors name the key (relative to the route) and what
//! was expected; the snapshot adds the route's path.

pub mod auth;
pub mod bot;
pub mod dlp;
pub mod jwt;
pub mod openapi;
pub mod ratelimit;
pub mod step_up;

/// A build error: the key under the route, and the message.
pub type BuildError = (String, String);
