//! Config shapes for bot defence on a route: `bot` (bot score → allow,
//! challenge or block, with proof-of-work, CAPTCHA and clearance) and
//! `login_guard` (credential-stuffing protection of a login endpoint).
//!
//! Defaults mirror the `rampart-bot` library's own defaults, so an empty
//! table (`bot = {}`) gives the documented behaviour. [`check_bot`] and
//! [`check_login_guard`] report every bad value with its key path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use crate::model::{FilterMode, PathMatch, Route};
use crate::units::{Bytes, Dur};

/// How a client authenticated (for "skip challenges" rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    ApiKey,
    Jwt,
    Mtls,
}

/// `bot`: score every request, challenge or block automated clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    /// Scores from here up get a challenge (0–101; 101: never).
    #[serde(default = "default_challenge_at")]
    pub challenge_at: u8,
    /// Scores from here up are blocked (0–101; 101: never).
    #[serde(default = "default_block_at")]
    pub block_at: u8,
    /// Proof-of-work difficulty (leading zero bits) at `challenge_at`.
    #[serde(default = "default_min_difficulty")]
    pub min_difficulty: u8,
    /// Difficulty just below `block_at`; it rises linearly across the band.
    #[serde(default = "default_max_difficulty")]
    pub max_difficulty: u8,
    /// How long a passed challenge spares the client further challenges.
    #[serde(default = "default_clearance_ttl")]
    pub clearance_ttl: Dur,
    /// How long a proof-of-work puzzle may be worked on.
    #[serde(default = "default_puzzle_ttl")]
    pub puzzle_ttl: Dur,
    /// How long a CAPTCHA may be answered.
    #[serde(default = "default_captcha_ttl")]
    pub captcha_ttl: Dur,
    /// Where the challenge endpoints live (`<path>/verify`, `<path>/captcha`).
    /// They must be served by this route; by default the route's own prefix
    /// followed by `.rampart/challenge`, or `/.rampart/challenge`.
    pub challenge_path: Option<String>,
    /// Largest CAPTCHA form read.
    #[serde(default = "default_max_form")]
    pub max_form_bytes: Bytes,
    /// Authentication methods whose clients are never challenged (blocks
    /// still apply).
    #[serde(default = "default_skip_for")]
    pub skip_challenge_for: Vec<AuthKind>,
    /// Consumers (ids) never challenged, whatever their auth method.
    #[serde(default)]
    pub skip_consumers: Vec<String>,
    /// Authenticated clients holding any of these scopes are never challenged.
    #[serde(default)]
    pub skip_scopes: Vec<String>,
    /// Verified good bots: User-Agent substring AND source networks.
    #[serde(default)]
    pub good_bots: Vec<GoodBot>,
    /// JA4 TLS fingerprints of known automation stacks.
    #[serde(default)]
    pub ja4_deny: Vec<String>,
    /// Points per signal (unlisted signals keep their default).
    #[serde(default)]
    pub weights: BotWeights,
    /// Feed the client's threat score (from `[reputation.bans]` events) to
    /// the bot score as `ip_reputation`.
    #[serde(default = "yes")]
    pub threat_score: bool,
}

/// A good bot allow rule: both the User-Agent and the network must match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodBot {
    pub name: String,
    /// Case-insensitive User-Agent substring, e.g. `Googlebot`.
    pub user_agent: String,
    /// The networks the bot's operator publishes.
    pub networks: Vec<IpNet>,
}

/// Per-signal points overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotWeights {
    pub scanner: Option<u8>,
    pub headless: Option<u8>,
    pub automation: Option<u8>,
    pub empty_user_agent: Option<u8>,
    pub unverified_good_bot: Option<u8>,
    pub header_anomaly: Option<u8>,
    pub regular_cadence: Option<u8>,
    pub burst: Option<u8>,
    pub ja4_listed: Option<u8>,
    pub ip_reputation_max: Option<u8>,
}

fn default_challenge_at() -> u8 {
    30
}
fn default_block_at() -> u8 {
    80
}
fn default_min_difficulty() -> u8 {
    16
}
fn default_max_difficulty() -> u8 {
    20
}
fn default_clearance_ttl() -> Dur {
    Dur::secs(3600)
}
fn default_puzzle_ttl() -> Dur {
    Dur::secs(120)
}
fn default_captcha_ttl() -> Dur {
    Dur::secs(300)
}
fn default_max_form() -> Bytes {
    Bytes(4096)
}
fn default_skip_for() -> Vec<AuthKind> {
    vec![AuthKind::ApiKey, AuthKind::Mtls]
}

impl BotPolicy {
    /// The challenge endpoints' base path for `route` (see `challenge_path`).
    pub fn challenge_base(&self, route: &Route) -> String {
        if let Some(p) = &self.challenge_path {
            return p.clone();
        }
        match &route.path {
            Some(PathMatch::Prefix(p)) => format!("{}/.rampart/challenge", p.trim_end_matches('/')),
            _ => "/.rampart/challenge".into(),
        }
    }
}

/// Where a login request carries the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CredentialLocation {
    #[default]
    Json,
    Form,
    Basic,
}

/// What to do with a breached password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreachedActionConfig {
    #[default]
    Flag,
    Challenge,
    Block,
}

/// Layout of a Pwned Passwords copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreachedLayout {
    /// A folder is a range directory, a file a sorted `HASH:COUNT` file.
    #[default]
    Auto,
    RangeDirectory,
    SortedFile,
}

/// `login_guard`: credential-stuffing protection of one login endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginGuardPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    #[serde(default = "default_login_method")]
    pub method: String,
    /// The login path as the client sends it; defaults to the route's exact path.
    pub path: Option<String>,
    #[serde(default)]
    pub credentials: CredentialLocation,
    /// JSON (dotted path) or form field of the username.
    #[serde(default = "default_username_field")]
    pub username_field: String,
    #[serde(default = "default_password_field")]
    pub password_field: String,
    /// Upstream statuses meaning success / failure (others are not counted).
    #[serde(default = "default_success_status")]
    pub success_status: Vec<u16>,
    #[serde(default = "default_failure_status")]
    pub failure_status: Vec<u16>,
    /// Recognise success by a JSON response field instead of the status:
    /// success when it equals `success_value`.
    pub success_field: Option<String>,
    pub success_value: Option<toml::Value>,
    /// Largest login body read.
    #[serde(default = "default_login_body")]
    pub max_body_bytes: Bytes,
    /// Largest response body read for `success_field`.
    #[serde(default = "default_login_response")]
    pub max_response_bytes: Bytes,
    /// Counter window for IP, subnet and per-IP username counts.
    #[serde(default = "default_window")]
    pub window: Dur,
    /// Counter window for per-username counts (low-and-slow attacks).
    #[serde(default = "default_username_window")]
    pub username_window: Dur,
    /// How long a blocked source stays blocked.
    #[serde(default = "default_block_for")]
    pub block_for: Dur,
    /// How long a targeted username stays protected (challenge for all).
    #[serde(default = "default_protect_for")]
    pub protect_for: Dur,
    #[serde(default)]
    pub thresholds: LoginThresholds,
    #[serde(default)]
    pub delay: LoginDelay,
    pub breached: Option<BreachedPolicy>,
    /// Authentication methods that skip the guard.
    #[serde(default)]
    pub skip_for: Vec<AuthKind>,
}

/// Detection thresholds (per `window` unless noted).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginThresholds {
    pub ip_distinct_users_challenge: u64,
    pub ip_distinct_users_block: u64,
    pub ip_failures_block: u64,
    pub low_success_min_attempts: u64,
    pub low_success_ratio: f64,
    pub subnet_failures_challenge: u64,
    /// Failures on one username (per `username_window`) ...
    pub username_failures_protect: u64,
    /// ... from at least this many addresses protect the username.
    pub username_distinct_ips_protect: u64,
    pub global_spike_factor: f64,
    pub global_spike_min_per_minute: u64,
}

impl Default for LoginThresholds {
    fn default() -> Self {
        LoginThresholds {
            ip_distinct_users_challenge: 8,
            ip_distinct_users_block: 40,
            ip_failures_block: 50,
            low_success_min_attempts: 20,
            low_success_ratio: 0.1,
            subnet_failures_challenge: 150,
            username_failures_protect: 6,
            username_distinct_ips_protect: 3,
            global_spike_factor: 3.0,
            global_spike_min_per_minute: 100,
        }
    }
}

/// Progressive delay after repeated failures from one address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginDelay {
    pub after_failures: u64,
    pub base: Dur,
    pub max: Dur,
}

impl Default for LoginDelay {
    fn default() -> Self {
        LoginDelay {
            after_failures: 3,
            base: Dur::millis(250),
            max: Dur::secs(5),
        }
    }
}

/// A local Pwned Passwords dataset and what to do on a hit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreachedPolicy {
    pub path: PathBuf,
    #[serde(default)]
    pub layout: BreachedLayout,
    #[serde(default)]
    pub action: BreachedActionConfig,
    /// Minimum count in the dataset for a password to count as breached.
    #[serde(default = "one")]
    pub min_count: u64,
}

fn default_login_method() -> String {
    "POST".into()
}
fn default_username_field() -> String {
    "username".into()
}
fn default_password_field() -> String {
    "password".into()
}
fn default_success_status() -> Vec<u16> {
    vec![200, 204]
}
fn default_failure_status() -> Vec<u16> {
    vec![401, 403]
}
fn default_login_body() -> Bytes {
    Bytes(16 * 1024)
}
fn default_login_response() -> Bytes {
    Bytes(64 * 1024)
}
fn default_window() -> Dur {
    Dur::secs(600)
}
fn default_username_window() -> Dur {
    Dur::secs(3600)
}
fn default_block_for() -> Dur {
    Dur::secs(900)
}
fn default_protect_for() -> Dur {
    Dur::secs(3600)
}
fn yes() -> bool {
    true
}
fn one() -> u64 {
    1
}

impl LoginGuardPolicy {
    /// The login path: the configured one, else the route's exact path.
    pub fn login_path(&self, route: &Route) -> Option<String> {
        self.path.clone().or_else(|| match &route.path {
            Some(PathMatch::Exact(p)) => Some(p.clone()),
            _ => None,
        })
    }
}

/// Reports an error at `key` (relative to the policy's own path).
type Report<'a> = dyn FnMut(String, String) + 'a;

/// Checks a route's `bot` table.
pub fn check_bot(p: &BotPolicy, route: &Route, path: &str, err: &mut Report<'_>) {
    let mut e = |k: &str, m: String| err(format!("{path}.{k}"), m);
    if p.challenge_at > 101 {
        e(
            "challenge_at",
            format!("expected 0 to 101, found {}", p.challenge_at),
        );
    }
    if p.block_at > 101 {
        e(
            "block_at",
            format!("expected 0 to 101, found {}", p.block_at),
        );
    }
    if p.challenge_at > p.block_at {
        e(
            "challenge_at",
            format!(
                "expected challenge_at ({}) <= block_at ({})",
                p.challenge_at, p.block_at
            ),
        );
    }
    for (k, v) in [
        ("min_difficulty", p.min_difficulty),
        ("max_difficulty", p.max_difficulty),
    ] {
        if !(1..=32).contains(&v) {
            e(k, format!("expected 1 to 32 bits, found {v}"));
        }
    }
    if p.min_difficulty > p.max_difficulty {
        e(
            "min_difficulty",
            "expected min_difficulty <= max_difficulty".into(),
        );
    }
    for (k, d, max_secs) in [
        ("clearance_ttl", p.clearance_ttl, 30 * 86_400),
        ("puzzle_ttl", p.puzzle_ttl, 3_600),
        ("captcha_ttl", p.captcha_ttl, 3_600),
    ] {
        let secs = d.0.as_secs();
        if !(1..=max_secs).contains(&secs) {
            e(k, format!("expected 1s to {max_secs}s, found {secs}s"));
        }
    }
    if let Some(c) = &p.challenge_path {
        if let Err(m) = check_endpoint_path(c) {
            e("challenge_path", m);
        }
    }
    let base = p.challenge_base(route);
    if let Err(m) = route_serves(route, &format!("{base}/verify")) {
        e("challenge_path", m);
    }
    if !(64..=65_536).contains(&p.max_form_bytes.0) {
        e("max_form_bytes", "expected 64 B to 64 KiB".into());
    }
    for (i, b) in p.good_bots.iter().enumerate() {
        if b.name.trim().is_empty() {
            e(&format!("good_bots[{i}].name"), "expected a name".into());
        }
        if b.user_agent.trim().len() < 3 {
            e(
                &format!("good_bots[{i}].user_agent"),
                "expected a User-Agent substring of at least 3 characters".into(),
            );
        }
        if b.networks.is_empty() {
            e(
                &format!("good_bots[{i}].networks"),
                "expected at least one network: a User-Agent alone is never trusted".into(),
            );
        }
    }
    for (i, j) in p.ja4_deny.iter().enumerate() {
        if !looks_like_ja4(j) {
            e(
                &format!("ja4_deny[{i}]"),
                format!("expected a JA4 fingerprint such as \"t13d1516h2_8daaf6152771_d8a2da3f94cd\", found {j:?}"),
            );
        }
    }
}

fn check_endpoint_path(p: &str) -> Result<(), String> {
    let ok = p.starts_with('/')
        && !p.ends_with('/')
        && p.len() <= 256
        && p.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a path starting with '/' without a trailing '/', query or fragment, found {p:?}"
        ))
    }
}

/// Whether the route's path matcher can see `target` (prefix and exact
/// routes only; regex routes are trusted).
fn path_served(route: &Route, target: &str) -> bool {
    match &route.path {
        None | Some(PathMatch::Regex(_)) => true,
        Some(PathMatch::Prefix(p)) => target.starts_with(p.as_str()),
        Some(PathMatch::Exact(p)) => target == p,
    }
}

/// Whether the route admits `method` (an empty list admits all).
fn method_served(route: &Route, method: &str) -> bool {
    route.methods.is_empty() || route.methods.iter().any(|m| m == method)
}

/// The challenge endpoints must reach this route's filters.
fn route_serves(route: &Route, target: &str) -> Result<(), String> {
    if !path_served(route, target) {
        return Err(format!(
            "the challenge endpoint {target} is not on this route's path; set challenge_path under it"
        ));
    }
    if !method_served(route, "POST") {
        return Err("the challenge endpoints need POST, which this route's methods refuse".into());
    }
    Ok(())
}

/// JA4 shape: `[tqd]` + 2 version chars + `[di]` + 4 digits + 2 ALPN chars,
/// then two 12-hex-digit hashes.
fn looks_like_ja4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('_').collect();
    let hex12 = |p: &str| p.len() == 12 && p.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 3
        && parts[0].len() == 10
        && parts[0].bytes().all(|b| b.is_ascii_alphanumeric())
        && hex12(parts[1])
        && hex12(parts[2])
}

/// Checks a route's `login_guard` table.
pub fn check_login_guard(p: &LoginGuardPolicy, route: &Route, path: &str, err: &mut Report<'_>) {
    let mut e = |k: &str, m: String| err(format!("{path}.{k}"), m);
    let method_ok = !p.method.is_empty()
        && p.method.bytes().all(|b| b.is_ascii_uppercase())
        && http::Method::from_bytes(p.method.as_bytes()).is_ok();
    if !method_ok {
        e(
            "method",
            format!("expected an upper-case HTTP method, found {:?}", p.method),
        );
    }
    match p.login_path(route) {
        None => e(
            "path",
            "expected the login path, e.g. \"/login\" (required unless the route's path is exact)"
                .into(),
        ),
        Some(lp) if !lp.starts_with('/') => e(
            "path",
            format!("expected a path starting with '/', found {lp:?}"),
        ),
        Some(lp) if !path_served(route, &lp) => e(
            "path",
            format!("the login path {lp} is not on this route's path"),
        ),
        Some(_) => {}
    }
    if method_ok && !method_served(route, &p.method) {
        e(
            "method",
            format!("the route's methods do not include {}", p.method),
        );
    }
    if p.credentials != CredentialLocation::Basic {
        for (k, v) in [
            ("username_field", &p.username_field),
            ("password_field", &p.password_field),
        ] {
            if v.trim().is_empty() {
                e(k, "expected a field name".into());
            }
        }
    }
    check_outcome(p, &mut e);
    for (k, d) in [
        ("window", p.window),
        ("username_window", p.username_window),
        ("block_for", p.block_for),
        ("protect_for", p.protect_for),
    ] {
        if d.0.as_secs() == 0 {
            e(k, "expected at least 1s".into());
        }
    }
    if !(64..=1 << 20).contains(&p.max_body_bytes.0) {
        e("max_body_bytes", "expected 64 B to 1 MiB".into());
    }
    check_thresholds(&p.thresholds, &mut e);
    if p.delay.base.0 > p.delay.max.0 {
        e("delay.base", "expected base <= max".into());
    }
    if p.delay.max.0.as_secs() > 60 {
        e("delay.max", "expected at most 60s".into());
    }
    if let Some(b) = &p.breached {
        if b.path.as_os_str().is_empty() {
            e("breached.path", "expected the dataset's path".into());
        }
        if b.min_count == 0 {
            e("breached.min_count", "expected at least 1".into());
        }
    }
}

fn check_outcome(p: &LoginGuardPolicy, e: &mut impl FnMut(&str, String)) {
    for (k, list) in [
        ("success_status", &p.success_status),
        ("failure_status", &p.failure_status),
    ] {
        if let Some(s) = list.iter().find(|s| !(100..=599).contains(*s)) {
            e(k, format!("expected HTTP status codes, found {s}"));
        }
    }
    if let Some(s) = p
        .success_status
        .iter()
        .find(|s| p.failure_status.contains(s))
    {
        e(
            "failure_status",
            format!("status {s} is listed as both success and failure"),
        );
    }
    match (&p.success_field, &p.success_value) {
        (Some(f), Some(_)) if f.trim().is_empty() => {
            e("success_field", "expected a JSON field path".into())
        }
        (Some(_), None) => e(
            "success_value",
            "expected the value success_field has on success, e.g. true".into(),
        ),
        (None, Some(_)) => e(
            "success_field",
            "success_value needs success_field, the JSON field to compare".into(),
        ),
        _ => {}
    }
    if p.success_field.is_some() && !(64..=1 << 20).contains(&p.max_response_bytes.0) {
        e("max_response_bytes", "expected 64 B to 1 MiB".into());
    }
}

fn check_thresholds(t: &LoginThresholds, e: &mut impl FnMut(&str, String)) {
    let counts: BTreeMap<&str, u64> = [
        ("ip_distinct_users_challenge", t.ip_distinct_users_challenge),
        ("ip_distinct_users_block", t.ip_distinct_users_block),
        ("ip_failures_block", t.ip_failures_block),
        ("low_success_min_attempts", t.low_success_min_attempts),
        ("subnet_failures_challenge", t.subnet_failures_challenge),
        ("username_failures_protect", t.username_failures_protect),
        (
            "username_distinct_ips_protect",
            t.username_distinct_ips_protect,
        ),
        ("global_spike_min_per_minute", t.global_spike_min_per_minute),
    ]
    .into_iter()
    .collect();
    for (k, v) in counts {
        if v == 0 {
            e(&format!("thresholds.{k}"), "expected at least 1".into());
        }
    }
    if t.ip_distinct_users_challenge > t.ip_distinct_users_block {
        e(
            "thresholds.ip_distinct_users_challenge",
            "expected <= ip_distinct_users_block".into(),
        );
    }
    if !(0.0..=1.0).contains(&t.low_success_ratio) {
        e(
            "thresholds.low_success_ratio",
            format!("expected 0.0 to 1.0, found {}", t.low_success_ratio),
        );
    }
    if !(t.global_spike_factor >= 1.0 && t.global_spike_factor.is_finite()) {
        e(
            "thresholds.global_spike_factor",
            format!("expected at least 1.0, found {}", t.global_spike_factor),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse, ConfigErrors};

    fn config(route: &str) -> String {
        format!(
            "[listeners.main]\naddress = \"127.0.0.1:8080\"\n[upstreams.up]\nservers = [\"127.0.0.1:9000\"]\n\
             [[routes]]\nname = \"r\"\nupstream = \"up\"\n{route}\n"
        )
    }

    fn load(route: &str) -> Result<crate::Route, ConfigErrors> {
        parse(&config(route), None, |_| None).map(|c| c.config.routes[0].clone())
    }

    /// The error paths of a refused route.
    fn errors(route: &str) -> Vec<String> {
        match load(route) {
            Ok(_) => panic!("accepted: {route}"),
            Err(e) => {
                e.0.into_iter()
                    .map(|e| format!("{}: {}", e.path, e.message))
                    .collect()
            }
        }
    }

    fn has(errs: &[String], path: &str) -> bool {
        errs.iter().any(|e| e.starts_with(&format!("{path}:")))
    }

    #[test]
    fn empty_tables_take_the_library_defaults() {
        let r = load(
            "path = { prefix = \"/app/\" }\nbot = {}\nlogin_guard = { path = \"/app/login\" }",
        )
        .unwrap();
        let b = r.bot.as_ref().unwrap();
        assert_eq!((b.challenge_at, b.block_at), (30, 80));
        assert_eq!((b.min_difficulty, b.max_difficulty), (16, 20));
        assert_eq!(b.clearance_ttl.0.as_secs(), 3600);
        assert_eq!(
            b.skip_challenge_for,
            vec![super::AuthKind::ApiKey, super::AuthKind::Mtls]
        );
        assert!(b.threat_score);
        assert_eq!(b.challenge_base(&r), "/app/.rampart/challenge");
        let l = r.login_guard.as_ref().unwrap();
        assert_eq!(l.method, "POST");
        assert_eq!(l.credentials, super::CredentialLocation::Json);
        assert_eq!(
            (l.success_status.clone(), l.failure_status.clone()),
            (vec![200, 204], vec![401, 403])
        );
        assert_eq!(l.thresholds.ip_distinct_users_block, 40);
        assert_eq!(l.delay.base.0.as_millis(), 250);
        assert_eq!(l.block_for.0.as_secs(), 900);
    }

    #[test]
    fn login_path_defaults_to_an_exact_route_path() {
        let r = load("path = { exact = \"/login\" }\nlogin_guard = {}").unwrap();
        assert_eq!(
            r.login_guard.as_ref().unwrap().login_path(&r).as_deref(),
            Some("/login")
        );
        assert!(has(
            &errors("path = { prefix = \"/\" }\nlogin_guard = {}"),
            "routes[0].login_guard.path"
        ));
    }

    #[test]
    fn bad_bot_values_name_their_key() {
        let e = errors("bot = { challenge_at = 90, block_at = 80, min_difficulty = 0, clearance_ttl = \"0s\", ja4_deny = [\"nope\"] }");
        for key in [
            "challenge_at",
            "min_difficulty",
            "clearance_ttl",
            "ja4_deny[0]",
        ] {
            assert!(has(&e, &format!("routes[0].bot.{key}")), "{key}: {e:?}");
        }
        let e = errors(
            "bot = { good_bots = [{ name = \"g\", user_agent = \"Googlebot\", networks = [] }] }",
        );
        assert!(has(&e, "routes[0].bot.good_bots[0].networks"), "{e:?}");
        let e = errors("bot = { challenge_path = \"/x/\" }");
        assert!(has(&e, "routes[0].bot.challenge_path"), "{e:?}");
    }

    #[test]
    fn challenge_endpoints_must_be_on_the_route() {
        let e = errors("path = { prefix = \"/app/\" }\nbot = { challenge_path = \"/elsewhere\" }");
        assert!(has(&e, "routes[0].bot.challenge_path"), "{e:?}");
        let e = errors("methods = [\"GET\"]\nbot = {}");
        assert!(has(&e, "routes[0].bot.challenge_path"), "{e:?}");
    }

    #[test]
    fn bad_login_values_name_their_key() {
        let e = errors(
            "login_guard = { path = \"login\", method = \"post\", success_status = [200], failure_status = [200, 700], \
             success_value = true, thresholds = { low_success_ratio = 2.0, ip_distinct_users_challenge = 50 }, \
             delay = { base = \"10s\", max = \"1s\" }, breached = { path = \"x\", min_count = 0 } }",
        );
        for key in [
            "path",
            "method",
            "failure_status",
            "success_field",
            "thresholds.low_success_ratio",
            "thresholds.ip_distinct_users_challenge",
            "delay.base",
            "breached.min_count",
        ] {
            assert!(
                has(&e, &format!("routes[0].login_guard.{key}")),
                "{key}: {e:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_values_are_refused() {
        assert!(load("bot = { colour = 1 }").is_err());
        assert!(load("login_guard = { path = \"/l\", credentials = \"xml\" }").is_err());
        assert!(load(
            "login_guard = { path = \"/l\", breached = { path = \"p\", action = \"shout\" } }"
        )
        .is_err());
    }
}
