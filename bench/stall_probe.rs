//! Host-noise probe for the load benchmarks: spins on one CPU for a fixed
//! time, reading the monotonic clock, and reports how much of that time the
//! thread did not run (gaps over 100 µs between two reads).
//!
//! On a virtual machine the hypervisor deschedules virtual CPUs for
//! milliseconds at a time; such stalls hit every process on the CPU alike and
//! decide a closed-loop benchmark's p99. bench/run.sh prints this probe's
//! figures next to the latencies so a reader can tell the host's tail from the
//! proxy's. Built by bench/run.sh with plain `rustc -O`; no dependencies.
//!
//! Usage: stall_probe SECONDS   (one line: lost %, gap counts, longest gap)

use std::time::{Duration, Instant};

/// A gap between two clock reads longer than this means the thread was off
/// the CPU (a read takes tens of nanoseconds).
const GAP: Duration = Duration::from_micros(100);

fn main() {
    let seconds: f64 = match std::env::args().nth(1).map(|s| s.parse()) {
        Some(Ok(s)) if (0.1..=60.0).contains(&s) => s,
        _ => {
            eprintln!("usage: stall_probe SECONDS (0.1..60)");
            std::process::exit(2);
        }
    };
    let length = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let (mut last, mut lost, mut longest) = (start, Duration::ZERO, Duration::ZERO);
    let (mut gaps, mut gaps_over_1ms) = (0u64, 0u64);
    while last - start < length {
        let now = Instant::now();
        let gap = now - last;
        if gap > GAP {
            gaps += 1;
            lost += gap;
            longest = longest.max(gap);
            if gap > Duration::from_millis(1) {
                gaps_over_1ms += 1;
            }
        }
        last = now;
    }
    println!(
        "lost {:.2}% of {:.1}s in {} gaps over 100us ({} over 1ms), longest {:.2} ms",
        100.0 * lost.as_secs_f64() / (last - start).as_secs_f64(),
        (last - start).as_secs_f64(),
        gaps,
        gaps_over_1ms,
        longest.as_secs_f64() * 1e3
    );
}
