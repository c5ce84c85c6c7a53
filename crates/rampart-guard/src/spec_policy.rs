//! Policy from the API contract: an operation's `x-rampart-ratelimit` and
//! `x-rampart-auth` vendor extensions, enforced for the operation the
//! OpenAPI filter matched, so the spec is the single source of policy.
//!
//! Runs after the `openapi` filter (which stores the matched operation in
//! the request context) and after `auth` (which verifies the credential;
//! with `optional = true` there, the spec decides which operations need one).

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderValue, StatusCode};
use rampart_core::{
    Decision, Denial, Filter, Mode, RequestCtx, RequestHead, ResponseHead, Verdict,
};
use rampart_openapi::{AuthExt, MatchedOperation, Operation, RateLimitExt};
use rampart_ratelimit::{
    KeyPart, KeySpec, Limit, LimitRule, OnStoreError, RateLimitFilter, RateLimitOptions, RateStore,
};

pub const AUTH_REQUIRED: &str = "auth_required";
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";

pub struct SpecPolicyFilter {
    mode: Mode,
    /// Rate limiters of the operations that declare one, by operation.
    limits: HashMap<usize, RateLimitFilter>,
}

fn op_id(op: &Arc<Operation>) -> usize {
    Arc::as_ptr(op) as usize
}

impl SpecPolicyFilter {
    /// One limiter per operation with `x-rampart-ratelimit`, on `store`.
    pub fn new<'a>(
        mode: Mode,
        operations: impl Iterator<Item = &'a Arc<Operation>>,
        store: Arc<dyn RateStore>,
        on_store_error: OnStoreError,
    ) -> Result<Self, String> {
        let mut limits = HashMap::new();
        for op in operations {
            let Some(ext) = &op.rate_limit else { continue };
            let name = op
                .operation_id
                .clone()
                .unwrap_or_else(|| format!("{} {}", op.method, op.path));
            let rule = rule(&name, ext)?;
            let filter = RateLimitFilter::new(RateLimitOptions {
                limits: vec![rule],
                mode,
                store: store.clone(),
                on_store_error: on_store_error.clone(),
            });
            limits.insert(op_id(op), filter);
        }
        Ok(SpecPolicyFilter { mode, limits })
    }

    fn operation(ctx: &RequestCtx) -> Option<Arc<Operation>> {
        ctx.extensions
            .get::<MatchedOperation>()
            .map(|m| m.0.clone())
    }
}

fn rule(name: &str, ext: &RateLimitExt) -> Result<LimitRule, String> {
    let burst = ext.burst.max(ext.count);
    let limit = Limit::new(ext.count, ext.period, burst).map_err(|e| format!("{name}: {e}"))?;
    let part = match ext.key.as_str() {
        "ip" => KeyPart::ClientIp,
        "consumer" => KeyPart::Consumer,
        "key" | "api_key" => KeyPart::ApiKeyId,
        other => {
            let claim = other.strip_prefix("claim:").ok_or_else(|| {
                format!("{name}: x-rampart-ratelimit key {other:?} is not ip, consumer, key or claim:NAME")
            })?;
            KeyPart::Claim(claim.to_string())
        }
    };
    // The name is unique per operation, so two operations never share buckets.
    Ok(LimitRule::new(
        name,
        limit,
        KeySpec::new(vec![part, KeyPart::Route]),
    ))
}

fn check_auth(ext: &AuthExt, ctx: &RequestCtx) -> Decision {
    let challenge = HeaderValue::from_static("Bearer realm=\"rampart\"");
    let Some(identity) = &ctx.identity else {
        if !ext.required {
            return Decision::Continue;
        }
        return Decision::Deny(
            Denial::new(
                StatusCode::UNAUTHORIZED,
                AUTH_REQUIRED,
                "this operation needs credentials",
            )
            .with_header(http::header::WWW_AUTHENTICATE, challenge),
        );
    };
    if !ext.methods.is_empty() && !ext.methods.iter().any(|m| m == identity.method.as_str()) {
        return Decision::Deny(
            Denial::new(
                StatusCode::UNAUTHORIZED,
                AUTH_REQUIRED,
                "this operation does not accept this kind of credential",
            )
            .with_header(http::header::WWW_AUTHENTICATE, challenge),
        );
    }
    match ext.scopes.iter().find(|s| !identity.has_scope(s)) {
        Some(missing) => Decision::deny(
            StatusCode::FORBIDDEN,
            INSUFFICIENT_SCOPE,
            format!("the credential lacks the scope {missing:?} this operation requires"),
        ),
        None => Decision::Continue,
    }
}

impl Filter for SpecPolicyFilter {
    fn name(&self) -> &'static str {
        "spec_policy"
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        let Some(op) = Self::operation(ctx) else {
            return Verdict::Ready(Decision::Continue);
        };
        if let Some(ext) = &op.auth {
            let d = check_auth(ext, ctx);
            if d != Decision::Continue {
                return Verdict::Ready(d);
            }
        }
        match self.limits.get(&op_id(&op)) {
            Some(limiter) => limiter.request_headers(ctx, head),
            None => Verdict::Ready(Decision::Continue),
        }
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        match Self::operation(ctx).and_then(|op| self.limits.get(&op_id(&op))) {
            Some(limiter) => limiter.response_headers(ctx, head),
            None => Decision::Continue,
        }
    }
}
