//! `OpenApiFilter` driven through the `Filter` hooks the way the gateway does.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use rampart_core::{Decision, Filter, RequestCtx};
use rampart_openapi::{
    matched_operation, OpenApi, OpenApiFilter, OpenApiOptions, PolicyMode, UndeclaredPolicy,
};
use serde_json::json;

fn api() -> Arc<OpenApi> {
    Arc::new(OpenApi::from_text(include_str!("fixtures/shop.json")).unwrap())
}

fn ctx() -> RequestCtx {
    let peer: SocketAddr = "192.0.2.7:5000".parse().unwrap();
    RequestCtx::new("rid-1".into(), peer.ip(), peer, Arc::from("main"))
}

fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> rampart_core::RequestHead {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn response_head(status: u16, content_type: &str) -> rampart_core::ResponseHead {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn on_headers(
    f: &OpenApiFilter,
    c: &mut RequestCtx,
    h: &mut rampart_core::RequestHead,
) -> Decision {
    match f.request_headers(c, h) {
        rampart_core::Verdict::Ready(d) => d,
        rampart_core::Verdict::Pending(_) => panic!("the OpenAPI filter answers at once"),
    }
}

fn status_reason(d: &Decision) -> Option<(StatusCode, &'static str)> {
    match d {
        Decision::Deny(denial) => Some((denial.status, denial.reason)),
        _ => None,
    }
}

fn order_body() -> serde_json::Value {
    json!({"email": "ann@example.com", "items": [{"sku": "ABC-1", "quantity": 2}], "payment": {"kind": "bank", "iban": "DE89370400440532013000"}})
}

/// Runs a POST /api/orders through headers and a two-chunk body.
fn post_order(f: &OpenApiFilter, body: &serde_json::Value) -> (Decision, RequestCtx) {
    let mut c = ctx();
    c.has_request_body = true;
    let mut h = head(
        "POST",
        "/api/orders",
        &[("content-type", "application/json")],
    );
    let d = on_headers(f, &mut c, &mut h);
    assert_eq!(d, Decision::Continue);
    let text = body.to_string();
    let (a, b) = text.as_bytes().split_at(text.len() / 2);
    assert_eq!(
        f.request_body(&mut c, &Bytes::copy_from_slice(a), false),
        Decision::Continue
    );
    let d = f.request_body(&mut c, &Bytes::copy_from_slice(b), true);
    (d, c)
}

#[test]
fn unknown_endpoints_and_methods_are_refused() {
    let f = OpenApiFilter::new(api(), OpenApiOptions::default());
    let mut c = ctx();
    let d = on_headers(&f, &mut c, &mut head("GET", "/api/internal/debug", &[]));
    assert_eq!(
        status_reason(&d),
        Some((StatusCode::NOT_FOUND, "unknown_endpoint"))
    );
    let d = on_headers(&f, &mut c, &mut head("DELETE", "/api/orders", &[]));
    assert_eq!(
        status_reason(&d),
        Some((StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"))
    );
    let Decision::Deny(denial) = d else {
        unreachable!()
    };
    let allow = denial
        .headers
        .iter()
        .find(|(n, _)| n == http::header::ALLOW)
        .unwrap();
    assert_eq!(allow.1, "GET, POST");
}

#[test]
fn monitor_mode_records_without_denying() {
    let options = OpenApiOptions {
        unknown_endpoints: PolicyMode::Monitor,
        ..OpenApiOptions::default()
    };
    let f = OpenApiFilter::new(api(), options);
    let mut c = ctx();
    let d = on_headers(&f, &mut c, &mut head("GET", "/api/shadow", &[]));
    assert_eq!(d, Decision::Continue);
    assert_eq!(c.events.len(), 1);
    assert_eq!(
        (c.events[0].reason, c.events[0].mode, c.events[0].enforced),
        ("unknown_endpoint", "monitor", false)
    );
}

#[test]
fn matched_operation_is_stored_and_params_checked() {
    let f = OpenApiFilter::new(api(), OpenApiOptions::default());
    let mut c = ctx();
    let uri = "/api/orders/9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";
    let d = on_headers(
        &f,
        &mut c,
        &mut head("GET", uri, &[("x-api-version", "2024-06")]),
    );
    assert_eq!(d, Decision::Continue);
    let op = matched_operation(&c).unwrap();
    assert_eq!(op.operation_id.as_deref(), Some("getOrder"));
    assert_eq!(op.rate_limit.as_ref().unwrap().key, "claim:sub");

    let mut c = ctx();
    let d = on_headers(&f, &mut c, &mut head("GET", "/api/orders?page=zero", &[]));
    let Decision::Deny(denial) = d else {
        panic!("expected a denial")
    };
    assert_eq!(
        (denial.status, denial.reason),
        (StatusCode::BAD_REQUEST, "openapi_validation_failed")
    );
    assert!(
        denial.detail.contains("\"page\"") && denial.detail.contains("bad_type"),
        "{}",
        denial.detail
    );
    assert!(!denial.detail.contains("zero"), "values are never echoed");
}

#[test]
fn request_bodies_are_validated_across_chunks() {
    let f = OpenApiFilter::new(api(), OpenApiOptions::default());
    let (d, _) = post_order(&f, &order_body());
    assert_eq!(d, Decision::Continue);
    let mut bad = order_body();
    bad["items"][0]["quantity"] = json!(1000);
    let (d, _) = post_order(&f, &bad);
    let Decision::Deny(denial) = d else {
        panic!("expected a denial")
    };
    assert_eq!(denial.reason, "openapi_validation_failed");
    assert!(
        denial.detail.contains("/items/0/quantity") && denial.detail.contains("maximum"),
        "{}",
        denial.detail
    );
}

#[test]
fn missing_required_body_is_refused_at_headers() {
    let f = OpenApiFilter::new(api(), OpenApiOptions::default());
    let mut c = ctx();
    let d = on_headers(
        &f,
        &mut c,
        &mut head(
            "POST",
            "/api/orders",
            &[("content-type", "application/json")],
        ),
    );
    assert_eq!(
        status_reason(&d),
        Some((StatusCode::BAD_REQUEST, "openapi_validation_failed"))
    );
}

#[test]
fn oversized_bodies_are_refused() {
    let options = OpenApiOptions {
        max_request_body: 64,
        ..OpenApiOptions::default()
    };
    let f = OpenApiFilter::new(api(), options);
    assert_eq!(f.body_interest().hold_request, 64);
    let mut body = order_body();
    body["note"] = json!("n".repeat(100));
    let mut c = ctx();
    c.has_request_body = true;
    on_headers(
        &f,
        &mut c,
        &mut head(
            "POST",
            "/api/orders",
            &[("content-type", "application/json")],
        ),
    );
    let d = f.request_body(&mut c, &Bytes::from(body.to_string()), false);
    assert_eq!(
        status_reason(&d),
        Some((StatusCode::PAYLOAD_TOO_LARGE, "openapi_body_too_large"))
    );
}

#[test]
fn undeclared_request_properties_reject_monitor_and_strip() {
    let mut body = order_body();
    body["role"] = json!("admin");
    let reject = OpenApiFilter::new(
        api(),
        OpenApiOptions {
            undeclared_request: UndeclaredPolicy::Reject,
            ..OpenApiOptions::default()
        },
    );
    let (d, _) = post_order(&reject, &body);
    let Decision::Deny(denial) = d else {
        panic!("expected a denial")
    };
    assert!(
        denial.detail.contains("undeclared_property") && denial.detail.contains("/role"),
        "{}",
        denial.detail
    );

    let monitor = OpenApiFilter::new(
        api(),
        OpenApiOptions {
            undeclared_request: UndeclaredPolicy::Monitor,
            ..OpenApiOptions::default()
        },
    );
    let (d, c) = post_order(&monitor, &body);
    assert_eq!(d, Decision::Continue);
    assert_eq!(c.events.len(), 1);

    let strip = OpenApiFilter::new(
        api(),
        OpenApiOptions {
            undeclared_request: UndeclaredPolicy::Strip,
            ..OpenApiOptions::default()
        },
    );
    let (d, c) = post_order(&strip, &body);
    assert_eq!(d, Decision::Continue);
    let rewritten = strip
        .rewrite_request_body(&c, Some("application/json"), body.to_string().as_bytes())
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&rewritten).unwrap();
    assert_eq!(value, order_body());
    assert!(
        strip
            .rewrite_request_body(
                &c,
                Some("application/json"),
                order_body().to_string().as_bytes()
            )
            .is_none(),
        "nothing to strip"
    );
}

fn get_order_ctx(f: &OpenApiFilter) -> RequestCtx {
    let mut c = ctx();
    let uri = "/api/orders/9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";
    assert_eq!(
        on_headers(
            f,
            &mut c,
            &mut head("GET", uri, &[("x-api-version", "2024-06")])
        ),
        Decision::Continue
    );
    c
}

fn full_order() -> serde_json::Value {
    let mut o = order_body();
    o["id"] = json!("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f");
    o["status"] = json!("open");
    o["created_at"] = json!("2024-06-01T12:00:00Z");
    o
}

#[test]
fn response_fields_are_stripped_and_invalid_responses_refused() {
    let options = OpenApiOptions {
        response_validation: PolicyMode::Enforce,
        strip_response: PolicyMode::Enforce,
        ..OpenApiOptions::default()
    };
    let f = OpenApiFilter::new(api(), options);
    let interest = f.body_interest();
    assert!(interest.response && interest.hold_response > 0);

    let mut c = get_order_ctx(&f);
    assert_eq!(
        f.response_headers(&mut c, &mut response_head(200, "application/json")),
        Decision::Continue
    );
    let mut leaky = full_order();
    leaky["password_hash"] = json!("$argon2id$...");
    let mut chunk = Bytes::from(leaky.to_string());
    assert_eq!(
        f.response_body(&mut c, &mut chunk, true),
        Decision::Continue
    );
    let sent: serde_json::Value = serde_json::from_slice(&chunk).unwrap();
    assert_eq!(sent, full_order());

    let mut c = get_order_ctx(&f);
    f.response_headers(&mut c, &mut response_head(200, "application/json"));
    let mut chunk = Bytes::from_static(br#"{"id": 1}"#);
    let d = f.response_body(&mut c, &mut chunk, true);
    assert_eq!(
        status_reason(&d),
        Some((StatusCode::BAD_GATEWAY, "openapi_response_invalid"))
    );
}

#[test]
fn responses_larger_than_the_hold_stream_unchecked() {
    let options = OpenApiOptions {
        response_validation: PolicyMode::Enforce,
        ..OpenApiOptions::default()
    };
    let f = OpenApiFilter::new(api(), options);
    let mut c = get_order_ctx(&f);
    f.response_headers(&mut c, &mut response_head(200, "application/json"));
    let mut part = Bytes::from_static(b"{\"id\": ");
    assert_eq!(
        f.response_body(&mut c, &mut part, false),
        Decision::Continue
    );
    let mut rest = Bytes::from_static(b"1}");
    assert_eq!(f.response_body(&mut c, &mut rest, true), Decision::Continue);
}

#[test]
fn monitor_strip_records_but_keeps_the_body() {
    let options = OpenApiOptions {
        strip_response: PolicyMode::Monitor,
        ..OpenApiOptions::default()
    };
    let f = OpenApiFilter::new(api(), options);
    let mut c = get_order_ctx(&f);
    f.response_headers(&mut c, &mut response_head(200, "application/json"));
    let mut leaky = full_order();
    leaky["internal"] = json!(1);
    let original = Bytes::from(leaky.to_string());
    let mut chunk = original.clone();
    assert_eq!(
        f.response_body(&mut c, &mut chunk, true),
        Decision::Continue
    );
    assert_eq!(chunk, original);
    assert_eq!(
        c.events.last().unwrap().reason,
        "openapi_response_undeclared"
    );
}

#[test]
fn no_body_interest_when_policies_are_off() {
    let options = OpenApiOptions {
        request_validation: PolicyMode::Off,
        ..OpenApiOptions::default()
    };
    let f = OpenApiFilter::new(api(), options);
    let i = f.body_interest();
    assert!(!i.request && !i.response && i.hold_request == 0 && i.hold_response == 0);
}
