//! Criterion benchmarks for `detect_sqli` / `detect_xss` on the input sizes the WAF sees most,
//! with the `libinjectionrs` port's SQLi entry points alongside for comparison.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

/// 70 bytes of ordinary form text.
const BENIGN_70: &[u8] = b"Please ship the blue jacket to my office at 42 Elm Street. Thanks, Ann";
/// 70 bytes of a classic UNION-based SQL injection.
const SQLI_70: &[u8] = b"1' UNION SELECT username, password FROM users WHERE '1'='1' -- comment";

fn benign_1k() -> Vec<u8> {
    let para =
        b"Our team reviewed the quarterly report and agreed to move the launch to early May, \
provided the supplier confirms delivery of the new parts. Contact Jane (jane.doe@example.com) \
with questions; she's coordinating the schedule & budget for 2024-2025. ";
    para.iter().copied().cycle().take(1024).collect()
}

fn bench(c: &mut Criterion) {
    assert_eq!(BENIGN_70.len(), 70);
    assert_eq!(SQLI_70.len(), 70);
    let benign_1k = benign_1k();
    let inputs: [(&str, &[u8]); 3] = [
        ("benign_70", BENIGN_70),
        ("sqli_70", SQLI_70),
        ("benign_1k", &benign_1k),
    ];
    for (name, input) in inputs {
        c.bench_function(&format!("detect_sqli/{name}"), |b| {
            b.iter(|| rampart_libinjection::detect_sqli(black_box(input)))
        });
        // What rampart called before it had its own folding: the port's parse
        // state (same answers minus the port's two bugs, see tests/).
        c.bench_function(&format!("libinjectionrs_state_detect/{name}"), |b| {
            b.iter(|| {
                let mut state = libinjectionrs::SqliState::new(
                    black_box(input),
                    libinjectionrs::SqliFlags::FLAG_NONE,
                );
                state.detect()
            })
        });
        // The port's own entry point, which re-parses to get the fingerprint.
        c.bench_function(&format!("libinjectionrs_detect_sqli/{name}"), |b| {
            b.iter(|| libinjectionrs::detect_sqli(black_box(input)))
        });
        c.bench_function(&format!("detect_xss/{name}"), |b| {
            b.iter(|| rampart_libinjection::detect_xss(black_box(input)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
