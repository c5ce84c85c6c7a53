//! The `bot` and `login_guard` sections of a route → their filters.
//!
//! Both filters come from `rampart-bot`; this module maps the config onto
//! the library's options and adds what only the gateway knows:
//!
//! * the process-wide keys and stores ([`Services::bot_state`]), so a
//!   clearance earned on one route (or node) counts on every other;
//! * the client's threat score from the reputation tracker, fed to the bot
//!   score as [`IpReputation`] (the JA4 fingerprint arrives in the context
//!   from the TLS layer and the library reads it itself);
//! * skipping challenges for trusted consumers and scopes (the library
//!   trusts by authentication method only);
//! * proof-of-work answers on the login request itself, so a client the
//!   login guard challenges can retry the login with the solution even
//!   when the route serves no challenge endpoints.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method};
use rampart_bot::login::{
    BreachedAction, BreachedPasswords, BreachedSource, CredentialSource, DelayPolicy, GuardOptions,
    LoginGuard, LoginGuardFilter, LoginOptions, LoginOutcome, Thresholds,
};
use rampart_bot::pages::{Endpoints, PUZZLE_HEADER, SOLUTION_HEADER};
use rampart_bot::score::{GoodBotRule, Policy, Scorer, ScorerOptions, Weights};
use rampart_bot::ua::UaClassifier;
use rampart_bot::{BotFilter, BotOptions, BotVerdict, ChallengeKit, IpReputation};
use rampart_config::bot::{
    AuthKind, BotWeights, BreachedActionConfig, BreachedLayout, BreachedPolicy, CredentialLocation,
    LoginGuardPolicy,
};
use rampart_config::{BotPolicy, Cluster, Route};
use rampart_core::{
    AuthMethod, BodyInterest, Decision, Filter, Mode, RequestCtx, RequestHead, ResponseHead,
    Verdict,
};
use rampart_reputation::ThreatTracker;

use super::BuildError;
use crate::services::{BotState, Services};

/// The reason code of the library's bot challenge.
const BOT_CHALLENGE: &str = "bot_challenge";

/// The `bot` section of `route` → the bot filter.
pub fn bot_filter(
    p: &BotPolicy,
    route: &Route,
    cluster: &Cluster,
    services: &Services,
) -> Result<BotGate, BuildError> {
    let state = services
        .bot_state(cluster)
        .map_err(|e| (".bot".to_string(), e))?;
    let kit = challenge_kit(&state, p, route);
    let scorer = Scorer::new(scorer_options(p), UaClassifier::builtin());
    let options = BotOptions {
        mode: rampart_guard::mode(p.mode),
        policy: Policy {
            challenge_at: p.challenge_at,
            block_at: p.block_at,
            min_difficulty: p.min_difficulty,
            max_difficulty: p.max_difficulty,
        },
        skip_challenge_for: auth_methods(&p.skip_challenge_for),
        max_form_bytes: p.max_form_bytes.0,
    };
    Ok(BotGate {
        inner: BotFilter::new(scorer, kit, options),
        trusted: Trusted {
            consumers: p.skip_consumers.clone(),
            scopes: p.skip_scopes.clone(),
        },
        tracker: services.tracker.clone().filter(|_| p.threat_score),
    })
}

/// The challenge kit of a route: the shared keys and used-token set, this
/// route's lifetimes and endpoints.
fn challenge_kit(state: &BotState, p: &BotPolicy, route: &Route) -> Arc<ChallengeKit> {
    let base = p.challenge_base(route);
    kit_with(
        state,
        Endpoints {
            verify_path: format!("{base}/verify"),
            captcha_path: format!("{base}/captcha"),
        },
        [p.puzzle_ttl.0, p.captcha_ttl.0, p.clearance_ttl.0],
    )
}

/// `ttls`: puzzle, CAPTCHA and clearance lifetimes.
fn kit_with(state: &BotState, endpoints: Endpoints, ttls: [Duration; 3]) -> Arc<ChallengeKit> {
    let [puzzle, captcha, clearance] = ttls.map(|d| d.as_secs().max(1));
    Arc::new(ChallengeKit {
        pow: rampart_bot::pow::PowChallenger::new(state.keys.clone(), state.replay.clone(), puzzle),
        captcha: rampart_bot::captcha::CaptchaChallenger::new(
            state.keys.clone(),
            state.replay.clone(),
            captcha,
        ),
        clearances: rampart_bot::clearance::Clearances::new(state.keys.clone(), clearance),
        endpoints,
    })
}

fn scorer_options(p: &BotPolicy) -> ScorerOptions {
    ScorerOptions {
        weights: weights(&p.weights),
        ja4_deny_list: p.ja4_deny.clone(),
        good_bots: p
            .good_bots
            .iter()
            .map(|b| GoodBotRule {
                name: b.name.clone(),
                user_agent: b.user_agent.clone(),
                networks: b.networks.clone(),
            })
            .collect(),
        ..ScorerOptions::default()
    }
}

fn weights(w: &BotWeights) -> Weights {
    let d = Weights::default();
    Weights {
        scanner: w.scanner.unwrap_or(d.scanner),
        headless: w.headless.unwrap_or(d.headless),
        automation: w.automation.unwrap_or(d.automation),
        empty_user_agent: w.empty_user_agent.unwrap_or(d.empty_user_agent),
        unverified_good_bot: w.unverified_good_bot.unwrap_or(d.unverified_good_bot),
        header_anomaly: w.header_anomaly.unwrap_or(d.header_anomaly),
        regular_cadence: w.regular_cadence.unwrap_or(d.regular_cadence),
        burst: w.burst.unwrap_or(d.burst),
        ja4_listed: w.ja4_listed.unwrap_or(d.ja4_listed),
        ip_reputation_max: w.ip_reputation_max.unwrap_or(d.ip_reputation_max),
    }
}

fn auth_methods(kinds: &[AuthKind]) -> Vec<AuthMethod> {
    kinds
        .iter()
        .map(|k| match k {
            AuthKind::ApiKey => AuthMethod::ApiKey,
            AuthKind::Jwt => AuthMethod::Jwt,
            AuthKind::Mtls => AuthMethod::Mtls,
        })
        .collect()
}

/// Consumers and scopes whose clients are never challenged.
#[derive(Debug, Default)]
struct Trusted {
    consumers: Vec<String>,
    scopes: Vec<String>,
}

impl Trusted {
    fn covers(&self, ctx: &RequestCtx) -> bool {
        ctx.identity.as_ref().is_some_and(|id| {
            self.consumers.iter().any(|c| **c == *id.consumer_id)
                || self.scopes.iter().any(|s| id.has_scope(s))
        })
    }
}

/// The bot filter with the gateway's inputs: threat score, trusted
/// consumers and scopes.
pub struct BotGate {
    inner: BotFilter,
    trusted: Trusted,
    tracker: Option<Arc<ThreatTracker>>,
}

impl BotGate {
    /// A challenge for a trusted consumer becomes a pass; blocks stay.
    fn relax(decision: Decision, trusted: bool) -> Decision {
        match decision {
            Decision::Deny(d) if trusted && d.reason == BOT_CHALLENGE => Decision::Continue,
            other => other,
        }
    }
}

/// The tracker's decayed threat score as 0–100 of the ban threshold.
fn reputation_of(score: f64, threshold: f64) -> u8 {
    if !(score > 0.0 && threshold > 0.0) {
        return 0;
    }
    (score / threshold * 100.0).min(100.0) as u8
}

impl Filter for BotGate {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn mode(&self) -> Mode {
        self.inner.mode()
    }

    fn body_interest(&self) -> BodyInterest {
        self.inner.body_interest()
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        let trusted = self.trusted.covers(ctx);
        let tracker = match &self.tracker {
            Some(t) if ctx.extensions.get::<IpReputation>().is_none() => t,
            _ => {
                return match self.inner.request_headers(ctx, head) {
                    Verdict::Ready(d) => Verdict::Ready(Self::relax(d, trusted)),
                    Verdict::Pending(f) => {
                        Verdict::Pending(Box::pin(async move { Self::relax(f.await, trusted) }))
                    }
                }
            }
        };
        Verdict::Pending(Box::pin(async move {
            // A store failure only means no reputation input.
            if let Ok(score) = tracker.score(ctx.client_ip.to_canonical()).await {
                let rep = reputation_of(score, tracker.config().threshold);
                if rep > 0 {
                    ctx.extensions.insert(IpReputation(rep));
                }
            }
            let d = self.inner.request_headers(ctx, head).resolve().await;
            Self::relax(d, trusted)
        }))
    }

    fn request_body(&self, ctx: &mut RequestCtx, chunk: &bytes::Bytes, end: bool) -> Decision {
        self.inner.request_body(ctx, chunk, end)
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        self.inner.response_headers(ctx, head)
    }

    fn response_body(&self, ctx: &mut RequestCtx, chunk: &mut bytes::Bytes, end: bool) -> Decision {
        self.inner.response_body(ctx, chunk, end)
    }

    fn log(&self, ctx: &RequestCtx) {
        self.inner.log(ctx)
    }
}

/// The `login_guard` section of `route` → the login guard filter. With a
/// `bot` section on the route the guard shares its challenge settings.
pub fn login_filter(
    p: &LoginGuardPolicy,
    route: &Route,
    cluster: &Cluster,
    services: &Services,
) -> Result<LoginGate, BuildError> {
    let key = |k: &str| format!(".login_guard{k}");
    let state = services.bot_state(cluster).map_err(|e| (key(""), e))?;
    let kit = match &route.bot {
        Some(b) => challenge_kit(&state, b, route),
        None => kit_with(
            &state,
            Endpoints::default(),
            [120, 300, 3600].map(Duration::from_secs),
        ),
    };
    let path = p
        .login_path(route)
        .ok_or_else(|| (key(".path"), "expected the login path".to_string()))?;
    let method = Method::from_bytes(p.method.as_bytes())
        .map_err(|_| (key(".method"), "expected an HTTP method".to_string()))?;
    let breached = p
        .breached
        .as_ref()
        .map(breached)
        .transpose()
        .map_err(|m| (key(".breached.path"), m))?;
    let guard = LoginGuard::new(
        guard_options(p, breached),
        state.counters.clone(),
        state.username_secret.expose(),
    );
    let mut options = LoginOptions::new(&path, credentials(p));
    options.method = method.clone();
    options.outcome = outcome(p);
    options.max_body_bytes = p.max_body_bytes.0;
    options.mode = rampart_guard::mode(p.mode);
    options.skip_for = auth_methods(&p.skip_for);
    Ok(LoginGate {
        inner: LoginGuardFilter::new(Arc::new(guard), options).with_challenges(kit.clone()),
        kit,
        method,
        path,
    })
}

fn credentials(p: &LoginGuardPolicy) -> CredentialSource {
    let (username, password) = (p.username_field.clone(), p.password_field.clone());
    match p.credentials {
        CredentialLocation::Json => CredentialSource::Json { username, password },
        CredentialLocation::Form => CredentialSource::Form { username, password },
        CredentialLocation::Basic => CredentialSource::BasicAuth,
    }
}

fn outcome(p: &LoginGuardPolicy) -> LoginOutcome {
    match (&p.success_field, &p.success_value) {
        (Some(field), Some(value)) => LoginOutcome::JsonField {
            field: field.clone(),
            success_value: serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
            max_bytes: p.max_response_bytes.0,
        },
        _ => LoginOutcome::Status {
            success: p.success_status.clone(),
            failure: p.failure_status.clone(),
        },
    }
}

fn guard_options(
    p: &LoginGuardPolicy,
    breached: Option<(BreachedPasswords, BreachedAction)>,
) -> GuardOptions {
    let t = &p.thresholds;
    GuardOptions {
        window_secs: p.window.0.as_secs().max(1),
        username_window_secs: p.username_window.0.as_secs().max(1),
        thresholds: Thresholds {
            ip_distinct_users_challenge: t.ip_distinct_users_challenge,
            ip_distinct_users_block: t.ip_distinct_users_block,
            ip_failures_block: t.ip_failures_block,
            low_success_min_attempts: t.low_success_min_attempts,
            low_success_ratio: t.low_success_ratio,
            subnet_failures_challenge: t.subnet_failures_challenge,
            username_failures_protect: t.username_failures_protect,
            username_distinct_ips_protect: t.username_distinct_ips_protect,
            global_spike_factor: t.global_spike_factor,
            global_spike_min_per_minute: t.global_spike_min_per_minute,
        },
        delay: DelayPolicy {
            after_failures: p.delay.after_failures,
            base: p.delay.base.0,
            max: p.delay.max.0,
        },
        block_secs: p.block_for.0.as_secs().max(1),
        protect_secs: p.protect_for.0.as_secs().max(1),
        breached_min_count: p.breached.as_ref().map_or(1, |b| b.min_count),
        breached,
        ..GuardOptions::default()
    }
}

/// The breached-password dataset, checked to exist now rather than on the
/// first login.
fn breached(b: &BreachedPolicy) -> Result<(BreachedPasswords, BreachedAction), String> {
    let meta =
        std::fs::metadata(&b.path).map_err(|e| format!("cannot read {}: {e}", b.path.display()))?;
    let source = match b.layout {
        BreachedLayout::RangeDirectory => BreachedSource::RangeDirectory(b.path.clone()),
        BreachedLayout::SortedFile => BreachedSource::SortedFile(b.path.clone()),
        BreachedLayout::Auto if meta.is_dir() => BreachedSource::RangeDirectory(b.path.clone()),
        BreachedLayout::Auto => BreachedSource::SortedFile(b.path.clone()),
    };
    let wants_dir = matches!(source, BreachedSource::RangeDirectory(_));
    if wants_dir != meta.is_dir() {
        let what = if wants_dir { "a folder" } else { "a file" };
        return Err(format!(
            "expected {what} for this layout: {}",
            b.path.display()
        ));
    }
    let action = match b.action {
        BreachedActionConfig::Flag => BreachedAction::Flag,
        BreachedActionConfig::Challenge => BreachedAction::Challenge,
        BreachedActionConfig::Block => BreachedAction::Block,
    };
    Ok((BreachedPasswords::new(source), action))
}

/// A clearance granted on the login request from an inline solution,
/// attached to the response.
#[derive(Clone)]
struct LoginGrant(rampart_bot::kit::Grant);

const CLEARANCE_HEADER: HeaderName = HeaderName::from_static(rampart_bot::clearance::HEADER_NAME);

/// The login guard, accepting proof-of-work solutions on the login
/// request itself.
pub struct LoginGate {
    inner: LoginGuardFilter,
    kit: Arc<ChallengeKit>,
    method: Method,
    path: String,
}

impl LoginGate {
    fn is_login(&self, head: &RequestHead) -> bool {
        head.method == self.method && head.uri.path() == self.path
    }

    /// Verifies an inline solution; on success the request carries a fresh
    /// clearance for the guard and the response will hand it out.
    async fn redeem_inline(&self, ctx: &mut RequestCtx, head: &mut RequestHead) -> bool {
        let text = |n: &str| head.headers.get(n).and_then(|v| v.to_str().ok());
        let (Some(token), Some(solution)) = (text(PUZZLE_HEADER), text(SOLUTION_HEADER)) else {
            return false;
        };
        let binding = ChallengeKit::binding(ctx, head);
        let verified = self.kit.pow.verify(token, solution, binding).await;
        head.headers.remove(PUZZLE_HEADER);
        head.headers.remove(SOLUTION_HEADER);
        if let Err(e) = verified {
            tracing::debug!(error = %e, "login proof-of-work refused");
            return false;
        }
        let grant = self.kit.grant(ctx, binding);
        head.headers.insert(CLEARANCE_HEADER, grant.header.clone());
        ctx.extensions.insert(LoginGrant(grant));
        true
    }

    /// The bot filter passed this client (inline solution, clearance or
    /// trust) but the guard cannot see it in the request: say so with a
    /// clearance header for the guard alone.
    fn carry_bot_pass(&self, ctx: &RequestCtx, head: &mut RequestHead) -> bool {
        let passed = ctx
            .extensions
            .get::<BotVerdict>()
            .is_some_and(|v| v.cleared);
        if !passed || self.kit.is_cleared(ctx, head) {
            return false;
        }
        let grant = self.kit.grant(ctx, ChallengeKit::binding(ctx, head));
        head.headers.insert(CLEARANCE_HEADER, grant.header);
        true
    }
}

impl Filter for LoginGate {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn mode(&self) -> Mode {
        self.inner.mode()
    }

    fn body_interest(&self) -> BodyInterest {
        self.inner.body_interest()
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        if !self.is_login(head) {
            return Verdict::Ready(Decision::Continue);
        }
        let inline = head.headers.contains_key(PUZZLE_HEADER);
        if !inline && !self.carry_bot_pass(ctx, head) {
            return self.inner.request_headers(ctx, head);
        }
        Verdict::Pending(Box::pin(async move {
            if inline {
                self.redeem_inline(ctx, head).await;
            }
            let d = self.inner.request_headers(ctx, head).resolve().await;
            // The clearance was for the guard; the upstream has no use for it.
            head.headers.remove(CLEARANCE_HEADER);
            d
        }))
    }

    fn request_body(&self, ctx: &mut RequestCtx, chunk: &bytes::Bytes, end: bool) -> Decision {
        self.inner.request_body(ctx, chunk, end)
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        if let Some(LoginGrant(grant)) = ctx.extensions.remove::<LoginGrant>() {
            grant.apply(&mut head.headers);
        }
        self.inner.response_headers(ctx, head)
    }

    fn response_body(&self, ctx: &mut RequestCtx, chunk: &mut bytes::Bytes, end: bool) -> Decision {
        self.inner.response_body(ctx, chunk, end)
    }

    fn log(&self, ctx: &RequestCtx) {
        self.inner.log(ctx)
    }
}
