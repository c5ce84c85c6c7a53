//! MFA step-up: on routes marked sensitive, a consumer that has TOTP
//! enrolled must also present a one-time code, which the gateway verifies
//! (replay-protected, through a [`StepUpVerifier`] such as
//! [`rampart_store::ConsumerTotpService`]).
//!
//! The code comes in a header (default `X-Rampart-OTP`) or, for browsers,
//! from a small challenge page whose form sends it back as the query field
//! `rampart_otp` of the same URL. The filter removes both before anything
//! else sees the request: the form submission is answered with a `303`
//! redirect to the URL without the field, and the gateway's access log
//! records paths only. Codes are never logged.
//!
//! A verified code earns a short-lived grant cookie, `HMAC-SHA256` signed
//! and bound to the consumer id, so a browser is not asked on every request.
//! The grant cookie is removed from the request before it goes upstream.
//!
//! Reason codes: `step_up_required` (401, no code), `step_up_invalid` (401),
//! `step_up_replayed` (401), `step_up_locked` (429, too many wrong codes),
//! `step_up_not_enrolled` (403, only with [`NotEnrolled::Deny`]),
//! `step_up_unauthenticated` (401, only with `require_identity`),
//! `step_up_unavailable` (503, the store failed: fail closed) and
//! `step_up_verified` (the 303 answering a successful form submission).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use rampart_core::respond::escape_html;
use rampart_core::{
    Decision, Denial, Filter, Mode, Reason, RequestCtx, RequestHead, ResponseHead, Verdict,
};
use rampart_store::secret::Digest;
use rampart_store::{Clock, ServerSecret, StepUpOutcome, StoreError, SystemClock};

pub const STEP_UP_REQUIRED: Reason = "step_up_required";
pub const STEP_UP_INVALID: Reason = "step_up_invalid";
pub const STEP_UP_REPLAYED: Reason = "step_up_replayed";
pub const STEP_UP_LOCKED: Reason = "step_up_locked";
pub const STEP_UP_NOT_ENROLLED: Reason = "step_up_not_enrolled";
pub const STEP_UP_UNAUTHENTICATED: Reason = "step_up_unauthenticated";
pub const STEP_UP_UNAVAILABLE: Reason = "step_up_unavailable";
pub const STEP_UP_VERIFIED: Reason = "step_up_verified";

/// A boxed future answering a verifier call.
pub type VerifyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Checks step-up codes for a consumer. The gateway plugs in
/// [`rampart_store::ConsumerTotpService`]; tests plug in fakes.
pub trait StepUpVerifier: Send + Sync {
    /// Whether the consumer must present codes (TOTP confirmed).
    fn is_enrolled<'a>(&'a self, consumer_id: &'a str) -> VerifyFuture<'a, bool>;
    /// Checks `code` and spends it when right (replay protection).
    fn verify<'a>(&'a self, consumer_id: &'a str, code: &'a str)
        -> VerifyFuture<'a, StepUpOutcome>;
}

impl StepUpVerifier for rampart_store::ConsumerTotpService {
    fn is_enrolled<'a>(&'a self, consumer_id: &'a str) -> VerifyFuture<'a, bool> {
        Box::pin(rampart_store::ConsumerTotpService::is_enrolled(
            self,
            consumer_id,
        ))
    }

    fn verify<'a>(
        &'a self,
        consumer_id: &'a str,
        code: &'a str,
    ) -> VerifyFuture<'a, StepUpOutcome> {
        Box::pin(rampart_store::ConsumerTotpService::verify(
            self,
            consumer_id,
            code,
        ))
    }
}

/// What to do with a consumer that has no TOTP enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotEnrolled {
    /// Let it through (step-up applies only to enrolled consumers).
    #[default]
    Allow,
    /// Refuse with 403 `step_up_not_enrolled`.
    Deny,
}

/// Options of [`StepUpFilter`]. Build with [`StepUpOptions::new`] and adjust.
#[derive(Clone)]
pub struct StepUpOptions {
    /// Enforce (default) or only record what would have happened.
    pub mode: Mode,
    /// Checks codes; see [`StepUpVerifier`].
    pub verifier: Arc<dyn StepUpVerifier>,
    /// Signs grant cookies (domain-separated, so the server secret may be
    /// reused). Every gateway instance must use the same key.
    pub grant_key: ServerSecret,
    /// Header carrying the code. Default `x-rampart-otp`.
    pub header: HeaderName,
    /// Query field the challenge page's form submits. Default `rampart_otp`.
    pub form_field: String,
    /// Grant cookie name. Default `rampart_step_up`.
    pub cookie_name: String,
    /// How long a verified code exempts the consumer from further codes
    /// (the grant cookie's lifetime). Default 10 min; zero disables grants.
    pub grant_lifetime: Duration,
    /// Mark the grant cookie `Secure` (HTTPS only). Default true.
    pub cookie_secure: bool,
    /// Refuse requests without an authenticated consumer (401
    /// `step_up_unauthenticated`) instead of passing them. Default false:
    /// authentication is the auth filter's job.
    pub require_identity: bool,
    /// Consumers without TOTP: allow (default) or deny.
    pub not_enrolled: NotEnrolled,
    /// Offer browsers (GET/HEAD preferring HTML) a challenge page with a
    /// form. Default true.
    pub challenge_page: bool,
    /// Time source for grant expiry. Default the system clock.
    pub clock: Arc<dyn Clock>,
}

impl StepUpOptions {
    pub fn new(verifier: Arc<dyn StepUpVerifier>, grant_key: ServerSecret) -> StepUpOptions {
        StepUpOptions {
            mode: Mode::Enforce,
            verifier,
            grant_key,
            header: HeaderName::from_static("x-rampart-otp"),
            form_field: "rampart_otp".into(),
            cookie_name: "rampart_step_up".into(),
            grant_lifetime: Duration::from_secs(600),
            cookie_secure: true,
            require_identity: false,
            not_enrolled: NotEnrolled::Allow,
            challenge_page: true,
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for StepUpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepUpOptions")
            .field("mode", &self.mode)
            .field("header", &self.header)
            .field("cookie_name", &self.cookie_name)
            .field("grant_lifetime", &self.grant_lifetime)
            .field("not_enrolled", &self.not_enrolled)
            .finish_non_exhaustive()
    }
}

/// The step-up filter; put it after authentication on sensitive routes.
#[derive(Debug)]
pub struct StepUpFilter {
    o: StepUpOptions,
    /// `RampartOTP header="…"`, built once.
    challenge: HeaderValue,
}

/// Where the presented code came from (decides how to answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Header,
    Form,
}

/// A grant cookie to set on the upstream's response (header codes).
#[derive(Clone)]
struct GrantToSet(HeaderValue);

/// A request's step-up inputs, taken (and stripped) from the head.
struct Presented {
    code: Option<(String, Source)>,
    /// The request URL without the form field, for the redirect and the
    /// page (empty when neither can be needed).
    clean_target: String,
    grant: Option<String>,
    wants_page: bool,
}

impl StepUpFilter {
    pub fn new(options: StepUpOptions) -> StepUpFilter {
        let text = format!("RampartOTP header=\"{}\"", options.header.as_str());
        let challenge =
            HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static("RampartOTP"));
        StepUpFilter {
            o: options,
            challenge,
        }
    }

    /// `v1.<expiry>.<hex HMAC>` of the consumer id and expiry.
    fn grant_value(&self, consumer_id: &str, expiry: u64) -> String {
        format!(
            "v1.{expiry}.{}",
            self.grant_mac(consumer_id, expiry).to_hex()
        )
    }

    fn grant_mac(&self, consumer_id: &str, expiry: u64) -> Digest {
        let mut input = b"rampart/step-up-grant/v1\0".to_vec();
        input.extend_from_slice(consumer_id.as_bytes());
        input.push(0);
        input.extend_from_slice(expiry.to_string().as_bytes());
        self.o.grant_key.digest(&input)
    }

    fn grant_is_valid(&self, consumer_id: &str, value: &str) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some("v1"), Some(expiry), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(expiry), Some(mac)) = (expiry.parse::<u64>(), Digest::from_hex(mac)) else {
            return false;
        };
        let now = self.o.clock.now_secs();
        let lifetime = self.o.grant_lifetime.as_secs();
        // Expired, or further out than any grant this filter issues.
        if expiry <= now || expiry > now.saturating_add(lifetime) {
            return false;
        }
        self.grant_mac(consumer_id, expiry).ct_eq(&mac)
    }

    /// The `Set-Cookie` for a new grant; `None` when grants are disabled.
    fn grant_cookie(&self, consumer_id: &str) -> Option<HeaderValue> {
        let lifetime = self.o.grant_lifetime.as_secs();
        if lifetime == 0 {
            return None;
        }
        let expiry = self.o.clock.now_secs().saturating_add(lifetime);
        let secure = if self.o.cookie_secure { "; Secure" } else { "" };
        let text = format!(
            "{}={}; Path=/; Max-Age={lifetime}; HttpOnly; SameSite=Strict{secure}",
            self.o.cookie_name,
            self.grant_value(consumer_id, expiry)
        );
        HeaderValue::try_from(text).ok()
    }

    /// Takes the code, the grant cookie and the form field out of the
    /// request so the upstream never sees them.
    fn take_inputs(&self, head: &mut RequestHead) -> Presented {
        let header_code = head
            .headers
            .remove(&self.o.header)
            .and_then(|v| v.to_str().ok().map(|s| s.trim().to_string()));
        let grant = take_cookie(&mut head.headers, &self.o.cookie_name);
        let navigable = head.method == Method::GET || head.method == Method::HEAD;
        let wants_page = self.o.challenge_page
            && navigable
            && rampart_core::respond::prefers_html(&head.headers);
        // The clean URL is only needed for a form field or a page: skip the
        // allocation on ordinary API requests.
        let has_field = head
            .uri
            .query()
            .is_some_and(|q| q.contains(self.o.form_field.as_str()));
        let (form_code, clean_target) = match has_field || wants_page {
            true => take_query_field(&head.uri, &self.o.form_field),
            false => (None, String::new()),
        };
        if form_code.is_some() {
            if let Ok(uri) = clean_target.parse() {
                head.uri = uri;
            }
        }
        let code = match (header_code, form_code) {
            (Some(c), _) => Some((c, Source::Header)),
            (None, Some(c)) if navigable => Some((c, Source::Form)),
            _ => None,
        };
        Presented {
            code,
            clean_target,
            grant,
            wants_page,
        }
    }

    fn deny_not_enrolled(&self) -> Decision {
        Decision::deny(
            StatusCode::FORBIDDEN,
            STEP_UP_NOT_ENROLLED,
            "this route requires a second factor and none is enrolled for this consumer",
        )
    }

    /// 401 with the challenge header, and the page for browsers.
    fn ask(&self, p: &Presented, reason: Reason, detail: &'static str) -> Decision {
        let mut denial = Denial::new(StatusCode::UNAUTHORIZED, reason, detail)
            .with_header(WWW_AUTHENTICATE, self.challenge.clone());
        if p.wants_page {
            let page = challenge_page(&p.clean_target, &self.o.form_field, page_message(reason));
            denial = with_page_headers(denial).with_body(
                HeaderValue::from_static("text/html; charset=utf-8"),
                Bytes::from(page),
            );
        }
        Decision::Deny(denial)
    }

    async fn check_code(
        &self,
        consumer_id: &str,
        code: &str,
        source: Source,
        p: &Presented,
        ctx: &mut RequestCtx,
    ) -> Decision {
        if !well_formed(code) {
            return self.ask(p, STEP_UP_INVALID, "the one-time code is not valid");
        }
        let outcome = match self.o.verifier.verify(consumer_id, code).await {
            Ok(outcome) => outcome,
            Err(e) => return unavailable(&e),
        };
        match outcome {
            StepUpOutcome::Accepted => self.accepted(consumer_id, source, p, ctx),
            StepUpOutcome::Invalid => {
                self.ask(p, STEP_UP_INVALID, "the one-time code is not valid")
            }
            StepUpOutcome::Replayed => self.ask(
                p,
                STEP_UP_REPLAYED,
                "the one-time code was already used; wait for the next one",
            ),
            StepUpOutcome::Locked { retry_after_secs } => locked(retry_after_secs),
            StepUpOutcome::NotEnrolled => match self.o.not_enrolled {
                NotEnrolled::Allow => Decision::Continue,
                NotEnrolled::Deny => self.deny_not_enrolled(),
            },
        }
    }

    fn accepted(
        &self,
        consumer_id: &str,
        source: Source,
        p: &Presented,
        ctx: &mut RequestCtx,
    ) -> Decision {
        let cookie = self.grant_cookie(consumer_id);
        if source == Source::Header {
            if let Some(cookie) = cookie {
                ctx.extensions.insert(GrantToSet(cookie));
            }
            return Decision::Continue;
        }
        // A form submission: send the browser back to the clean URL, so the
        // code is neither forwarded upstream nor left in the address bar.
        let location =
            HeaderValue::try_from(p.clean_target.as_str()).unwrap_or(HeaderValue::from_static("/"));
        let mut denial = Denial::new(
            StatusCode::SEE_OTHER,
            STEP_UP_VERIFIED,
            "verified; continue to the requested page",
        )
        .with_header(LOCATION, location);
        if let Some(cookie) = cookie {
            denial = denial.with_header(SET_COOKIE, cookie);
        }
        Decision::Deny(with_page_headers(denial))
    }

    async fn decide(&self, ctx: &mut RequestCtx, p: Presented, consumer_id: Arc<str>) -> Decision {
        if let Some((code, source)) = &p.code {
            return self.check_code(&consumer_id, code, *source, &p, ctx).await;
        }
        match self.o.verifier.is_enrolled(&consumer_id).await {
            Err(e) => unavailable(&e),
            Ok(true) => self.ask(
                &p,
                STEP_UP_REQUIRED,
                "this route requires a one-time code from your authenticator",
            ),
            Ok(false) => match self.o.not_enrolled {
                NotEnrolled::Allow => Decision::Continue,
                NotEnrolled::Deny => self.deny_not_enrolled(),
            },
        }
    }
}

impl Filter for StepUpFilter {
    fn name(&self) -> &'static str {
        "step_up"
    }

    fn mode(&self) -> Mode {
        self.o.mode
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        let presented = self.take_inputs(head);
        let Some(consumer_id) = ctx.identity.as_ref().map(|i| i.consumer_id.clone()) else {
            if self.o.require_identity {
                return Verdict::Ready(Decision::deny(
                    StatusCode::UNAUTHORIZED,
                    STEP_UP_UNAUTHENTICATED,
                    "this route requires an authenticated consumer",
                ));
            }
            return Verdict::Ready(Decision::Continue);
        };
        // A valid grant needs no store round trip (unless a code was sent
        // anyway: then it is checked, so clients learn about wrong codes).
        let granted = presented
            .grant
            .as_deref()
            .is_some_and(|g| self.grant_is_valid(&consumer_id, g));
        if granted && presented.code.is_none() {
            return Verdict::Ready(Decision::Continue);
        }
        Verdict::Pending(Box::pin(self.decide(ctx, presented, consumer_id)))
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        if let Some(GrantToSet(cookie)) = ctx.extensions.remove::<GrantToSet>() {
            head.headers.append(SET_COOKIE, cookie);
        }
        Decision::Continue
    }
}

fn well_formed(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

fn unavailable(e: &StoreError) -> Decision {
    // Store errors never carry codes or secrets (see rampart_store::error).
    tracing::warn!(error = %e, "step-up verification failed; refusing");
    Decision::deny(
        StatusCode::SERVICE_UNAVAILABLE,
        STEP_UP_UNAVAILABLE,
        "one-time codes cannot be checked right now",
    )
}

fn locked(retry_after_secs: u64) -> Decision {
    Decision::Deny(
        Denial::new(
            StatusCode::TOO_MANY_REQUESTS,
            STEP_UP_LOCKED,
            "too many wrong one-time codes; try again later",
        )
        .with_header(RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1))),
    )
}

/// Headers for responses that show or answer the form.
fn with_page_headers(denial: Denial) -> Denial {
    denial
        .with_header(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        )
        .with_header(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        )
}

/// Removes cookie `name` from the `Cookie` headers; returns its value.
fn take_cookie(headers: &mut http::HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    let mut kept: Vec<HeaderValue> = Vec::new();
    let mut touched = false;
    for value in headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else {
            kept.push(value.clone());
            continue;
        };
        let mut rest = Vec::new();
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if k.trim() == name => {
                    found = Some(v.trim().to_string());
                    touched = true;
                }
                _ => rest.push(pair),
            }
        }
        if !rest.is_empty() {
            kept.push(HeaderValue::try_from(rest.join("; ")).unwrap_or_else(|_| value.clone()));
        }
    }
    if touched {
        headers.remove(COOKIE);
        for value in kept {
            headers.append(COOKIE, value);
        }
    }
    found
}

/// Splits field `name` out of the URI's query. Returns its (decoded) value
/// and the path-and-query without it, made safe to use as a same-origin
/// redirect target (a path starting `//` would leave the site).
fn take_query_field(uri: &http::Uri, name: &str) -> (Option<String>, String) {
    let path = safe_path(uri.path());
    let Some(query) = uri.query() else {
        return (None, path);
    };
    let mut value = None;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match form_urlencoded::parse(pair.as_bytes()).next() {
            Some((k, v)) if k == name => value = Some(v.into_owned()),
            _ => kept.push(pair),
        }
    }
    let target = match kept.is_empty() {
        true => path,
        false => format!("{path}?{}", kept.join("&")),
    };
    (value, target)
}

fn safe_path(path: &str) -> String {
    let trimmed = path.trim_start_matches(['/', '\\']);
    format!("/{trimmed}")
}

fn page_message(reason: Reason) -> Option<&'static str> {
    match reason {
        STEP_UP_INVALID => Some("That code is not valid. Enter the current code from your app."),
        STEP_UP_REPLAYED => Some("That code was already used. Wait for the next code."),
        _ => None,
    }
}

/// The challenge page: one labelled field; the form GETs the same URL with
/// the original query parameters as hidden fields plus the code.
fn challenge_page(target: &str, field: &str, message: Option<&str>) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut hidden = String::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape_html(&k),
            escape_html(&v)
        ));
    }
    let error = message
        .map(|m| format!("<p id=\"otp-error\" role=\"alert\">{}</p>", escape_html(m)))
        .unwrap_or_default();
    let described = if message.is_some() {
        " aria-describedby=\"otp-error\" aria-invalid=\"true\""
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Verification required</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:28em;margin:4em auto;padding:0 1em;color:#222}}\
         label{{display:block;font-weight:600;margin:1em 0 .4em}}\
         input{{font-size:1.4em;letter-spacing:.2em;width:8em;padding:.2em}}\
         button{{font-size:1em;margin-top:1em;padding:.4em 1.2em}}\
         #otp-error{{color:#a00}}</style></head><body><main>\
         <h1>Verification required</h1>\
         <p>This action needs a one-time code from your authenticator app.</p>{error}\
         <form method=\"get\" action=\"{action}\">{hidden}\
         <label for=\"rampart-otp\">One-time code</label>\
         <input id=\"rampart-otp\" name=\"{field}\" type=\"text\" inputmode=\"numeric\" \
         pattern=\"[0-9]{{6}}\" maxlength=\"6\" autocomplete=\"one-time-code\" required autofocus{described}>\
         <div><button type=\"submit\">Verify</button></div></form></main></body></html>",
        action = escape_html(path),
        field = escape_html(field),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, head};
    use rampart_core::{AuthMethod, Identity};
    use rampart_store::ManualClock;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    const T0: u64 = 1_800_000_000;
    const GOOD: &str = "123456";
    const OTP: &str = "x-rampart-otp";
    const BROWSER: (&str, &str) = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");

    /// Accepts `GOOD` once per consumer; everyone but `globex` is enrolled.
    #[derive(Default)]
    struct Fake {
        used: Mutex<HashSet<String>>,
        calls: AtomicUsize,
        broken: bool,
        locked: bool,
    }

    impl Fake {
        fn answer<T: Send + 'static>(&self, ok: T) -> VerifyFuture<'static, T> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let result = match self.broken {
                true => Err(StoreError::Backend("redis: IoError: gone".into())),
                false => Ok(ok),
            };
            Box::pin(async move { result })
        }
    }

    impl StepUpVerifier for Fake {
        fn is_enrolled<'a>(&'a self, id: &'a str) -> VerifyFuture<'a, bool> {
            self.answer(id != "globex")
        }

        fn verify<'a>(&'a self, id: &'a str, code: &'a str) -> VerifyFuture<'a, StepUpOutcome> {
            self.answer(match () {
                _ if id == "globex" => StepUpOutcome::NotEnrolled,
                _ if self.locked => StepUpOutcome::Locked {
                    retry_after_secs: 42,
                },
                _ if code != GOOD => StepUpOutcome::Invalid,
                _ if self.used.lock().unwrap().insert(id.into()) => StepUpOutcome::Accepted,
                _ => StepUpOutcome::Replayed,
            })
        }
    }

    struct Setup {
        filter: StepUpFilter,
        fake: Arc<Fake>,
        clock: Arc<ManualClock>,
    }

    impl Setup {
        fn new(fake: Fake, adjust: impl FnOnce(&mut StepUpOptions)) -> Setup {
            let fake = Arc::new(fake);
            let clock = Arc::new(ManualClock::new(T0));
            let key = ServerSecret::new(&[7u8; 32]).unwrap();
            let mut options = StepUpOptions::new(fake.clone(), key);
            options.clock = clock.clone();
            adjust(&mut options);
            let filter = StepUpFilter::new(options);
            Setup {
                filter,
                fake,
                clock,
            }
        }

        /// Runs the request hook for `consumer` (`None`: anonymous).
        async fn run(&self, consumer: Option<&str>, h: &mut RequestHead) -> Decision {
            run(&self.filter, &mut who(consumer), h).await
        }

        async fn refuse(&self, consumer: &str, h: &mut RequestHead) -> Denial {
            match self.run(Some(consumer), h).await {
                Decision::Deny(d) => d,
                other => panic!("expected a denial, got {other:?}"),
            }
        }

        /// Passes a header code; returns the `Set-Cookie` of the response.
        async fn earn_grant(&self) -> Option<String> {
            let mut c = who(Some("acme"));
            let mut h = head("/admin/export", &[(OTP, GOOD)]);
            assert_eq!(run(&self.filter, &mut c, &mut h).await, Decision::Continue);
            let mut resp = http::Response::new(()).into_parts().0;
            self.filter.response_headers(&mut c, &mut resp);
            let set = resp.headers.get(SET_COOKIE)?;
            Some(set.to_str().unwrap().to_string())
        }
    }

    fn setup() -> Setup {
        Setup::new(Fake::default(), |_| {})
    }

    fn who(consumer: Option<&str>) -> RequestCtx {
        let mut c = ctx("192.0.2.7");
        c.identity = consumer.map(|id| Identity {
            method: AuthMethod::ApiKey,
            consumer_id: Arc::from(id),
            tier: None,
            scopes: Arc::from(Vec::<String>::new()),
            key_id: Some(Arc::from("k1")),
            claims: None,
        });
        c
    }

    async fn run(f: &StepUpFilter, c: &mut RequestCtx, h: &mut RequestHead) -> Decision {
        f.request_headers(c, h).resolve().await
    }

    fn header<'d>(d: &'d Denial, name: &str) -> Option<&'d str> {
        let (_, v) = d.headers.iter().find(|(n, _)| n.as_str() == name)?;
        v.to_str().ok()
    }

    fn body(d: &Denial) -> &str {
        std::str::from_utf8(&d.body.as_ref().expect("a page").1).unwrap()
    }

    #[tokio::test]
    async fn without_identity_passes_unless_required() {
        let mut h = head("/admin", &[]);
        assert_eq!(setup().run(None, &mut h).await, Decision::Continue);
        let s = Setup::new(Fake::default(), |o| o.require_identity = true);
        let d = s.run(None, &mut h).await;
        assert_eq!(d.reason(), Some(STEP_UP_UNAUTHENTICATED));
    }

    #[tokio::test]
    async fn not_enrolled_consumer_follows_the_policy() {
        let mut h = head("/admin", &[]);
        assert_eq!(
            setup().run(Some("globex"), &mut h).await,
            Decision::Continue
        );
        let s = Setup::new(Fake::default(), |o| o.not_enrolled = NotEnrolled::Deny);
        let d = s.refuse("globex", &mut h).await;
        assert_eq!(
            (d.status, d.reason),
            (StatusCode::FORBIDDEN, STEP_UP_NOT_ENROLLED)
        );
        // Same policy when a code is sent for a consumer without TOTP.
        let mut h = head("/admin", &[(OTP, GOOD)]);
        assert_eq!(
            s.refuse("globex", &mut h).await.reason,
            STEP_UP_NOT_ENROLLED
        );
    }

    #[tokio::test]
    async fn no_code_gets_401_with_challenge_header_and_json() {
        let mut h = head("/admin/export", &[("accept", "application/json")]);
        let d = setup().refuse("acme", &mut h).await;
        assert_eq!(
            (d.status, d.reason),
            (StatusCode::UNAUTHORIZED, STEP_UP_REQUIRED)
        );
        let challenge = header(&d, "www-authenticate");
        assert_eq!(challenge, Some("RampartOTP header=\"x-rampart-otp\""));
        assert!(
            d.body.is_none(),
            "API clients get the standard problem document"
        );
    }

    #[tokio::test]
    async fn wrong_right_and_replayed_header_codes() {
        let s = setup();
        let mut h = head("/admin/export", &[(OTP, "654321")]);
        let d = s.refuse("acme", &mut h).await;
        assert_eq!(
            (d.status, d.reason),
            (StatusCode::UNAUTHORIZED, STEP_UP_INVALID)
        );
        assert!(h.headers.get(OTP).is_none(), "code stripped");

        let mut h = head("/admin/export", &[(OTP, GOOD)]);
        assert_eq!(s.run(Some("acme"), &mut h).await, Decision::Continue);
        assert!(h.headers.get(OTP).is_none(), "code never goes upstream");

        let mut h = head("/admin/export", &[(OTP, GOOD)]);
        let d = s.refuse("acme", &mut h).await;
        assert_eq!(
            (d.status, d.reason),
            (StatusCode::UNAUTHORIZED, STEP_UP_REPLAYED)
        );
        assert!(!d.detail.contains(GOOD));
    }

    #[tokio::test]
    async fn malformed_codes_are_refused_without_a_store_call() {
        let s = setup();
        for code in ["12345", "1234567", "12a456", ""] {
            let mut h = head("/admin", &[(OTP, code)]);
            assert_eq!(
                s.refuse("acme", &mut h).await.reason,
                STEP_UP_INVALID,
                "{code:?}"
            );
        }
        assert_eq!(s.fake.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn accepted_code_sets_a_grant_cookie_that_later_passes() {
        let s = setup();
        let set = s.earn_grant().await.expect("a grant cookie");
        for attr in [
            "Path=/",
            "Max-Age=600",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
        ] {
            assert!(set.contains(attr), "{set} lacks {attr}");
        }
        let grant = set.split(';').next().unwrap();
        assert!(grant.starts_with("rampart_step_up=v1."));
        let calls = s.fake.calls.load(Ordering::SeqCst);
        let cookie = format!("theme=dark; {grant}; lang=en");
        let mut h = head("/admin/export", &[("cookie", cookie.as_str())]);
        let mut c = who(Some("acme"));
        let ready = matches!(
            s.filter.request_headers(&mut c, &mut h),
            Verdict::Ready(Decision::Continue)
        );
        assert!(ready, "a valid grant passes at once");
        assert_eq!(s.fake.calls.load(Ordering::SeqCst), calls, "no store call");
        assert_eq!(h.headers[COOKIE], "theme=dark; lang=en", "grant stripped");
        // Another consumer's grant does not exempt this one.
        let mut h = head("/admin", &[("cookie", grant)]);
        assert_eq!(s.refuse("initech", &mut h).await.reason, STEP_UP_REQUIRED);
        // Lifetime zero: no grants.
        let s = Setup::new(Fake::default(), |o| o.grant_lifetime = Duration::ZERO);
        assert_eq!(s.earn_grant().await, None);
    }

    #[tokio::test]
    async fn grant_is_bound_to_consumer_expiry_and_signature() {
        let s = setup();
        let set = s.earn_grant().await.unwrap();
        let value = set.split(';').next().unwrap().split_once('=').unwrap().1;
        let f = &s.filter;
        assert!(f.grant_is_valid("acme", value));
        assert!(!f.grant_is_valid("globex", value));
        let flipped = if value.ends_with('0') { "1" } else { "0" };
        let tampered = format!("{}{flipped}", &value[..value.len() - 1]);
        assert!(!f.grant_is_valid("acme", &tampered));
        // A correctly signed grant further out than the lifetime is refused.
        assert!(!f.grant_is_valid("acme", &f.grant_value("acme", T0 + 86_400)));
        for junk in ["", "v1", "v1.x.y", "v2.1.00", "v1.99999999999.zz"] {
            assert!(!f.grant_is_valid("acme", junk), "{junk:?}");
        }
        s.clock.advance(600);
        assert!(!f.grant_is_valid("acme", value), "expired");
    }

    #[tokio::test]
    async fn locked_and_unavailable_verifiers() {
        let locked = Fake {
            locked: true,
            ..Fake::default()
        };
        let mut h = head("/admin", &[(OTP, GOOD)]);
        let d = Setup::new(locked, |_| {}).refuse("acme", &mut h).await;
        assert_eq!(
            (d.status, d.reason),
            (StatusCode::TOO_MANY_REQUESTS, STEP_UP_LOCKED)
        );
        assert_eq!(header(&d, "retry-after"), Some("42"));

        let broken = Fake {
            broken: true,
            ..Fake::default()
        };
        let s = Setup::new(broken, |_| {});
        for mut h in [head("/a", &[(OTP, GOOD)]), head("/a", &[])] {
            let d = s.refuse("acme", &mut h).await;
            assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(d.reason, STEP_UP_UNAVAILABLE);
        }
    }

    #[tokio::test]
    async fn browsers_get_an_accessible_challenge_page() {
        let s = setup();
        let mut h = head("/admin/export?fmt=csv&q=%22%3Cx%3E", &[BROWSER]);
        let d = s.refuse("acme", &mut h).await;
        assert_eq!(d.reason, STEP_UP_REQUIRED);
        assert_eq!(d.body.as_ref().unwrap().0, "text/html; charset=utf-8");
        let page = body(&d);
        for part in [
            "<html lang=\"en\">",
            "<form method=\"get\" action=\"/admin/export\">",
            "<label for=\"rampart-otp\">One-time code</label>",
            "id=\"rampart-otp\" name=\"rampart_otp\"",
            "autocomplete=\"one-time-code\"",
            "inputmode=\"numeric\"",
            "<input type=\"hidden\" name=\"fmt\" value=\"csv\">",
            "<input type=\"hidden\" name=\"q\" value=\"&quot;&lt;x&gt;\">",
        ] {
            assert!(page.contains(part), "page lacks {part}");
        }
        assert!(!page.contains("<x>"), "query values are escaped");
        assert!(header(&d, "content-security-policy").is_some());
        assert!(header(&d, "www-authenticate").is_some());
        // Not for POSTs (the form could not replay them).
        let mut h = head("/admin/export", &[BROWSER]);
        h.method = Method::POST;
        assert!(s.refuse("acme", &mut h).await.body.is_none());
    }

    #[tokio::test]
    async fn form_submission_redirects_to_the_clean_url_with_a_grant() {
        let s = setup();
        let mut h = head("/admin/export?fmt=csv&rampart_otp=111111", &[BROWSER]);
        let d = s.refuse("acme", &mut h).await;
        assert_eq!(d.reason, STEP_UP_INVALID);
        assert!(body(&d).contains("role=\"alert\""));
        assert!(body(&d).contains("aria-invalid=\"true\""));
        assert!(!body(&d).contains("111111"), "the code is not echoed");
        assert_eq!(h.uri, "/admin/export?fmt=csv", "field stripped");

        let mut h = head("/admin/export?fmt=csv&rampart_otp=123456", &[BROWSER]);
        let d = s.refuse("acme", &mut h).await;
        assert_eq!(
            (d.status, d.reason),
            (StatusCode::SEE_OTHER, STEP_UP_VERIFIED)
        );
        assert_eq!(header(&d, "location"), Some("/admin/export?fmt=csv"));
        let cookie = header(&d, "set-cookie").unwrap();
        assert!(cookie.starts_with("rampart_step_up=v1."));

        let mut h = head("/admin/export?rampart_otp=123456", &[BROWSER]);
        let d = s.refuse("acme", &mut h).await;
        assert_eq!(d.reason, STEP_UP_REPLAYED);
        assert!(body(&d).contains("already used"));
    }

    #[tokio::test]
    async fn redirect_stays_on_site_and_posts_ignore_the_field() {
        let s = setup();
        let mut h = head("//evil.example/x?rampart_otp=123456", &[BROWSER]);
        let d = s.refuse("acme", &mut h).await;
        assert_eq!(header(&d, "location"), Some("/evil.example/x"));
        assert_eq!(safe_path("/\\evil.example"), "/evil.example");
        // A POST with the field: stripped, but not taken as a code.
        let mut h = head("/admin?rampart_otp=123456", &[]);
        h.method = Method::POST;
        assert_eq!(s.refuse("acme", &mut h).await.reason, STEP_UP_REQUIRED);
        assert_eq!(h.uri, "/admin");
    }

    #[test]
    fn query_and_cookie_helpers() {
        let uri: http::Uri = "/p?a=1&rampart_otp=123456&&b=2".parse().unwrap();
        let (code, target) = take_query_field(&uri, "rampart_otp");
        assert_eq!(
            (code.as_deref(), target.as_str()),
            (Some("123456"), "/p?a=1&b=2")
        );
        let uri: http::Uri = "/p".parse().unwrap();
        assert_eq!(take_query_field(&uri, "rampart_otp"), (None, "/p".into()));

        let mut headers = http::HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; rampart_step_up=v1.2.ab"),
        );
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        let taken = take_cookie(&mut headers, "rampart_step_up");
        assert_eq!(taken.as_deref(), Some("v1.2.ab"));
        let left: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(left, ["a=1", "b=2"]);
        assert_eq!(take_cookie(&mut headers, "rampart_step_up"), None);
    }

    /// The real store behind the filter: wrong, right and replayed codes.
    #[tokio::test]
    async fn real_sqlite_store_wrong_right_and_replayed_codes() {
        use rampart_store::{secret::base32_decode, totp, *};
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn Backend> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let clock = Arc::new(ManualClock::new(T0));
        let secret = ServerSecret::new(&[5u8; 32]).unwrap();
        let ring_options = KeyringOptions {
            clock: clock.clone(),
            full_reload_interval: None,
            ..KeyringOptions::default()
        };
        let ring = Keyring::open(backend.clone(), secret.clone(), ring_options);
        let new = NewConsumer {
            id: Some("acme".into()),
            name: "Acme".into(),
            ..NewConsumer::default()
        };
        let ops = Actor::new("ops", None);
        ring.await
            .unwrap()
            .create_consumer(new, &ops)
            .await
            .unwrap();
        let totp_options = ConsumerTotpOptions {
            clock: clock.clone(),
            ..ConsumerTotpOptions::default()
        };
        let service = ConsumerTotpService::new(backend, &secret, totp_options).unwrap();
        let enrollment = service.enroll("acme", &ops).await.unwrap();
        let raw = base32_decode(enrollment.secret_base32.expose()).unwrap();
        let first = totp::code_at(&raw, T0);
        assert!(service.confirm("acme", &first, &ops).await.unwrap());

        let mut options = StepUpOptions::new(Arc::new(service), secret);
        options.clock = clock.clone();
        let filter = StepUpFilter::new(options);
        clock.advance(totp::STEP_SECS);
        let code = totp::code_at(&raw, clock.now_secs());
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        let cases = [
            (None, Some(STEP_UP_REQUIRED)),
            (Some(wrong.as_str()), Some(STEP_UP_INVALID)),
            (Some(code.as_str()), None),
            (Some(code.as_str()), Some(STEP_UP_REPLAYED)),
        ];
        for (sent, expected) in cases {
            let headers: Vec<(&str, &str)> = sent.map(|c| (OTP, c)).into_iter().collect();
            let mut h = head("/admin", &headers);
            let decision = run(&filter, &mut who(Some("acme")), &mut h).await;
            assert_eq!(decision.reason(), expected, "code {sent:?}");
        }
        // A consumer without TOTP passes (default policy).
        let mut h = head("/admin", &[]);
        let decision = run(&filter, &mut who(Some("globex")), &mut h).await;
        assert_eq!(decision, Decision::Continue);
    }
}
