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
//!   baseline — thresholds are halved while it lasts (per node).
//!
//! Counting is asynchronous and its conclusions are *marks*: when a count
//! crosses a threshold the guard sets a mark (`blk:<ip>`, `prot:<user>`,
//! `chl:users:<ip>`, `chl:ratio:<ip>`, `chl:net:<prefix>`) in the
//! [`CounterStore`], and every decision reads marks from the store's local
//! mirror, so filter hooks never wait on the network. With the in-memory
//! store the counting finishes inline and the attempt that crosses a
//! threshold is judged by it; with a shared store the counting runs in a
//! bounded background task and takes effect from the next attempt (on
//! every node, once the mark has propagated).

use std::fmt::Write as _;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Semaphore;

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
    /// Background counting tasks allowed in flight (shared stores only)
    /// before new updates are dropped and counted as
    /// `rampart_bot_store_errors_total{kind="overloaded"}` (256).
    pub max_background_tasks: usize,
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
            max_background_tasks: 256,
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
    inner: Arc<Inner>,
    tasks: Arc<Semaphore>,
}

struct Inner {
    options: GuardOptions,
    store: Arc<dyn CounterStore>,
    user_key: hmac::Key,
    global: Mutex<GlobalRate>,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// EWMA weight of the newest minute in the global baseline.
const EWMA_ALPHA: f64 = 0.2;
/// Longest life of one background counting task.
const TASK_TIMEOUT: Duration = Duration::from_secs(2);

/// What one round of counting concluded (inline runs only).
#[derive(Debug, Default)]
struct Detection {
    block: Option<&'static str>,
    signals: Vec<&'static str>,
}

impl LoginGuard {
    /// `username_secret`: key for hashing usernames (≥ 32 random bytes,
    /// shared across nodes so counters agree).
    pub fn new(
        options: GuardOptions,
        store: Arc<dyn CounterStore>,
        username_secret: &[u8],
    ) -> Self {
        let tasks = Arc::new(Semaphore::new(options.max_background_tasks.max(1)));
        LoginGuard {
            inner: Arc::new(Inner {
                options,
                store,
                user_key: hmac::Key::new(hmac::HMAC_SHA256, username_secret),
                global: Mutex::new(GlobalRate::default()),
            }),
            tasks,
        }
    }

    pub fn options(&self) -> &GuardOptions {
        &self.inner.options
    }

    /// Keyed hash of a username (trimmed, lowercased).
    pub fn user_key(&self, username: &str) -> UserKey {
        let normalised = username.trim().to_lowercase();
        let tag = hmac::sign(&self.inner.user_key, normalised.as_bytes());
        UserKey(hex(&tag.as_ref()[..16]))
    }

    /// Before the body: is the source blocked, and how long should it wait?
    /// Local state only.
    pub fn pre_check(&self, ip: IpAddr, now: u64) -> PreCheck {
        let ip = canonical(ip);
        let store = &self.inner.store;
        let blocked = store.is_marked(&format!("blk:{ip}"), now);
        let failures = store.peek(
            &format!("ip:{ip}:fail"),
            self.inner.options.window_secs,
            now,
        );
        PreCheck {
            blocked,
            delay: self.delay_for(failures),
        }
    }

    fn delay_for(&self, failures: u64) -> Duration {
        let d = &self.inner.options.delay;
        if failures < d.after_failures {
            return Duration::ZERO;
        }
        let exp = (failures - d.after_failures).min(16) as u32;
        d.base.saturating_mul(1u32 << exp).min(d.max)
    }

    /// Records an attempt and decides. `cleared`: the client holds a valid
    /// clearance (passed a challenge), so challenges are not repeated.
    /// Never waits on the network (see the module notes).
    pub fn on_attempt(
        &self,
        ip: IpAddr,
        user: &UserKey,
        password: Option<&[u8]>,
        cleared: bool,
        now: u64,
    ) -> AttemptVerdict {
        let ip = canonical(ip);
        let mut signals = Vec::new();
        let spike = self.inner.global_spike(now);
        if spike {
            signals.push("login_global_failure_spike");
        }
        let counting = self
            .inner
            .clone()
            .count_attempt(ip, user.clone(), spike, now);
        let fresh = self.run(counting).unwrap_or_default();
        let mut block = fresh.block;
        for s in fresh.signals {
            push_unique(&mut signals, s);
        }
        let store = &self.inner.store;
        if store.is_marked(&format!("blk:{ip}"), now) && block.is_none() {
            push_unique(&mut signals, "login_source_blocked");
            block = Some("login_source_blocked");
        }
        let mut challenge = None;
        for (key, reason) in challenge_marks(ip, user) {
            if store.is_marked(&key, now) {
                push_unique(&mut signals, reason);
                challenge = challenge.or(Some(reason));
            }
        }
        let breached = self.breached_count(password);
        if let (Some(_), Some((_, action))) = (breached, &self.inner.options.breached) {
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
        let (set, _) = self.inner.options.breached.as_ref()?;
        match set.count(password?) {
            Ok(n) if n >= self.inner.options.breached_min_count.max(1) => Some(n),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "breached-password lookup failed");
                None
            }
        }
    }

    /// Records the outcome of an attempt (from the upstream's answer).
    /// Never waits on the network.
    pub fn on_outcome(&self, ip: IpAddr, user: &UserKey, success: bool, now: u64) {
        let ip = canonical(ip);
        if !success {
            self.inner.record_global_failure(now);
        }
        let counting = self
            .inner
            .clone()
            .count_outcome(ip, user.clone(), success, now);
        self.run(counting);
    }

    /// Whether this minute's failures (on this node) are far above the
    /// baseline.
    pub fn global_spike(&self, now: u64) -> bool {
        self.inner.global_spike(now)
    }

    /// Runs `work` inline when it completes at once (in-memory store), else
    /// as a background task (bounded in number and time). Returns its
    /// output only when it ran inline.
    fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let mut work = Box::pin(work);
        if let Poll::Ready(out) = work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return Some(out);
        }
        let (Ok(permit), Ok(runtime)) = (
            self.tasks.clone().try_acquire_owned(),
            tokio::runtime::Handle::try_current(),
        ) else {
            crate::shared::record_store_error("overloaded");
            return None;
        };
        runtime.spawn(async move {
            let _permit = permit;
            if tokio::time::timeout(TASK_TIMEOUT, work).await.is_err() {
                crate::shared::record_store_error("counter");
            }
        });
        None
    }
}

/// Marks that turn an attempt into a challenge, with their reasons, in
/// order of precedence.
fn challenge_marks(ip: IpAddr, user: &UserKey) -> [(String, &'static str); 4] {
    [
        (format!("chl:users:{ip}"), "login_many_usernames"),
        (format!("chl:ratio:{ip}"), "login_low_success"),
        (format!("chl:{}", subnet_id(ip)), "login_subnet_failures"),
        (format!("prot:{}", user.0), "login_username_protected"),
    ]
}

fn push_unique(signals: &mut Vec<&'static str>, s: &'static str) {
    if !signals.contains(&s) {
        signals.push(s);
    }
}

impl Inner {
    /// Counts an attempt and sets the marks its counts call for.
    async fn count_attempt(
        self: Arc<Self>,
        ip: IpAddr,
        user: UserKey,
        spike: bool,
        now: u64,
    ) -> Detection {
        let w = self.options.window_secs;
        let t = self.effective_thresholds(spike);
        let store = &self.store;
        let (attempts, distinct_users, ips, successes, subnet_failures) = tokio::join!(
            store.incr(format!("ip:{ip}:att"), 1, w, now),
            store.add_distinct(format!("ip:{ip}:users"), user_member(&user), w, now),
            store.add_distinct(
                format!("user:{}:ips", user.0),
                mix64(ip_member(ip)),
                self.options.username_window_secs,
                now,
            ),
            store.get(format!("ip:{ip}:ok"), w, now),
            store.get(format!("{}:fail", subnet_id(ip)), w, now),
        );
        let _ = or_zero(ips);
        let (attempts, distinct_users) = (or_zero(attempts), or_zero(distinct_users));
        let (successes, subnet_failures) = (or_zero(successes), or_zero(subnet_failures));
        let window_end = (now / w.max(1) + 1) * w.max(1);
        let mut d = Detection::default();
        if distinct_users >= t.ip_distinct_users_block {
            d.signals.push("login_many_usernames");
            d.block = Some("login_many_usernames");
            self.set_mark(format!("blk:{ip}"), now + self.options.block_secs)
                .await;
        } else if distinct_users >= t.ip_distinct_users_challenge {
            d.signals.push("login_many_usernames");
            self.set_mark(format!("chl:users:{ip}"), window_end).await;
        }
        if attempts >= t.low_success_min_attempts
            && (successes as f64) < t.low_success_ratio * attempts as f64
        {
            d.signals.push("login_low_success");
            self.set_mark(format!("chl:ratio:{ip}"), window_end).await;
        }
        if subnet_failures >= t.subnet_failures_challenge {
            d.signals.push("login_subnet_failures");
            self.set_mark(format!("chl:{}", subnet_id(ip)), window_end)
                .await;
        }
        d
    }

    /// Counts an outcome and sets the marks its counts call for.
    async fn count_outcome(self: Arc<Self>, ip: IpAddr, user: UserKey, success: bool, now: u64) {
        let w = self.options.window_secs;
        let store = &self.store;
        if success {
            let _ = or_zero(store.incr(format!("ip:{ip}:ok"), 1, w, now).await);
            return;
        }
        let uw = self.options.username_window_secs;
        let (ip_failures, subnet, user_failures) = tokio::join!(
            store.incr(format!("ip:{ip}:fail"), 1, w, now),
            store.incr(format!("{}:fail", subnet_id(ip)), 1, w, now),
            store.incr(format!("user:{}:fail", user.0), 1, uw, now),
        );
        let _ = or_zero(subnet);
        let t = self.effective_thresholds(self.global_spike(now));
        if or_zero(ip_failures) >= t.ip_failures_block {
            self.set_mark(format!("blk:{ip}"), now + self.options.block_secs)
                .await;
        }
        if or_zero(user_failures) >= t.username_failures_protect {
            let ips = or_zero(
                store
                    .count_distinct(format!("user:{}:ips", user.0), uw, now)
                    .await,
            );
            if ips >= t.username_distinct_ips_protect {
                self.set_mark(format!("prot:{}", user.0), now + self.options.protect_secs)
                    .await;
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

    fn global_spike(&self, now: u64) -> bool {
        let mut g = self.global.lock().unwrap_or_else(|p| p.into_inner());
        roll_minutes(&mut g, now / 60);
        let t = &self.options.thresholds;
        g.count >= t.global_spike_min_per_minute
            && g.count as f64 > t.global_spike_factor * g.baseline
    }

    async fn set_mark(&self, key: String, until: u64) {
        if let Err(e) = self.store.mark(key, until).await {
            crate::shared::record_store_error("mark");
            tracing::warn!(error = %e, "login guard could not share a mark");
        }
    }
}

/// A counter's value, or 0 when the store failed (counting fails open).
fn or_zero(r: Result<u64, crate::replay::StoreError>) -> u64 {
    r.unwrap_or_else(|e| {
        crate::shared::record_store_error("counter");
        tracing::debug!(error = %e, "login guard counter store failed");
        0
    })
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

/// `net:<prefix hex>`: the /24 (/64) of `ip`.
fn subnet_id(ip: IpAddr) -> String {
    let mut s = String::from("net:");
    for b in ip_prefix(ip) {
        let _ = write!(s, "{b:02x}");
    }
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
