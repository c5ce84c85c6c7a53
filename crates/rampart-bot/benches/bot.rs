//! Cost per request of bot scoring and the login guard, and the rate of
//! challenge issue and verification.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Version};
use rampart_bot::binding::Binding;
use rampart_bot::clearance::Clearances;
use rampart_bot::login::{GuardOptions, LoginGuard, MemoryCounterStore};
use rampart_bot::pow::{solve, PowChallenger};
use rampart_bot::replay::MemoryReplayStore;
use rampart_bot::score::{ScoreInput, Scorer};
use rampart_bot::ua::UaClassifier;
use rampart_bot::{Key, KeyRing};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn browser_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("user-agent", HeaderValue::from_static(CHROME));
    h.insert("accept", HeaderValue::from_static("text/html,*/*;q=0.8"));
    h.insert(
        "accept-language",
        HeaderValue::from_static("en-GB,en;q=0.9"),
    );
    h.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
    h.insert(
        "sec-ch-ua",
        HeaderValue::from_static("\"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\""),
    );
    h
}

fn scoring(c: &mut Criterion) {
    let scorer = Scorer::new(Default::default(), UaClassifier::builtin());
    let browser = browser_headers();
    let mut bot = HeaderMap::new();
    bot.insert(
        "user-agent",
        HeaderValue::from_static("python-requests/2.31.0"),
    );
    let mut n = 0u32;
    for (name, headers) in [("score_browser", &browser), ("score_bot", &bot)] {
        c.bench_function(name, |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                let input = ScoreInput {
                    client_ip: IpAddr::from((n % 50_000).to_be_bytes()),
                    version: Version::HTTP_2,
                    headers,
                    ja4: Some("t13d1516h2_8daaf6152771_d8a2da3f94cd"),
                    ip_reputation: None,
                };
                black_box(scorer.score(&input))
            })
        });
    }
}

fn login_guard(c: &mut Criterion) {
    let guard = LoginGuard::new(
        GuardOptions::default(),
        Arc::new(MemoryCounterStore::default()),
        &[9u8; 32],
    );
    let mut n = 0u32;
    c.bench_function("login_attempt_and_outcome", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let ip = IpAddr::from((0x0a00_0000 | (n % 100_000)).to_be_bytes());
            let user = guard.user_key("alice@example.com");
            let v = guard.on_attempt(ip, &user, Some(b"password"), false, 1_700_000_000);
            guard.on_outcome(ip, &user, n.is_multiple_of(3), 1_700_000_000);
            black_box(v)
        })
    });
}

fn challenges(c: &mut Criterion) {
    let keys = Arc::new(KeyRing::new(Key::new("k1", &[1u8; 32]).unwrap()));
    let pow = PowChallenger::new(keys.clone(), Arc::new(MemoryReplayStore::default()), 120);
    let clearances = Clearances::new(keys, 3600);
    let binding = Binding::new("203.0.113.9".parse().unwrap(), CHROME.as_bytes());
    c.bench_function("pow_issue", |b| {
        b.iter(|| black_box(pow.issue(binding, 18)))
    });
    c.bench_function("pow_verify", |b| {
        b.iter_batched(
            || {
                let p = pow.issue(binding, 4);
                let s = solve(&p.token, 4);
                (p.token, s)
            },
            |(t, s)| black_box(pow.verify(&t, &s, binding).now_or_never()),
            BatchSize::SmallInput,
        )
    });
    let token = clearances.issue(binding);
    c.bench_function("clearance_verify", |b| {
        b.iter(|| black_box(clearances.verify(&token, binding)))
    });
}

criterion_group!(benches, scoring, login_guard, challenges);
criterion_main!(benches);
