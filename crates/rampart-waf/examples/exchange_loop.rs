//! Runs one benchmark request through CRS a fixed number of times, for
//! instruction counts on a busy machine where wall-clock numbers are noise:
//!
//! `valgrind --tool=callgrind --toggle-collect='*run_exchanges*' \
//!   target/release/examples/exchange_loop get_3_args 1 100`
//!
//! Two warm-up exchanges run first (outside `run_exchanges`).
//! Arguments: request name (see `benches/common`), paranoia level, count.

#[path = "../benches/common/mod.rs"]
mod common;

#[inline(never)]
fn run_exchanges(rules: &rampart_waf::RuleSet, req: &common::Req, count: u32) -> usize {
    let mut blocked = 0;
    for _ in 0..count {
        blocked += usize::from(common::exchange(rules, req).is_some());
    }
    blocked
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "get_3_args".into());
    let paranoia: u8 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let count: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let rules = common::crs_rules(paranoia);
    let requests = common::requests();
    let Some(req) = requests.iter().find(|r| r.name == name) else {
        eprintln!("unknown request {name}");
        std::process::exit(2);
    };
    // Warm up: run-time regexes and the regex caches are built on first use.
    for _ in 0..2 {
        common::exchange(&rules, req);
    }
    let started = std::time::Instant::now();
    let blocked = run_exchanges(&rules, req, count);
    let per = started.elapsed() / count.max(1);
    println!("{name} PL{paranoia}: {count} exchanges, {blocked} blocked, {per:?} each");
}
