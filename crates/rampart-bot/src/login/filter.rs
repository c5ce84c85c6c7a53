//! `LoginGuardFilter`: the credential-stuffing guard on one login route.
//!
//! Hooks: `request_headers` (route match, blocked source, progressive delay
//! as a pending verdict, Basic auth credentials), `request_body` (body
//! credentials, held back from the upstream until checked),
//! `response_headers` (outcome by status) and `response_body` (outcome by
//! JSON field, when configured).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use rampart_core::{
    AuthMethod, BodyInterest, Challenge, Decision, Filter, Mode, RequestCtx, RequestHead,
    ResponseHead, Verdict,
};
use zeroize::Zeroizing;

use super::extract::{from_basic_auth, from_body, CredentialSource, Credentials};
use super::guard::{GuardAction, LoginGuard, UserKey};
use crate::crypto::unix_now;
use crate::kit::{is_trusted, ChallengeKit};

/// How the upstream says whether a login worked.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginOutcome {
    /// By status code. Statuses in neither list are not counted.
    Status {
        success: Vec<u16>,
        failure: Vec<u16>,
    },
    /// By a JSON body field: success when `field` (dotted path) equals
    /// `success_value`; any other JSON answer is a failure. The response
    /// body is held up to `max_bytes` to read it.
    JsonField {
        field: String,
        success_value: serde_json::Value,
        max_bytes: u64,
    },
}

impl Default for LoginOutcome {
    fn default() -> Self {
        LoginOutcome::Status {
            success: vec![200, 204],
            failure: vec![401, 403],
        }
    }
}

/// LoginGuardFilter settings.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// Login route method (default POST) and exact path.
    pub method: Method,
    pub path: String,
    /// Where the username and password are.
    pub credentials: CredentialSource,
    /// How success and failure are recognised.
    pub outcome: LoginOutcome,
    /// Largest login body read (default 16 KiB); also the body hold.
    pub max_body_bytes: u64,
    /// Enforce or only record (default enforce).
    pub mode: Mode,
    /// Authenticated clients that skip the guard (default none).
    pub skip_for: Vec<AuthMethod>,
}

impl LoginOptions {
    pub fn new(path: &str, credentials: CredentialSource) -> Self {
        LoginOptions {
            method: Method::POST,
            path: path.to_string(),
            credentials,
            outcome: LoginOutcome::default(),
            max_body_bytes: 16 * 1024,
            mode: Mode::Enforce,
            skip_for: Vec::new(),
        }
    }
}

/// Header telling the upstream the submitted password is breached.
pub const BREACHED_HEADER: &str = "x-rampart-breached-password";

#[derive(Clone, Default)]
struct LoginState {
    body: Zeroizing<Vec<u8>>,
    user: Option<UserKey>,
    cleared: bool,
    checked: bool,
    resp_body: Vec<u8>,
}

/// The filter.
pub struct LoginGuardFilter {
    guard: Arc<LoginGuard>,
    options: LoginOptions,
    kit: Option<Arc<ChallengeKit>>,
}

impl std::fmt::Debug for LoginGuardFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuardFilter")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl LoginGuardFilter {
    pub fn new(guard: Arc<LoginGuard>, options: LoginOptions) -> Self {
        LoginGuardFilter {
            guard,
            options,
            kit: None,
        }
    }

    /// With a kit, challenges are real proof-of-work challenges and a
    /// clearance spares repeat challenges; without, the guard answers
    /// `Decision::Challenge` (a plain 403 until the gateway renders it).
    pub fn with_challenges(mut self, kit: Arc<ChallengeKit>) -> Self {
        self.kit = Some(kit);
        self
    }

    fn is_login(&self, head: &RequestHead) -> bool {
        head.method == self.options.method && head.uri.path() == self.options.path
    }

    /// Checks one attempt and turns the guard's answer into a decision.
    fn check(
        &self,
        ctx: &mut RequestCtx,
        head: Option<&RequestHead>,
        creds: &Credentials,
    ) -> Decision {
        let user = self.guard.user_key(&creds.username);
        let cleared = ctx
            .extensions
            .get::<LoginState>()
            .is_some_and(|s| s.cleared);
        let verdict = self.guard.on_attempt(
            ctx.client_ip,
            &user,
            Some(&creds.password),
            cleared,
            unix_now(),
        );
        if let Some(state) = ctx.extensions.get_mut::<LoginState>() {
            state.user = Some(user);
            state.checked = true;
        }
        if let Some(n) = verdict.breached {
            ctx.extensions.insert(BreachedPassword(n));
        }
        match verdict.action {
            GuardAction::Allow => match verdict.breached {
                Some(_) => Decision::Risk {
                    points: 20,
                    reason: "breached_password",
                },
                None => Decision::Continue,
            },
            GuardAction::Block(reason) => Decision::deny(
                StatusCode::FORBIDDEN,
                reason,
                "login attempts from here are blocked",
            ),
            GuardAction::Challenge(reason) => self.challenge(ctx, head, reason),
        }
    }

    fn challenge(
        &self,
        ctx: &mut RequestCtx,
        head: Option<&RequestHead>,
        reason: &'static str,
    ) -> Decision {
        match (&self.kit, head) {
            (Some(kit), Some(head)) => Decision::Deny(kit.challenge(ctx, head, 18, reason)),
            _ => Decision::Challenge {
                kind: Challenge::ProofOfWork,
                reason,
            },
        }
    }
}

/// Breach count of the submitted password (in `ctx.extensions`), so the
/// gateway can pass `X-Rampart-Breached-Password` upstream.
#[derive(Debug, Clone, Copy)]
pub struct BreachedPassword(pub u64);

impl Filter for LoginGuardFilter {
    fn name(&self) -> &'static str {
        "login_guard"
    }

    fn mode(&self) -> Mode {
        self.options.mode
    }

    fn body_interest(&self) -> BodyInterest {
        let hold_response = match &self.options.outcome {
            LoginOutcome::JsonField { max_bytes, .. } => *max_bytes,
            LoginOutcome::Status { .. } => 0,
        };
        BodyInterest {
            request: self.options.credentials.needs_body(),
            response: hold_response > 0,
            hold_request: if self.options.credentials.needs_body() {
                self.options.max_body_bytes
            } else {
                0
            },
            hold_response,
        }
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        if !self.is_login(head) || is_trusted(ctx, &self.options.skip_for) {
            return Verdict::Ready(Decision::Continue);
        }
        let pre = self.guard.pre_check(ctx.client_ip, unix_now());
        if pre.blocked {
            let mut d = rampart_core::Denial::new(
                StatusCode::FORBIDDEN,
                "login_source_blocked",
                "login attempts from here are blocked",
            );
            d.headers.push((
                http::header::RETRY_AFTER,
                HeaderValue::from(self.guard.options().block_secs),
            ));
            return Verdict::Ready(Decision::Deny(d));
        }
        let cleared = self.kit.as_ref().is_some_and(|k| k.is_cleared(ctx, head));
        ctx.extensions.insert(LoginState {
            cleared,
            ..LoginState::default()
        });
        let mut decision = Decision::Continue;
        if !self.options.credentials.needs_body() {
            if let Some(creds) = from_basic_auth(&head.headers) {
                decision = self.check(ctx, Some(head), &creds);
            }
        } else if self.kit.is_some() {
            // Keep the head for a possible challenge page in the body hook.
            ctx.extensions.insert(HeadCopy(head.clone()));
        }
        if let Some(BreachedPassword(n)) = ctx.extensions.get::<BreachedPassword>().copied() {
            head.headers.insert(BREACHED_HEADER, HeaderValue::from(n));
        }
        delayed(pre.delay, decision)
    }

    fn request_body(&self, ctx: &mut RequestCtx, chunk: &Bytes, end: bool) -> Decision {
        let max = self.options.max_body_bytes as usize;
        let Some(state) = ctx.extensions.get_mut::<LoginState>() else {
            return Decision::Continue;
        };
        if state.checked {
            return Decision::Continue;
        }
        let room = max.saturating_sub(state.body.len());
        state
            .body
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        if !end && chunk.len() <= room {
            return Decision::Continue;
        }
        state.checked = true;
        let body = std::mem::take(&mut state.body);
        let Some(creds) = from_body(&self.options.credentials, &body) else {
            return Decision::Continue;
        };
        let head = ctx.extensions.remove::<HeadCopy>().map(|h| h.0);
        self.check(ctx, head.as_ref(), &creds)
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        let LoginOutcome::Status { success, failure } = &self.options.outcome else {
            return Decision::Continue;
        };
        let Some(user) = ctx
            .extensions
            .get::<LoginState>()
            .and_then(|s| s.user.clone())
        else {
            return Decision::Continue;
        };
        let code = head.status.as_u16();
        let outcome = if success.contains(&code) {
            Some(true)
        } else if failure.contains(&code) {
            Some(false)
        } else {
            None
        };
        if let Some(ok) = outcome {
            self.guard.on_outcome(ctx.client_ip, &user, ok, unix_now());
        }
        Decision::Continue
    }

    fn response_body(&self, ctx: &mut RequestCtx, chunk: &mut Bytes, end: bool) -> Decision {
        let LoginOutcome::JsonField {
            field,
            success_value,
            max_bytes,
        } = &self.options.outcome
        else {
            return Decision::Continue;
        };
        let ip = ctx.client_ip;
        let Some(state) = ctx.extensions.get_mut::<LoginState>() else {
            return Decision::Continue;
        };
        let Some(user) = state.user.clone() else {
            return Decision::Continue;
        };
        let room = (*max_bytes as usize).saturating_sub(state.resp_body.len());
        state
            .resp_body
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        if !end && chunk.len() <= room {
            return Decision::Continue;
        }
        let body = std::mem::take(&mut state.resp_body);
        state.user = None;
        let success = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                field
                    .split('.')
                    .try_fold(&v, |v, k| v.get(k))
                    .map(|found| found == success_value)
            })
            .unwrap_or(false);
        self.guard.on_outcome(ip, &user, success, unix_now());
        Decision::Continue
    }
}

#[derive(Clone)]
struct HeadCopy(RequestHead);

/// The decision, after `delay` when there is one (progressive delay).
fn delayed<'a>(delay: Duration, decision: Decision) -> Verdict<'a> {
    if delay.is_zero() {
        return Verdict::Ready(decision);
    }
    Verdict::Pending(Box::pin(async move {
        tokio::time::sleep(delay).await;
        decision
    }))
}
