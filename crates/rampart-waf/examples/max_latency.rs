//! The slowest single request over CRS's whole regression corpus, through
//! CRS at paranoia levels 1 and 2 (production-like setup, engine `On`),
//! and the allocations of the benchmark requests.
//!
//! `cargo run --release -p rampart-waf --example max_latency`
//!
//! Each request runs three times; its time is the fastest of the three, so
//! that a preempted run on a shared machine does not count as the engine's.

#[path = "../benches/common/mod.rs"]
mod common;
#[path = "../benches/common/corpus.rs"]
mod corpus;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let inputs = corpus::corpus(&corpus::crs_dir());
    println!("{} corpus requests", inputs.len());
    for paranoia in [1u8, 2] {
        let rules = common::crs_rules(paranoia);
        let mut times: Vec<(Duration, &str)> = inputs
            .iter()
            .map(|(label, req)| {
                let best = (0..3)
                    .map(|_| {
                        let started = Instant::now();
                        std::hint::black_box(corpus::run(&rules, req));
                        started.elapsed()
                    })
                    .min()
                    .unwrap_or_default();
                (best, label.as_str())
            })
            .collect();
        times.sort();
        let total: Duration = times.iter().map(|t| t.0).sum();
        let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)].0;
        println!(
            "PL{paranoia}: mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
            total / times.len() as u32,
            pct(50),
            pct(99),
            times.last().map(|t| t.0).unwrap_or_default()
        );
        for (time, label) in times.iter().rev().take(5) {
            println!("  {time:?}  {label}");
        }
        for req in common::requests() {
            common::exchange(&rules, &req);
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            common::exchange(&rules, &req);
            let n = ALLOCATIONS.load(Ordering::Relaxed) - before;
            println!("  allocations, {}: {n}", req.name);
        }
    }
}
