//! `BotFilter`: bot score → allow / challenge / block, plus the challenge
//! endpoints (proof-of-work verify, CAPTCHA form POST) and clearance.
//!
//! Per request, in `request_headers`:
//! 1. the verify path answers a proof-of-work solution sent in
//!    `X-Rampart-Puzzle` / `X-Rampart-Solution` (200 + clearance cookie, or
//!    403); the CAPTCHA path takes a form POST whose token is in the URL
//!    (`?t=`, used up here) and whose answer is checked in `request_body`;
//!    neither ever reaches the upstream. These two, and requests carrying
//!    an inline solution, return a pending verdict: they await the
//!    used-token store (possibly Redis). Every other request is decided at
//!    once from local state;
//! 2. trusted API identities (by option) skip challenges;
//! 3. the request is scored; a valid clearance, or a valid inline solution
//!    on the request itself (SDK retry), turns a challenge into a pass —
//!    blocks still apply;
//! 4. allow (with the score as risk points), challenge or block.
//!
//! Every page the filter serves (challenge page, API challenge, verify
//! answers, CAPTCHA redirect and retry page) is a `Decision::Deny` whose
//! denial carries the page as its body (`Denial::with_body`).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use rampart_core::{
    AuthMethod, BodyInterest, Decision, Filter, Mode, RequestCtx, RequestHead, ResponseHead,
    Verdict,
};
use zeroize::Zeroizing;

use crate::captcha::CaptchaKind;
use crate::kit::{is_trusted, ChallengeKit, Grant, IpReputation, Ja4};
use crate::pages::{self, PUZZLE_HEADER, SOLUTION_HEADER};
use crate::score::{Action, BotScore, Policy, ScoreInput, Scorer};

/// BotFilter settings.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// Enforce or only record (default enforce).
    pub mode: Mode,
    /// Score bands and difficulty.
    pub policy: Policy,
    /// Authenticated clients that never get challenges (default: API key
    /// and mTLS clients). Blocks still apply to them.
    pub skip_challenge_for: Vec<AuthMethod>,
    /// Largest CAPTCHA form body read (default 4096). This is also the
    /// filter's request-body hold, so keep it small.
    pub max_form_bytes: u64,
}

impl Default for BotOptions {
    fn default() -> Self {
        BotOptions {
            mode: Mode::Enforce,
            policy: Policy::default(),
            skip_challenge_for: vec![AuthMethod::ApiKey, AuthMethod::Mtls],
            max_form_bytes: 4096,
        }
    }
}

/// What the filter concluded, kept in `ctx.extensions` for logs.
#[derive(Debug, Clone)]
pub struct BotVerdict {
    pub score: BotScore,
    pub action: Action,
    pub cleared: bool,
}

/// A CAPTCHA POST whose token was redeemed, waiting for its body.
#[derive(Clone)]
struct CaptchaPost {
    body: Zeroizing<Vec<u8>>,
    token: String,
    /// The User-Agent of the POST, for the binding of the clearance.
    ua: Vec<u8>,
}

#[derive(Clone)]
struct PendingGrant(Grant);

/// The bot-defence filter.
pub struct BotFilter {
    scorer: Scorer,
    kit: Arc<ChallengeKit>,
    options: BotOptions,
}

impl std::fmt::Debug for BotFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotFilter")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl BotFilter {
    pub fn new(scorer: Scorer, kit: Arc<ChallengeKit>, options: BotOptions) -> Self {
        BotFilter {
            scorer,
            kit,
            options,
        }
    }

    /// Scores the request and decides; `inline_ok`: the request carried a
    /// valid inline solution (already redeemed).
    fn decide(&self, ctx: &mut RequestCtx, head: &RequestHead, inline_ok: bool) -> Decision {
        let trusted = is_trusted(ctx, &self.options.skip_challenge_for);
        let binding = ChallengeKit::binding(ctx, head);
        let cleared = trusted
            || inline_ok
            || self
                .kit
                .clearances
                .request_is_cleared(&head.headers, binding);
        let score = self.scorer.score(&ScoreInput {
            client_ip: ctx.client_ip,
            version: head.version,
            headers: &head.headers,
            // The gateway's handshake fingerprint; an extension can stand in
            // for it (tests, or a fingerprint taken by a TLS terminator).
            ja4: ctx
                .peer_tls
                .as_ref()
                .and_then(|t| t.ja4.as_deref())
                .or_else(|| ctx.extensions.get::<Ja4>().map(|j| &*j.0)),
            ip_reputation: ctx.extensions.get::<IpReputation>().map(|r| r.0),
        });
        let action = self.options.policy.action(score.score);
        let points = score.score as u32;
        ctx.extensions.insert(BotVerdict {
            score,
            action,
            cleared,
        });
        match action {
            Action::Block => Decision::deny(
                StatusCode::FORBIDDEN,
                "bot_blocked",
                "automated traffic is not allowed",
            ),
            Action::Challenge { difficulty } if !cleared => {
                Decision::Deny(self.kit.challenge(ctx, head, difficulty, "bot_challenge"))
            }
            _ if points > 0 => Decision::Risk {
                points,
                reason: "bot_score",
            },
            _ => Decision::Continue,
        }
    }

    /// An SDK retrying with the solution on the original request: verify
    /// and redeem it, and remember to hand out a clearance on the response.
    async fn inline_solution(&self, ctx: &mut RequestCtx, head: &RequestHead) -> bool {
        let (Some(token), Some(solution)) = (
            header_str(head, PUZZLE_HEADER),
            header_str(head, SOLUTION_HEADER),
        ) else {
            return false;
        };
        let binding = ChallengeKit::binding(ctx, head);
        match self.kit.pow.verify(token, solution, binding).await {
            Ok(()) => {
                let grant = self.kit.grant(ctx, binding);
                ctx.extensions.insert(PendingGrant(grant));
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "inline proof-of-work refused");
                false
            }
        }
    }

    async fn handle_verify(&self, ctx: &mut RequestCtx, head: &RequestHead) -> Decision {
        if head.method != Method::POST {
            return Decision::deny(
                StatusCode::METHOD_NOT_ALLOWED,
                "bot_verify_method",
                "use POST",
            );
        }
        let (Some(token), Some(solution)) = (
            header_str(head, PUZZLE_HEADER),
            header_str(head, SOLUTION_HEADER),
        ) else {
            return Decision::deny(
                StatusCode::BAD_REQUEST,
                "bot_challenge_failed",
                "puzzle and solution headers are required",
            );
        };
        let binding = ChallengeKit::binding(ctx, head);
        if let Err(e) = self.kit.pow.verify(token, solution, binding).await {
            tracing::debug!(error = %e, "proof-of-work refused");
            return Decision::deny(
                StatusCode::FORBIDDEN,
                "bot_challenge_failed",
                "the challenge solution was not accepted",
            );
        }
        let grant = self.kit.grant(ctx, binding);
        let page = pages::verified(grant.header_pairs(), &grant.token, grant.expires_at);
        Decision::Deny(page.into_denial(PASSED, "challenge passed"))
    }

    /// The CAPTCHA form POST, before its body: the token travels in the
    /// form's action URL (`?t=`), so it is checked and *used up* here,
    /// where the replay store can be awaited; the body hook then only
    /// checks the answer. One answer per CAPTCHA: a wrong one gets a fresh
    /// CAPTCHA.
    async fn start_captcha_post(&self, ctx: &mut RequestCtx, head: &RequestHead) -> Decision {
        if head.method != Method::POST {
            return Decision::deny(
                StatusCode::METHOD_NOT_ALLOWED,
                "bot_verify_method",
                "use POST",
            );
        }
        if !ctx.has_request_body {
            return Decision::deny(
                StatusCode::BAD_REQUEST,
                "bot_captcha_failed",
                "the form is empty",
            );
        }
        let binding = ChallengeKit::binding(ctx, head);
        let token = query_param(head, "t").unwrap_or("");
        let now = crate::crypto::unix_now();
        let checked = match self.kit.captcha.check_token(token, binding, now) {
            Ok(redemption) => redemption
                .redeem(self.kit.captcha.replay_store(), now)
                .await
                .map_err(Into::into),
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            tracing::debug!(error = %e, "CAPTCHA token refused");
            return Decision::Deny(self.captcha_retry(binding, "/"));
        }
        let ua = head
            .headers
            .get(http::header::USER_AGENT)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        ctx.extensions.insert(CaptchaPost {
            body: Zeroizing::new(Vec::new()),
            token: token.to_string(),
            ua,
        });
        Decision::Continue
    }

    fn finish_captcha_post(&self, ctx: &mut RequestCtx, post: CaptchaPost) -> Decision {
        let form = parse_form(&post.body);
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let answer = field("answer").unwrap_or("");
        let return_to = pages::safe_return_path(field("return_to").unwrap_or("/")).to_string();
        let binding = crate::binding::Binding::new(ctx.client_ip, &post.ua);
        match self.kit.captcha.check_answer(&post.token, answer) {
            Ok(()) => {
                let grant = self.kit.grant(ctx, binding);
                let mut page = pages::captcha_passed(grant.set_cookie.clone(), &return_to);
                page.headers
                    .push((CLEARANCE_HEADER.clone(), grant.header.clone()));
                Decision::Deny(page.into_denial(PASSED, "challenge passed"))
            }
            Err(e) => {
                tracing::debug!(error = %e, "CAPTCHA answer refused");
                Decision::Deny(self.captcha_retry(binding, &return_to))
            }
        }
    }

    /// `request_headers` for requests that need the replay store: the
    /// verify endpoint, the CAPTCHA POST and inline solutions.
    async fn decide_with_store(&self, ctx: &mut RequestCtx, head: &mut RequestHead) -> Decision {
        let path = head.uri.path();
        let decision = if path == self.kit.endpoints.verify_path {
            self.handle_verify(ctx, head).await
        } else if path == self.kit.endpoints.captcha_path {
            self.start_captcha_post(ctx, head).await
        } else {
            let inline_ok = self.inline_solution(ctx, head).await;
            self.decide(ctx, head, inline_ok)
        };
        strip_solution_headers(head);
        decision
    }

    fn needs_store(&self, head: &RequestHead) -> bool {
        let path = head.uri.path();
        path == self.kit.endpoints.verify_path
            || path == self.kit.endpoints.captcha_path
            || (head.headers.contains_key(PUZZLE_HEADER)
                && head.headers.contains_key(SOLUTION_HEADER))
    }

    /// The refusal of a wrong CAPTCHA answer: a fresh CAPTCHA page with a
    /// message (or the plain denial if no CAPTCHA can be drawn).
    fn captcha_retry(&self, binding: crate::Binding, ret: &str) -> rampart_core::Denial {
        const REASON: &str = "bot_captcha_failed";
        const DETAIL: &str = "the answer was not accepted";
        let image = self.kit.captcha.issue(CaptchaKind::Image, binding);
        let text = self.kit.captcha.issue(CaptchaKind::Text, binding);
        match (image, text) {
            (Ok(i), Ok(t)) => pages::captcha_page(
                &i,
                &t,
                &self.kit.endpoints,
                ret,
                Some("That answer was not right. Please try again."),
            )
            .into_denial(REASON, DETAIL),
            _ => rampart_core::Denial::new(StatusCode::FORBIDDEN, REASON, DETAIL),
        }
    }
}

/// Reason code of the answers of the challenge endpoints after a pass: the
/// request must not go upstream, and the client gets its clearance.
const PASSED: &str = "bot_challenge_passed";

const CLEARANCE_HEADER: http::HeaderName =
    http::HeaderName::from_static(crate::clearance::HEADER_NAME);

impl Filter for BotFilter {
    fn name(&self) -> &'static str {
        "bot"
    }

    fn mode(&self) -> Mode {
        self.options.mode
    }

    fn body_interest(&self) -> BodyInterest {
        BodyInterest {
            request: true,
            hold_request: self.options.max_form_bytes,
            ..BodyInterest::default()
        }
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        if self.needs_store(head) {
            return Verdict::Pending(Box::pin(self.decide_with_store(ctx, head)));
        }
        let decision = self.decide(ctx, head, false);
        strip_solution_headers(head);
        Verdict::Ready(decision)
    }

    fn request_body(&self, ctx: &mut RequestCtx, chunk: &Bytes, end: bool) -> Decision {
        let Some(post) = ctx.extensions.get_mut::<CaptchaPost>() else {
            return Decision::Continue;
        };
        let room = (self.options.max_form_bytes as usize).saturating_sub(post.body.len());
        post.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let full = chunk.len() > room;
        if !end && !full {
            return Decision::Continue;
        }
        match ctx.extensions.remove::<CaptchaPost>() {
            Some(post) => self.finish_captcha_post(ctx, post),
            None => Decision::Continue,
        }
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        if let Some(PendingGrant(grant)) = ctx.extensions.remove::<PendingGrant>() {
            grant.apply(&mut head.headers);
        }
        Decision::Continue
    }

    fn log(&self, ctx: &RequestCtx) {
        if let Some(v) = ctx.extensions.get::<BotVerdict>() {
            if v.score.score > 0 {
                let reasons: Vec<&str> = v.score.signals.iter().map(|s| s.reason).collect();
                tracing::info!(
                    target: "rampart_bot",
                    request_id = %ctx.request_id,
                    score = v.score.score,
                    action = ?v.action,
                    cleared = v.cleared,
                    signals = ?reasons,
                    "bot score"
                );
            }
        }
    }
}

/// The inline solution headers are for rampart, not the upstream.
fn strip_solution_headers(head: &mut RequestHead) {
    head.headers.remove(PUZZLE_HEADER);
    head.headers.remove(SOLUTION_HEADER);
}

/// The raw value of query parameter `name` (tokens are URL-safe as is).
fn query_param<'h>(head: &'h RequestHead, name: &str) -> Option<&'h str> {
    head.uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v)
    })
}

fn header_str<'h>(head: &'h RequestHead, name: &str) -> Option<&'h str> {
    head.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `application/x-www-form-urlencoded` pairs (bounded: at most 16 fields).
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .take(16)
        .filter_map(|pair| {
            let mut kv = pair.splitn(2, |&b| b == b'=');
            let k = decode(kv.next()?);
            let v = decode(kv.next().unwrap_or(b""));
            Some((k, v))
        })
        .collect()
}

fn decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => {
                let hex = std::str::from_utf8(&input[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
