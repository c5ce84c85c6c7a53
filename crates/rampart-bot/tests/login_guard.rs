//! Simulated credential-stuffing runs against the login guard, and the
//! filter's request/response flow.

mod common;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{ctx, head};
use http::{Method, StatusCode};
use rampart_bot::login::{
    CredentialSource, DelayPolicy, GuardAction, GuardOptions, LoginGuard, LoginGuardFilter,
    LoginOptions, MemoryCounterStore,
};
use rampart_core::{Decision, Filter, Verdict};

fn guard() -> LoginGuard {
    LoginGuard::new(
        GuardOptions::default(),
        Arc::new(MemoryCounterStore::default()),
        &[7u8; 32],
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One attempt: check, then (if let through) record the upstream outcome.
fn attempt(g: &LoginGuard, from: IpAddr, user: &str, ok: bool, now: u64) -> GuardAction {
    let key = g.user_key(user);
    let v = g.on_attempt(from, &key, Some(b"pw"), false, now);
    if v.action == GuardAction::Allow {
        g.on_outcome(from, &key, ok, now);
    }
    v.action
}

#[test]
fn stuffing_from_a_handful_of_ips_is_stopped_and_real_user_logs_in() {
    let g = guard();
    let attackers: Vec<IpAddr> = (1..=5).map(|i| ip(&format!("198.51.100.{i}"))).collect();
    let now = 1_700_000_000;
    let mut let_through = 0;
    for n in 0..3000 {
        let from = attackers[n % attackers.len()];
        if attempt(
            &g,
            from,
            &format!("user{n}@example.com"),
            false,
            now + n as u64 / 100,
        ) == GuardAction::Allow
        {
            let_through += 1;
        }
    }
    // Each IP gets a few usernames before being challenged, then blocked.
    assert!(
        let_through <= 5 * 8,
        "{let_through} attempts reached the upstream"
    );
    for a in &attackers {
        assert!(g.pre_check(*a, now + 30).blocked, "{a} should be blocked");
    }
    // Meanwhile a real user from elsewhere logs in at first try.
    assert_eq!(
        attempt(&g, ip("203.0.113.8"), "alice@example.com", true, now + 30),
        GuardAction::Allow
    );
    assert!(!g.pre_check(ip("203.0.113.8"), now + 30).blocked);
}

#[test]
fn distributed_stuffing_raises_global_spike_and_real_user_still_logs_in() {
    let g = guard();
    let base = 1_700_000_000 - (1_700_000_000 % 60);
    // Ten quiet minutes: a few typos a minute build the baseline.
    for m in 0..10u64 {
        for k in 0..5u64 {
            let from = ip(&format!("10.{m}.{k}.1"));
            attempt(&g, from, &format!("typo{m}-{k}"), false, base + m * 60 + k);
        }
    }
    // Then 2000 pairs from 1000 addresses across many networks in a minute.
    let t = base + 10 * 60;
    for n in 0..2000u64 {
        let from = ip(&format!(
            "100.{}.{}.{}",
            64 + n % 50,
            (n / 50) % 250,
            1 + n % 7
        ));
        attempt(&g, from, &format!("victim{n}"), false, t + n / 100);
    }
    assert!(
        g.global_spike(t + 25),
        "global failure spike should be detected"
    );
    let v = g.on_attempt(
        ip("203.0.113.9"),
        &g.user_key("bob"),
        Some(b"pw"),
        false,
        t + 25,
    );
    assert!(v.signals.contains(&"login_global_failure_spike"));
    assert_eq!(
        v.action,
        GuardAction::Allow,
        "a normal user is not challenged"
    );
}

#[test]
fn low_and_slow_on_one_username_protects_it_without_locking_out() {
    let g = guard();
    let now = 1_700_000_000;
    for i in 0..12u64 {
        attempt(
            &g,
            ip(&format!("192.0.{i}.9")),
            "ceo@example.com",
            false,
            now + i * 200,
        );
    }
    let key = g.user_key("CEO@example.com ");
    let v = g.on_attempt(ip("203.0.113.50"), &key, Some(b"pw"), false, now + 2500);
    assert_eq!(v.action, GuardAction::Challenge("login_username_protected"));
    // After passing a challenge the real owner gets through.
    let v = g.on_attempt(ip("203.0.113.50"), &key, Some(b"pw"), true, now + 2500);
    assert_eq!(v.action, GuardAction::Allow);
    // Other usernames are unaffected.
    let v = g.on_attempt(
        ip("203.0.113.50"),
        &g.user_key("dave"),
        Some(b"pw"),
        false,
        now + 2500,
    );
    assert_eq!(v.action, GuardAction::Allow);
}

#[test]
fn low_success_ratio_is_challenged() {
    let g = guard();
    let now = 1_700_000_000;
    let from = ip("192.0.2.33");
    // Few usernames, many failures: password spraying on a small list.
    for n in 0..25u64 {
        attempt(&g, from, &format!("u{}", n % 4), false, now + n);
    }
    let v = g.on_attempt(from, &g.user_key("u1"), Some(b"pw"), false, now + 30);
    assert!(v.signals.contains(&"login_low_success"), "{v:?}");
    assert!(matches!(v.action, GuardAction::Challenge(_)));
}

#[test]
fn progressive_delay_grows_with_failures() {
    let g = guard();
    let now = 1_700_000_000;
    let from = ip("192.0.2.44");
    let key = g.user_key("x");
    assert!(g.pre_check(from, now).delay.is_zero());
    let mut last = std::time::Duration::ZERO;
    for _ in 0..6 {
        g.on_outcome(from, &key, false, now);
        let d = g.pre_check(from, now).delay;
        assert!(d >= last);
        last = d;
    }
    assert_eq!(last, std::time::Duration::from_millis(250 * 8));
}

#[tokio::test]
async fn filter_reads_json_body_and_counts_status_outcome() {
    let g = Arc::new(LoginGuard::new(
        GuardOptions {
            delay: DelayPolicy {
                after_failures: 3,
                base: std::time::Duration::from_millis(1),
                max: std::time::Duration::from_millis(5),
            },
            ..GuardOptions::default()
        },
        Arc::new(MemoryCounterStore::default()),
        &[7u8; 32],
    ));
    let f = LoginGuardFilter::new(
        g.clone(),
        LoginOptions::new(
            "/login",
            CredentialSource::Json {
                username: "email".into(),
                password: "password".into(),
            },
        ),
    );
    assert!(f.body_interest().hold_request > 0);
    let from = "198.51.100.200";
    for n in 0..20 {
        let mut c = ctx(from);
        c.has_request_body = true;
        let mut h = head(
            Method::POST,
            "/login",
            &[("content-type", "application/json")],
        );
        let d = f.request_headers(&mut c, &mut h).resolve().await;
        if let Decision::Deny(d) = d {
            assert_eq!(d.reason, "login_source_blocked");
            return;
        }
        let body = format!(r#"{{"email":"user{n}@x.test","password":"pw{n}"}}"#);
        let d = f.request_body(&mut c, &Bytes::from(body), true);
        match d {
            Decision::Continue => {
                let mut resp = http::Response::new(()).into_parts().0;
                resp.status = StatusCode::UNAUTHORIZED;
                f.response_headers(&mut c, &mut resp);
            }
            Decision::Challenge { reason, .. } => {
                assert_eq!(reason, "login_many_usernames");
                assert!(n >= 7, "challenged only after several usernames (n={n})");
                return;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("stuffing through the filter was never challenged");
}

#[tokio::test]
async fn other_routes_are_ignored() {
    let f = LoginGuardFilter::new(
        Arc::new(guard()),
        LoginOptions::new("/login", CredentialSource::BasicAuth),
    );
    let mut c = ctx("192.0.2.1");
    let mut h = head(Method::POST, "/logout", &[]);
    assert_eq!(
        f.request_headers(&mut c, &mut h).resolve().await,
        Decision::Continue
    );
    assert!(matches!(
        f.request_headers(&mut c, &mut h),
        Verdict::Ready(_)
    ));
}

#[tokio::test]
async fn with_a_kit_the_challenge_is_a_page_in_the_denial_and_clearance_passes() {
    let kit = common::kit();
    let fast_delays = GuardOptions {
        delay: DelayPolicy {
            after_failures: 3,
            base: std::time::Duration::from_millis(1),
            max: std::time::Duration::from_millis(5),
        },
        ..GuardOptions::default()
    };
    let store = Arc::new(MemoryCounterStore::default());
    let f = LoginGuardFilter::new(
        Arc::new(LoginGuard::new(fast_delays, store, &[7u8; 32])),
        LoginOptions::new(
            "/login",
            CredentialSource::Json {
                username: "email".into(),
                password: "password".into(),
            },
        ),
    )
    .with_challenges(kit.clone());
    let from = "198.51.100.210";
    let ua = "python-requests/2.31.0";
    let attempt = |n: usize, cookie: Option<String>| {
        let f = &f;
        async move {
            let mut c = ctx(from);
            c.has_request_body = true;
            let mut headers = vec![("content-type", "application/json"), ("user-agent", ua)];
            let cookie = cookie.unwrap_or_default();
            if !cookie.is_empty() {
                headers.push(("cookie", cookie.as_str()));
            }
            let mut h = head(Method::POST, "/login", &headers);
            let pre = f.request_headers(&mut c, &mut h).resolve().await;
            assert_eq!(pre, Decision::Continue);
            let body = format!(r#"{{"email":"user{n}@x.test","password":"pw"}}"#);
            let d = f.request_body(&mut c, &Bytes::from(body), true);
            if d == Decision::Continue {
                let mut resp = http::Response::new(()).into_parts().0;
                resp.status = StatusCode::UNAUTHORIZED;
                f.response_headers(&mut c, &mut resp);
            }
            d
        }
    };
    let mut challenged = None;
    for n in 0..12 {
        if let Decision::Deny(d) = attempt(n, None).await {
            challenged = Some(d);
            break;
        }
    }
    let d = challenged.expect("stuffing was challenged");
    assert_eq!(d.reason, "login_many_usernames");
    assert_eq!(d.status, StatusCode::FORBIDDEN);
    let resp = rampart_core::respond::render_as(&d, "rid", false);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["x-rampart-challenge"], "pow");
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        json["puzzle"],
        resp.headers()["x-rampart-puzzle"].to_str().unwrap()
    );
    // A client holding a clearance is let through the challenge.
    let binding = rampart_bot::Binding::new(ip(from), ua.as_bytes());
    let cookie = format!("__rampart_clearance={}", kit.clearances.issue(binding));
    assert_eq!(attempt(99, Some(cookie)).await, Decision::Continue);
}
