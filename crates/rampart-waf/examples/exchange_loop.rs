//! Runs one benchmark request through CRS a fixed number of times, for
//! instruction counts on a busy machine where wall-clock numbers are noise:
//!
//! `valgrind --tool=callgrind --toggle-collect='*run_exchanges*' \
//!   target/release/examples/exchange_loop get_3_args 1 100`
//!
//! `WARM_REPEATED` warm-up exchanges run first (outside `run_exchanges`):
//! the steady state of a server that has seen the request before (the
//! value memo holds its values, stretches that never get ruled out have
//! backed off).
//! Arguments: request name (see `benches/common`), paranoia level, count.
//! A rotation name (`varied_get_3_args`, `cold_get_3_args` …, see
//! `common::rotation`) sends `count` distinct requests of that kind in
//! turn instead, after a warm-up of `WARM_ROTATION` others of the same
//! kind: the steady state of a server that has seen such traffic (the
//! regex engine's lazy DFAs have built their states for such values; new
//! argument values are still new).

#[path = "../benches/common/mod.rs"]
mod common;

/// The gateway's allocator, so that the counts are those of the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exchanges of a repeated request sent before the measured ones.
const WARM_REPEATED: usize = 1000;

/// Requests of a rotation sent before the measured ones.
const WARM_ROTATION: usize = 200;

#[inline(never)]
fn run_exchanges(rules: &rampart_waf::RuleSet, reqs: &[common::Req], count: u32) -> usize {
    let mut blocked = 0;
    for req in reqs.iter().cycle().take(count as usize) {
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
    let (warm_up, measured) = match common::rotation(&name, count as usize + WARM_ROTATION) {
        Some(mut all) => {
            let measured = all.split_off(WARM_ROTATION);
            (all, measured)
        }
        None => {
            let Some(req) = common::requests().into_iter().find(|r| r.name == name) else {
                eprintln!("unknown request {name}");
                std::process::exit(2);
            };
            let again = common::requests().into_iter().find(|r| r.name == name);
            (vec![req], again.into_iter().collect())
        }
    };
    // Warm up: run-time regexes and the regex caches are built on first use.
    for req in warm_up
        .iter()
        .cycle()
        .take(WARM_REPEATED.max(warm_up.len()))
    {
        common::exchange(&rules, req);
    }
    let started = std::time::Instant::now();
    let blocked = run_exchanges(&rules, &measured, count);
    let per = started.elapsed() / count.max(1);
    println!("{name} PL{paranoia}: {count} exchanges, {blocked} blocked, {per:?} each");
}
