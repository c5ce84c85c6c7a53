//! The `step_up` section of a route → [`StepUpFilter`] over the store's
//! consumer TOTP enrollments (MFA step-up on sensitive routes).

use std::sync::Arc;

use http::HeaderName;
use rampart_config::{NotEnrolledPolicy, StepUpPolicy};
use rampart_guard::step_up::{
    NotEnrolled, StepUpFilter, StepUpOptions, StepUpVerifier, VerifyFuture,
};
use rampart_store::{ServerSecret, StepUpOutcome, StoreError};

use super::BuildError;
use crate::services::Services;

pub fn filter(p: &StepUpPolicy, services: &Services) -> Result<StepUpFilter, BuildError> {
    let (verifier, grant_key): (Arc<dyn StepUpVerifier>, ServerSecret) = match &services.identity {
        Some(identity) => (identity.totp.clone(), identity.step_up_key.clone()),
        // `rampart check` opens no store: the filter still builds (its
        // options were checked), and would answer 503 if it ever ran.
        None => (Arc::new(NoStore), no_store_key()?),
    };
    let header = HeaderName::from_bytes(p.header.as_bytes()).map_err(|_| {
        (
            ".step_up.header".to_string(),
            format!("expected a header name, found {:?}", p.header),
        )
    })?;
    let mut o = StepUpOptions::new(verifier, grant_key);
    o.mode = rampart_guard::mode(p.mode);
    o.header = header;
    o.cookie_name = p.cookie_name.clone();
    o.grant_lifetime = p.grant_lifetime.0;
    o.cookie_secure = p.cookie_secure;
    o.require_identity = p.require_identity;
    o.challenge_page = p.challenge_page;
    o.not_enrolled = match p.not_enrolled {
        NotEnrolledPolicy::Allow => NotEnrolled::Allow,
        NotEnrolledPolicy::Deny => NotEnrolled::Deny,
    };
    Ok(StepUpFilter::new(o))
}

/// The verifier when no identity store is open: every check fails closed.
struct NoStore;

impl StepUpVerifier for NoStore {
    fn is_enrolled<'a>(&'a self, _consumer_id: &'a str) -> VerifyFuture<'a, bool> {
        Box::pin(async { Err(StoreError::Backend("no identity store".into())) })
    }

    fn verify<'a>(&'a self, _: &'a str, _: &'a str) -> VerifyFuture<'a, StepUpOutcome> {
        Box::pin(async { Err(StoreError::Backend("no identity store".into())) })
    }
}

fn no_store_key() -> Result<ServerSecret, BuildError> {
    ServerSecret::new(&rampart_store::secret::random_bytes::<32>())
        .map_err(|e| (".step_up".to_string(), e.to_string()))
}
