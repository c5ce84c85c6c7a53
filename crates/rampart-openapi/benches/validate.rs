//! Validation cost per request: route match + parameters + a ~1 KB JSON
//! body against the shop fixture's `createOrder` schema (`$ref`, `oneOf`,
//! `allOf`, formats), and the undeclared-property walk.

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method};
use rampart_openapi::{Discovery, Exchange, OpenApi, Undeclared};
use serde_json::json;

fn body_1k() -> Vec<u8> {
    let items: Vec<_> = (0..22)
        .map(|i| json!({"sku": format!("SKU-{i:05}"), "quantity": i + 1}))
        .collect();
    let body = json!({
        "email": "ann.example@example.com",
        "items": items,
        "payment": {"kind": "bank", "iban": "DE89370400440532013000"},
        "shipping": {"line1": "1 Main Street", "line2": null, "country": "DE"},
        "note": "leave at the door please",
        "metadata": {"channel": "web", "campaign": "spring"}
    });
    serde_json::to_vec(&body).unwrap()
}

fn bench(c: &mut Criterion) {
    let api = OpenApi::from_text(include_str!("../tests/fixtures/shop.json")).unwrap();
    let body = body_1k();
    assert!(
        (900..1300).contains(&body.len()),
        "body is {} bytes",
        body.len()
    );
    let headers = HeaderMap::new();
    c.bench_function("match+params+1KB body", |b| {
        b.iter(|| {
            let m = api.find(&Method::POST, "/api/orders").unwrap();
            m.operation
                .check_params(&m.path_params, None, &headers)
                .unwrap();
            m.operation
                .check_request_body(Some("application/json"), &body, Undeclared::Allow)
                .unwrap();
        })
    });
    c.bench_function("match+params+1KB body+undeclared reject", |b| {
        b.iter(|| {
            let m = api.find(&Method::POST, "/api/orders").unwrap();
            m.operation
                .check_params(&m.path_params, None, &headers)
                .unwrap();
            m.operation
                .check_request_body(Some("application/json"), &body, Undeclared::Reject)
                .unwrap();
        })
    });
    let path = "/api/orders/9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";
    let mut h = HeaderMap::new();
    h.insert("x-api-version", "2024-06".parse().unwrap());
    c.bench_function("match+params (uuid path, header, no body)", |b| {
        b.iter(|| {
            let m = api.find(&Method::GET, path).unwrap();
            m.operation.check_params(&m.path_params, None, &h).unwrap();
        })
    });
    let d = Discovery::default();
    c.bench_function("discovery record", |b| {
        b.iter(|| {
            d.record(&Exchange {
                method: "GET",
                path,
                query: Some("page=2"),
                status: 200,
                ..Exchange::default()
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
