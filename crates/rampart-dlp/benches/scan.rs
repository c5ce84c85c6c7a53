//! Scan throughput: clean 64 KB JSON bodies (goal >= 300 MB/s per core) and
//! bodies full of matches.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart_dlp::{Engine, EngineOptions};

fn clean_json(size: usize) -> Vec<u8> {
    let mut out = String::from("[");
    let mut i = 0u64;
    while out.len() < size {
        out.push_str(&format!(
            r#"{{"id":"550e8400-e29b-41d4-a716-{i:012}","name":"Widget number {i}","price":{}.99,"tags":["blue","large"],"created":"2024-01-15T10:30:00Z","in_stock":true}},"#,
            i % 500
        ));
        i += 1;
    }
    out.pop();
    out.push(']');
    out.into_bytes()
}

fn dirty_json(size: usize) -> Vec<u8> {
    let mut out = String::from("[");
    while out.len() < size {
        out.push_str(r#"{"card":"4111 1111 1111 1111","email":"jane.doe@example.com","ssn":"536-22-1234","phone":"+1 415 555 2671","key":"AKIAIOSFODNN7EXAMPLE"},"#);
    }
    out.pop();
    out.push(']');
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let engine = Engine::new(&EngineOptions::default()).expect("engine");
    let clean = clean_json(64 * 1024);
    let dirty = dirty_json(64 * 1024);
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_function("clean_json_64k", |b| {
        b.iter(|| engine.inspect(&clean, true))
    });
    g.bench_function("clean_text_64k", |b| {
        b.iter(|| engine.inspect_text(&clean, true))
    });
    g.throughput(Throughput::Bytes(dirty.len() as u64));
    g.bench_function("dirty_json_64k", |b| {
        b.iter(|| engine.inspect(&dirty, true))
    });
    g.bench_function("dirty_text_64k", |b| {
        b.iter(|| engine.inspect_text(&dirty, true))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
