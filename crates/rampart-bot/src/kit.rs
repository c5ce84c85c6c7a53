//! The challenge kit shared by the filters: challengers, clearances,
//! endpoints, and the grant of a clearance.
//!
//! Every answer of this crate's filters (challenge page, API challenge,
//! verify answers with `Set-Cookie`, CAPTCHA redirect) is a
//! `Decision::Deny(Denial)` whose body is the crate's own page
//! ([`crate::pages::Page::into_denial`] uses `Denial::with_body`), so the
//! gateway sends it through `rampart_core::respond::render` like any other
//! refusal. Status, headers and body are all in the denial.

use http::{HeaderMap, HeaderName, HeaderValue};
use rampart_core::{AuthMethod, Denial, RequestCtx, RequestHead};

use crate::binding::Binding;
use crate::captcha::{CaptchaChallenger, CaptchaKind};
use crate::clearance::{Clearances, HEADER_NAME};
use crate::pages::{self, Endpoints};
use crate::pow::PowChallenger;

/// JA4 of the request's TLS connection (set by the gateway when known).
#[derive(Debug, Clone)]
pub struct Ja4(pub std::sync::Arc<str>);

/// IP reputation 0 (clean) – 100 (bad), set by the reputation filter.
#[derive(Debug, Clone, Copy)]
pub struct IpReputation(pub u8);

/// Everything needed to challenge a client and recognise one that passed.
#[derive(Debug, Clone)]
pub struct ChallengeKit {
    pub pow: PowChallenger,
    pub captcha: CaptchaChallenger,
    pub clearances: Clearances,
    pub endpoints: Endpoints,
}

impl ChallengeKit {
    /// A kit with the default lifetimes (puzzles 120 s, CAPTCHAs 300 s,
    /// clearances 3600 s) and endpoints. `keys`: a rotating
    /// [`KeyHandle`](crate::keys::KeyHandle) (from
    /// [`EmbeddedKeys`](crate::keys::EmbeddedKeys) or
    /// [`RedisKeys`](crate::shared::RedisKeys)) or a fixed
    /// `Arc<KeyRing>`; `replay`: [`MemoryReplayStore`](crate::replay::MemoryReplayStore)
    /// on one node, [`RedisReplayStore`](crate::shared::RedisReplayStore)
    /// in a fleet.
    pub fn new(
        keys: impl Into<crate::keys::KeyHandle>,
        replay: std::sync::Arc<dyn crate::replay::ReplayStore>,
    ) -> Self {
        let keys = keys.into();
        ChallengeKit {
            pow: PowChallenger::new(keys.clone(), replay.clone(), 120),
            captcha: CaptchaChallenger::new(keys.clone(), replay, 300),
            clearances: Clearances::new(keys, 3600),
            endpoints: Endpoints::default(),
        }
    }

    /// The client's binding: its network prefix and User-Agent.
    pub fn binding(ctx: &RequestCtx, head: &RequestHead) -> Binding {
        let ua = head
            .headers
            .get(http::header::USER_AGENT)
            .map(|v| v.as_bytes())
            .unwrap_or(b"");
        Binding::new(ctx.client_ip, ua)
    }

    /// Issues a challenge: the HTML page (proof-of-work solver with a
    /// `<noscript>` CAPTCHA) for browsers navigating with GET, the API
    /// challenge otherwise, as a 403 denial carrying that page and the
    /// `X-Rampart-*` challenge headers.
    pub fn challenge(
        &self,
        ctx: &RequestCtx,
        head: &RequestHead,
        difficulty: u8,
        reason: &'static str,
    ) -> Denial {
        let binding = Self::binding(ctx, head);
        let puzzle = self.pow.issue(binding, difficulty);
        let browser =
            head.method == http::Method::GET && rampart_core::respond::prefers_html(&head.headers);
        let page = if browser {
            let image = self.captcha.issue(CaptchaKind::Image, binding);
            let text = self.captcha.issue(CaptchaKind::Text, binding);
            match (image, text) {
                (Ok(i), Ok(t)) => {
                    let ret = head.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                    pages::challenge_page(&puzzle, &i, &t, &self.endpoints, ret)
                }
                _ => pages::api_challenge(&puzzle, &self.endpoints),
            }
        } else {
            pages::api_challenge(&puzzle, &self.endpoints)
        };
        page.into_denial(reason, "a proof-of-work challenge is required")
    }

    /// Whether the request carries a valid clearance.
    pub fn is_cleared(&self, ctx: &RequestCtx, head: &RequestHead) -> bool {
        self.clearances
            .request_is_cleared(&head.headers, Self::binding(ctx, head))
    }

    /// A fresh clearance as (`Set-Cookie` value, `X-Rampart-Clearance`
    /// value, token, expiry).
    pub fn grant(&self, ctx: &RequestCtx, binding: Binding) -> Grant {
        let token = self.clearances.issue(binding);
        let expires_at = crate::crypto::unix_now() + self.clearances.ttl_secs();
        Grant {
            set_cookie: self.clearances.set_cookie(&token, ctx.tls),
            header: HeaderValue::from_str(&token).unwrap_or(HeaderValue::from_static("")),
            token,
            expires_at,
        }
    }
}

/// A granted clearance, ready to attach to a response.
#[derive(Clone)]
pub struct Grant {
    pub set_cookie: HeaderValue,
    pub header: HeaderValue,
    pub token: String,
    pub expires_at: u64,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// Adds `Set-Cookie` and `X-Rampart-Clearance` to a header map.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.append(http::header::SET_COOKIE, self.set_cookie.clone());
        headers.insert(HEADER_NAME, self.header.clone());
    }

    /// `Set-Cookie` and `X-Rampart-Clearance` as pairs (for a page).
    pub fn header_pairs(&self) -> Vec<(HeaderName, HeaderValue)> {
        vec![
            (http::header::SET_COOKIE, self.set_cookie.clone()),
            (HeaderName::from_static(HEADER_NAME), self.header.clone()),
        ]
    }
}

/// Whether an authenticated identity lets the request skip challenges.
pub fn is_trusted(ctx: &RequestCtx, skip_for: &[AuthMethod]) -> bool {
    ctx.identity
        .as_ref()
        .is_some_and(|id| skip_for.contains(&id.method))
}
