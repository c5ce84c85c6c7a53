//! Two gateway "instances" sharing one REAL Redis (rampart-testkit): the
//! used-token set, clearance keys and login-guard marks agree across them;
//! rotation, outage and restart behave as documented.

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_bot::captcha::CaptchaChallenger;
use rampart_bot::clearance::Clearances;
use rampart_bot::crypto::unix_now;
use rampart_bot::keys::{Clock, RotationOptions};
use rampart_bot::login::{GuardAction, GuardOptions, LoginGuard, Thresholds};
use rampart_bot::pages::Endpoints;
use rampart_bot::pow::{solve, PowChallenger, PowError};
use rampart_bot::shared::{RedisBot, RedisCounterStore, RedisKeys, RedisOptions, RedisReplayStore};
use rampart_bot::{Binding, ChallengeKit, TokenError};
use rampart_testkit::RedisServer;

const PERIOD: u64 = 1000;

/// One gateway instance: its own connection, stores, keys and guard.
struct Node {
    kit: Arc<ChallengeKit>,
    keys: Arc<RedisKeys>,
    guard: LoginGuard,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn clock(t: &Arc<AtomicU64>) -> Clock {
    let t = t.clone();
    Arc::new(move || t.load(Ordering::SeqCst))
}

/// Thresholds low enough for a test: 3 failures block an IP; 3 failures
/// on a username from 3 addresses protect it.
fn guard_options() -> GuardOptions {
    GuardOptions {
        thresholds: Thresholds {
            ip_failures_block: 3,
            username_failures_protect: 3,
            username_distinct_ips_protect: 3,
            ..Thresholds::default()
        },
        ..GuardOptions::default()
    }
}

async fn node(redis: &RedisServer, now: &Arc<AtomicU64>) -> Node {
    let mut options = RedisOptions::new(redis.url());
    options.resync_secs = 1;
    let conn = RedisBot::connect(options).await.unwrap();
    let rotation = RotationOptions {
        period_secs: PERIOD,
        refresh_secs: 1,
        clock: clock(now),
    };
    let keys = RedisKeys::start(conn.clone(), rotation).await.unwrap();
    let replay = Arc::new(RedisReplayStore::new(conn.clone()));
    let counters = RedisCounterStore::new(conn, 10_000);
    let tasks = vec![counters.spawn_sync(), keys.spawn_refresher()];
    let handle = keys.handle();
    let kit = Arc::new(ChallengeKit {
        pow: PowChallenger::new(handle.clone(), replay.clone(), 120),
        captcha: CaptchaChallenger::new(handle.clone(), replay, 300),
        clearances: Clearances::new(handle, 3600),
        endpoints: Endpoints::default(),
    });
    let guard = LoginGuard::new(guard_options(), counters, &[9u8; 32]);
    Node {
        kit,
        keys,
        guard,
        tasks,
    }
}

fn real_clock() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(unix_now()))
}

fn binding() -> Binding {
    Binding::new("203.0.113.7".parse().unwrap(), b"sdk/1.0")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns the
/// time it took.
async fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puzzle_solved_on_a_cannot_be_replayed_on_b() {
    let redis = RedisServer::start();
    let now = real_clock();
    let (a, b) = tokio::join!(node(&redis, &now), node(&redis, &now));
    let p = a.kit.pow.issue(binding(), 8);
    let s = solve(&p.token, p.difficulty);
    assert_eq!(a.kit.pow.verify(&p.token, &s, binding()).await, Ok(()));
    assert_eq!(
        b.kit.pow.verify(&p.token, &s, binding()).await,
        Err(PowError::Token(TokenError::Replayed))
    );
    // A puzzle issued by A and first redeemed on B works there, once.
    let p = a.kit.pow.issue(binding(), 8);
    let s = solve(&p.token, p.difficulty);
    assert_eq!(b.kit.pow.verify(&p.token, &s, binding()).await, Ok(()));
    assert_eq!(
        a.kit.pow.verify(&p.token, &s, binding()).await,
        Err(PowError::Token(TokenError::Replayed))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearance_issued_by_a_verifies_on_b() {
    let redis = RedisServer::start();
    let now = real_clock();
    // Started together: both race to create the epoch secrets (SET NX).
    let (a, b) = tokio::join!(node(&redis, &now), node(&redis, &now));
    let token = a.kit.clearances.issue(binding());
    assert!(b.kit.clearances.verify(&token, binding()).is_ok());
    let other = Binding::new("198.51.100.1".parse().unwrap(), b"sdk/1.0");
    assert_eq!(
        b.kit.clearances.verify(&token, other),
        Err(TokenError::WrongClient)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_blocked_by_failures_on_a_is_enforced_on_b_within_a_second() {
    let redis = RedisServer::start();
    let now = real_clock();
    let (a, b) = tokio::join!(node(&redis, &now), node(&redis, &now));
    let attacker = ip("192.0.2.50");
    let t = unix_now();
    for n in 0..3 {
        let user = a.guard.user_key(&format!("victim{n}"));
        a.guard.on_outcome(attacker, &user, false, t);
    }
    // A marks the IP locally as soon as its background count finishes...
    within(Duration::from_secs(2), || {
        a.guard.pre_check(attacker, t).blocked
    })
    .await
    .expect("A blocks the IP");
    // ...and B learns it through Redis.
    let took = within(Duration::from_secs(1), || {
        b.guard.pre_check(attacker, unix_now()).blocked
    })
    .await;
    assert!(took.is_some(), "B did not enforce A's block within 1 s");
    assert!(!b.guard.pre_check(ip("192.0.2.51"), unix_now()).blocked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_protected_on_a_is_challenged_on_b_within_a_second() {
    let redis = RedisServer::start();
    let now = real_clock();
    let (a, b) = tokio::join!(node(&redis, &now), node(&redis, &now));
    let user = a.guard.user_key("alice@example.test");
    let t = unix_now();
    // Low and slow: one failure from each of three addresses.
    for last in 1..=3 {
        let from = ip(&format!("198.51.{last}.9"));
        a.guard.on_attempt(from, &user, None, false, t);
        // Let the attempt's count land before its outcome is judged.
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.guard.on_outcome(from, &user, false, t);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = ip("203.0.113.200");
    // (Polling attempts are counted too, so judge by the signal: another
    // challenge reason may take precedence once B sees many attempts.)
    let took = within(Duration::from_secs(1), || {
        let verdict = b.guard.on_attempt(fresh, &user, None, false, unix_now());
        verdict.signals.contains(&"login_username_protected")
            && matches!(verdict.action, GuardAction::Challenge(_))
    })
    .await;
    assert!(took.is_some(), "B did not protect the username within 1 s");
    let other = b.guard.user_key("bob@example.test");
    let verdict = b
        .guard
        .on_attempt(ip("203.0.113.201"), &other, None, false, unix_now());
    assert_eq!(verdict.action, GuardAction::Allow, "{verdict:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_previous_epoch_and_drops_older() {
    let redis = RedisServer::start();
    let start = (unix_now() / PERIOD) * PERIOD + 10;
    let now = Arc::new(AtomicU64::new(start));
    let (a, b) = tokio::join!(node(&redis, &now), node(&redis, &now));
    let ring = a.keys.handle().load();
    let old = ring.seal("clr", b"old");
    let first = ring.current().id().to_string();

    now.store(start + PERIOD, Ordering::SeqCst);
    a.keys.refresh().await.unwrap();
    b.keys.refresh().await.unwrap();
    let a_ring = a.keys.handle().load();
    assert_ne!(a_ring.current().id(), first, "rotated");
    assert_eq!(a_ring.current().id(), b.keys.handle().load().current().id());
    let new = a_ring.seal("clr", b"new");
    let b_ring = b.keys.handle().load();
    assert_eq!(b_ring.open("clr", &old).unwrap(), b"old", "previous epoch");
    assert_eq!(b_ring.open("clr", &new).unwrap(), b"new");

    now.store(start + 2 * PERIOD, Ordering::SeqCst);
    b.keys.refresh().await.unwrap();
    let b_ring = b.keys.handle().load();
    assert_eq!(b_ring.open("clr", &old), Err(TokenError::UnknownKey));
    assert_eq!(b_ring.open("clr", &new).unwrap(), b"new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_closed_for_tokens_and_open_for_counting_then_recovers() {
    let mut redis = RedisServer::start();
    let now = real_clock();
    let (a, b) = tokio::join!(node(&redis, &now), node(&redis, &now));
    let clearance = a.kit.clearances.issue(binding());
    let p = a.kit.pow.issue(binding(), 8);
    let s = solve(&p.token, p.difficulty);

    redis.stop();
    // Replay consumption fails closed: the solution is refused, no panic.
    assert_eq!(
        a.kit.pow.verify(&p.token, &s, binding()).await,
        Err(PowError::Token(TokenError::StoreUnavailable))
    );
    // Clearances need no store: still valid on both nodes.
    assert!(b.kit.clearances.verify(&clearance, binding()).is_ok());
    // Counting fails open: attempts are allowed, nothing is blocked.
    let attacker = ip("192.0.2.77");
    let t = unix_now();
    for n in 0..5 {
        let user = a.guard.user_key(&format!("u{n}"));
        assert_eq!(
            a.guard.on_attempt(attacker, &user, None, false, t).action,
            GuardAction::Allow
        );
        a.guard.on_outcome(attacker, &user, false, t);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!b.guard.pre_check(attacker, unix_now()).blocked);
    assert!(
        a.keys.refresh().await.is_err(),
        "refresh reports the outage"
    );
    assert!(a.kit.clearances.verify(&clearance, binding()).is_ok());

    redis.restart();
    // The same puzzle (never redeemed) now verifies: no restart needed.
    let mut verified = false;
    for _ in 0..50 {
        if a.kit.pow.verify(&p.token, &s, binding()).await.is_ok() {
            verified = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(verified, "replay store recovered after the restart");
    // Keys: Redis lost them (no persistence); the nodes write back theirs,
    // so clearances keep verifying across the fleet.
    // (A node's first command after the outage may fail while its
    // connection is re-established, as the refresher's next tick would.)
    for keys in [&a.keys, &b.keys] {
        let mut refreshed = false;
        for _ in 0..50 {
            if keys.refresh().await.is_ok() {
                refreshed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(refreshed, "key refresh recovered after the restart");
    }
    let token = b.kit.clearances.issue(binding());
    assert!(a.kit.clearances.verify(&token, binding()).is_ok());
    // Marks flow again once the sync tasks have resubscribed.
    let t = unix_now();
    for n in 0..3 {
        let user = a.guard.user_key(&format!("again{n}"));
        a.guard.on_outcome(attacker, &user, false, t);
    }
    let took = within(Duration::from_secs(10), || {
        b.guard.pre_check(attacker, unix_now()).blocked
    })
    .await;
    assert!(took.is_some(), "marks propagate again after the restart");
}
