//! The credential-stuffing guard: counts login attempts and outcomes and
//! decides, per attempt, to allow, delay, challenge or block.
//!
//! Patterns detected (each with a stable reason code):
//!
//! * `login_many_usernames`: one client tries many distinct usernames
//!   (HyperLogLog per IP) — the signature of list-driven stuffing;
//! * `login_low_success`: a client's success ratio is very low over enough
//!   attempts;
//! * `login_ip_failures` / `login_subnet_failures`: failure volume per IP
//!   and per /24 (/64);
//! * `login_username_targeted`: low-and-slow attempts on one username from
//!   many addresses — answered by *protecting* the username (a challenge for
//!   anyone logging in as it), never by locking the real user out;
//! * `login_global_failure_spike`: failures per minute far above their EWMA
//!   baseline — thresholds are halved while it lasts.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::hmac;

use super::breached::BreachedPasswords;
use super::store::{mix64, CounterStore};
use crate::binding::{canonical, ip_prefix};
use crate::crypto::hex;

/// Detection thresholds, per `window_secs` unless noted.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Distinct usernames from one IP before attempts are challenged (8).
    pub ip_distinct_users_challenge: u64,
    /// Distinct usernames from one IP before the IP is blocked (40).
    pub ip_distinct_users_block: u64,
    /// Failures from one IP before it is blocked (50).
    pub ip_failures_block: u64,
    /// Attempts needed before the success ratio is judged (20).
    pub low_success_min_attempts: u64,
    /// Success ratio below which a client is challenged (0.1).
    pub low_success_ratio: f64,
    /// Failures from one /24 (/64) before its attempts are challenged (150).
    pub subnet_failures_challenge: u64,
    /// Failures on one username (over `username_window_secs`) ... (6)
    pub username_failures_protect: u64,
    /// ... from at least this many distinct IPs protect the username (3).
    pub username_distinct_ips_protect: u64,
    /// Global failures per minute above `factor` × EWMA baseline are a
    /// spike (3.0) ...
    pub global_spike_factor: f64,
    /// ... if also at least this many per minute (100).
    pub global_spike_min_per_minute: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
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

/// Progressive delay: after `after_failures` failures from an IP, each
/// attempt waits `base × 2^(failures − after_failures)`, up to `max`.
#[derive(Debug, Clone)]
pub struct DelayPolicy {
    pub after_failures: u64,
    pub base: Duration,
    pub max: Duration,
}

impl Default for DelayPolicy {
    fn default() -> Self {
        DelayPolicy {
            after_failures: 3,
            base: Duration::from_millis(250),
            max: Duration::from_secs(5),
        }
    }
}

/// What to do when a submitted password is in the breached dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreachedAction {
    /// Let the login through, record a signal and tell the upstream
    /// (`X-Rampart-Breached-Password: <count>` request header).
    Flag,
    Challenge,
    Block,
}

/// Guard settings.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// Counter window for IP, subnet and per-IP username counts (600 s).
    pub window_secs: u64,
    /// Window for per-username counts, longer to catch low-and-slow (3600 s).
    pub username_window_secs: u64,
    pub thresholds: Thresholds,
    pub delay: DelayPolicy,
    /// How long a blocked source stays blocked (900 s).
    pub block_secs: u64,
    /// How long a targeted username stays protected (3600 s).
    pub protect_secs: u64,
    /// Breached-password dataset and action; `None` disables the check.
    pub breached: Option<(BreachedPasswords, BreachedAction)>,
    /// Minimum dataset count for a password to count as breached (1).
    pub breached_min_count: u64,
}

impl Default for GuardOptions {
    fn default() -> Self {
        GuardOptions {
            window_secs: 600,
            username_window_secs: 3600,
            thresholds: Thresholds::default(),
            delay: DelayPolicy::default(),
            block_secs: 900,
            protect_secs: 3600,
            breached: None,
            breached_min_count: 1,
        }
    }
}

/// Pseudonymous username key (keyed hash): counters never hold usernames.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserKey(String);

/// The guard's answer for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardAction {
    Allow,
    Challenge(&'static str),
    Block(&'static str),
}

/// Result of checking one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptVerdict {
    pub action: GuardAction,
    /// Every signal seen, for logs (the action's reason is among them).
    pub signals: Vec<&'static str>,
    /// Breach count of the submitted password, when breached.
    pub breached: Option<u64>,
}

/// State before the body is read: blocked, or how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreCheck {
    pub blocked: bool,
    pub delay: Duration,
}

#[derive(Debug, Default)]
struct GlobalRate {
    minute: u64,
    count: u64,
    baseline: f64,
}

/// The guard. One per protected login route.
pub struct LoginGuard {
    options: GuardOptions,
    store: Arc<dyn CounterStore>,
    user_key: hmac::Key,
    global: Mutex<GlobalRate>,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// EWMA weight of the newest minute in the global baseline.
const EWMA_ALPHA: f64 = 0.2;

impl LoginGuard {
    /// `username_secret`: key for hashing usernames (≥ 32 random bytes,
    /// shared across nodes so counters agree).
    pub fn new(
        options: GuardOptions,
        store: Arc<dyn CounterStore>,
        username_secret: &[u8],
    ) -> Self {
        LoginGuard {
            options,
            store,
            user_key: hmac::Key::new(hmac::HMAC_SHA256, username_secret),
            global: Mutex::new(GlobalRate::default()),
        }
    }

    pub fn options(&self) -> &GuardOptions {
        &self.options
    }

    /// Keyed hash of a username (trimmed, lowercased).
    pub fn user_key(&self, username: &str) -> UserKey {
        let normalised = username.trim().to_lowercase();
        let tag = hmac::sign(&self.user_key, normalised.as_bytes());
        UserKey(hex(&tag.as_ref()[..16]))
    }

    /// Before the body: is the source blocked, and how long should it wait?
    pub fn pre_check(&self, ip: IpAddr, now: u64) -> PreCheck {
        let ip = canonical(ip);
        let blocked = self.marked(&format!("blk:{ip}"), now);
        let failures = self.get(&format!("ip:{ip}:fail"), self.options.window_secs, now);
        PreCheck {
            blocked,
            delay: self.delay_for(failures),
        }
    }

    fn delay_for(&self, failures: u64) -> Duration {
        let d = &self.options.delay;
        if failures < d.after_failures {
            return Duration::ZERO;
        }
        let exp = (failures - d.after_failures).min(16) as u32;
        d.base.saturating_mul(1u32 << exp).min(d.max)
    }

    /// Records an attempt and decides. `cleared`: the client holds a valid
    /// clearance (passed a challenge), so challenges are not repeated.
    pub fn on_attempt(
        &self,
        ip: IpAddr,
        user: &UserKey,
        password: Option<&[u8]>,
        cleared: bool,
        now: u64,
    ) -> AttemptVerdict {
        let ip = canonical(ip);
        let w = self.options.window_secs;
        let mut signals = Vec::new();
        let spike = self.global_spike(now);
        if spike {
            signals.push("login_global_failure_spike");
        }
        let t = self.effective_thresholds(spike);
        let attempts = self.incr(&format!("ip:{ip}:att"), w, now);
        let distinct_users = self.distinct(&format!("ip:{ip}:users"), user_member(user), w, now);
        self.distinct(
            &format!("user:{}:ips", user.0),
            mix64(ip_member(ip)),
            self.options.username_window_secs,
            now,
        );
        let successes = self.get(&format!("ip:{ip}:ok"), w, now);
        let subnet_failures = self.get(&subnet_key(ip), w, now);
        let protected = self.marked(&format!("prot:{}", user.0), now);

        let mut block = None;
        let mut challenge = None;
        if distinct_users >= t.ip_distinct_users_block {
            signals.push("login_many_usernames");
            block = Some("login_many_usernames");
            self.set_mark(&format!("blk:{ip}"), now + self.options.block_secs);
        } else if distinct_users >= t.ip_distinct_users_challenge {
            signals.push("login_many_usernames");
            challenge = challenge.or(Some("login_many_usernames"));
        }
        if attempts >= t.low_success_min_attempts
            && (successes as f64) < t.low_success_ratio * attempts as f64
        {
            signals.push("login_low_success");
            challenge = challenge.or(Some("login_low_success"));
        }
        if subnet_failures >= t.subnet_failures_challenge {
            signals.push("login_subnet_failures");
            challenge = challenge.or(Some("login_subnet_failures"));
        }
        if protected {
            signals.push("login_username_protected");
            challenge = challenge.or(Some("login_username_protected"));
        }
        let breached = self.breached_count(password);
        if let (Some(_), Some((_, action))) = (breached, &self.options.breached) {
            signals.push("breached_password");
            match action {
                BreachedAction::Block => block = block.or(Some("breached_password")),
                BreachedAction::Challenge => challenge = challenge.or(Some("breached_password")),
                BreachedAction::Flag => {}
            }
        }
        let action = match (block, challenge) {
            (Some(r), _) => GuardAction::Block(r),
            (None, Some(r)) if !cleared || r == "breached_password" => GuardAction::Challenge(r),
            _ => GuardAction::Allow,
        };
        AttemptVerdict {
            action,
            signals,
            breached,
        }
    }

    fn breached_count(&self, password: Option<&[u8]>) -> Option<u64> {
        let (set, _) = self.options.breached.as_ref()?;
        match set.count(password?) {
            Ok(n) if n >= self.options.breached_min_count.max(1) => Some(n),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "breached-password lookup failed");
                None
            }
        }
    }

    /// Records the outcome of an attempt (from the upstream's answer).
    pub fn on_outcome(&self, ip: IpAddr, user: &UserKey, success: bool, now: u64) {
        let ip = canonical(ip);
        let w = self.options.window_secs;
        if success {
            self.incr(&format!("ip:{ip}:ok"), w, now);
            return;
        }
        let ip_failures = self.incr(&format!("ip:{ip}:fail"), w, now);
        self.incr(&subnet_key(ip), w, now);
        self.record_global_failure(now);
        let spike = self.global_spike(now);
        let t = self.effective_thresholds(spike);
        if ip_failures >= t.ip_failures_block {
            self.set_mark(&format!("blk:{ip}"), now + self.options.block_secs);
        }
        let uw = self.options.username_window_secs;
        let user_failures = self.incr(&format!("user:{}:fail", user.0), uw, now);
        if user_failures >= t.username_failures_protect {
            let ips = self.get_distinct(&format!("user:{}:ips", user.0), uw, now);
            if ips >= t.username_distinct_ips_protect {
                self.set_mark(&format!("prot:{}", user.0), now + self.options.protect_secs);
            }
        }
    }

    fn effective_thresholds(&self, spike: bool) -> Thresholds {
        let mut t = self.options.thresholds.clone();
        if spike {
            let half = |v: &mut u64| *v = (*v / 2).max(1);
            half(&mut t.ip_distinct_users_challenge);
            half(&mut t.ip_distinct_users_block);
            half(&mut t.ip_failures_block);
            half(&mut t.subnet_failures_challenge);
        }
        t
    }

    fn record_global_failure(&self, now: u64) {
        let minute = now / 60;
        let mut g = self.global.lock().unwrap_or_else(|p| p.into_inner());
        roll_minutes(&mut g, minute);
        g.count += 1;
    }

    /// Whether this minute's failures are far above the baseline.
    pub fn global_spike(&self, now: u64) -> bool {
        let mut g = self.global.lock().unwrap_or_else(|p| p.into_inner());
        roll_minutes(&mut g, now / 60);
        let t = &self.options.thresholds;
        g.count >= t.global_spike_min_per_minute
            && g.count as f64 > t.global_spike_factor * g.baseline
    }

    fn incr(&self, key: &str, window: u64, now: u64) -> u64 {
        self.store.incr(key, 1, window, now).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "login guard counter store failed");
            0
        })
    }

    fn get(&self, key: &str, window: u64, now: u64) -> u64 {
        self.store.get(key, window, now).unwrap_or(0)
    }

    fn distinct(&self, key: &str, member: u64, window: u64, now: u64) -> u64 {
        self.store
            .add_distinct(key, member, window, now)
            .unwrap_or(0)
    }

    fn get_distinct(&self, key: &str, window: u64, now: u64) -> u64 {
        self.store.count_distinct(key, window, now).unwrap_or(0)
    }

    fn marked(&self, key: &str, now: u64) -> bool {
        self.store.is_marked(key, now).unwrap_or(false)
    }

    fn set_mark(&self, key: &str, until: u64) {
        if let Err(e) = self.store.mark(key, until) {
            tracing::warn!(error = %e, "login guard could not set a mark");
        }
    }
}

fn roll_minutes(g: &mut GlobalRate, minute: u64) {
    if g.minute == 0 {
        g.minute = minute;
        return;
    }
    if minute > g.minute {
        g.baseline = EWMA_ALPHA * g.count as f64 + (1.0 - EWMA_ALPHA) * g.baseline;
        // Quiet minutes in between decay the baseline towards zero.
        let idle = (minute - g.minute - 1).min(60) as i32;
        g.baseline *= (1.0 - EWMA_ALPHA).powi(idle);
        g.count = 0;
        g.minute = minute;
    }
}

fn subnet_key(ip: IpAddr) -> String {
    let mut s = String::from("net:");
    for b in ip_prefix(ip) {
        let _ = write!(s, "{b:02x}");
    }
    s.push_str(":fail");
    s
}

fn ip_member(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u64,
        IpAddr::V6(v6) => {
            let v = u128::from(v6);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(17)
        }
    }
}

fn user_member(user: &UserKey) -> u64 {
    // The key is hex of an HMAC: its first 16 hex digits are uniform.
    u64::from_str_radix(&user.0[..16], 16).unwrap_or(0)
}
