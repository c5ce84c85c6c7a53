//! Discovery on a replayed synthetic traffic sample: templates, caps,
//! export and the diff against the shop document.

use std::sync::Arc;

use rampart_openapi::{Discovery, DiscoveryOptions, Exchange, OpenApi};
use serde_json::json;

fn uuid(i: u32) -> String {
    format!("{i:08x}-4b5a-4c6d-8e7f-0a1b2c3d4e5f")
}

/// A few hundred requests against a shop-like API, including a shadow
/// endpoint (`/api/internal/export`) and usernames (high cardinality).
fn replay(d: &Discovery) -> usize {
    let mut n = 0;
    let mut send = |method: &str, path: &str, query: Option<&str>, status: u16, auth: bool| {
        d.record(&Exchange {
            method,
            path,
            query,
            status,
            authenticated: auth,
            response_content_type: Some("application/json; charset=utf-8"),
            ..Exchange::default()
        });
        n += 1;
    };
    for i in 0..120u32 {
        send("GET", &format!("/api/orders/{}", uuid(i)), None, 200, true);
        send(
            "GET",
            "/api/orders",
            Some(&format!("page={}&status=open", i % 5)),
            200,
            true,
        );
    }
    for i in 0..60u32 {
        send(
            "PUT",
            &format!("/api/customers/{}/addresses", 1000 + i),
            None,
            204,
            true,
        );
        send(
            "GET",
            &format!("/api/invoices/ORD-2024-{i:04}"),
            None,
            200,
            true,
        );
    }
    for _ in 0..30 {
        send(
            "GET",
            "/api/internal/export",
            Some("format=csv"),
            200,
            false,
        );
        send("GET", "/api/users/me/profile", None, 200, true);
    }
    for i in 0..80u32 {
        send(
            "GET",
            &format!(
                "/api/users/user{}name/profile",
                char::from(b'a' + (i % 26) as u8)
                    .to_string()
                    .repeat(1 + (i / 26) as usize)
            ),
            None,
            200,
            false,
        );
    }
    for i in 0..40u32 {
        send(
            "GET",
            &format!("/api/blobs/{:032x}", u128::from(i) * 0x1234_5678_9abc),
            None,
            200,
            true,
        );
        send("GET", &format!("/random-scan-{i}"), None, 404, false);
    }
    n
}

fn templates(d: &Discovery) -> Vec<String> {
    d.endpoints()
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect()
}

#[test]
fn replayed_traffic_collapses_to_templates() {
    let d = Discovery::new(DiscoveryOptions {
        max_literal_children: 20,
        ..DiscoveryOptions::default()
    });
    let sent = replay(&d);
    assert!(sent >= 500, "a few hundred requests: {sent}");
    assert_eq!(
        templates(&d),
        [
            "GET /api/blobs/{id}",
            "PUT /api/customers/{id}/addresses",
            "GET /api/internal/export",
            "GET /api/invoices/{id}",
            "GET /api/orders",
            "GET /api/orders/{id}",
            "GET /api/users/me/profile",
            "GET /api/users/{id}/profile",
        ]
    );
    let orders = d
        .endpoints()
        .into_iter()
        .find(|e| e.path == "/api/orders")
        .unwrap();
    assert_eq!(orders.stats.count, 120);
    assert_eq!(
        orders.stats.query_params.keys().collect::<Vec<_>>(),
        ["page", "status"]
    );
    assert!(orders.stats.response_types.contains("application/json"));
    let profiles = d
        .endpoints()
        .into_iter()
        .find(|e| e.path == "/api/users/{id}/profile")
        .unwrap();
    assert_eq!(
        (profiles.stats.count, profiles.stats.authenticated),
        (80, 0)
    );
}

#[test]
fn caps_bound_memory() {
    let d = Discovery::new(DiscoveryOptions {
        max_endpoints: 5,
        max_literal_children: 1000,
        ..DiscoveryOptions::default()
    });
    for i in 0..50 {
        d.record(&Exchange {
            method: "GET",
            path: &format!("/r{i}/x"),
            status: 200,
            ..Exchange::default()
        });
    }
    assert_eq!(d.endpoint_count(), 5);
    assert_eq!(d.endpoints().len(), 5);
    assert_eq!(d.dropped(), 45);
    let deep = "/a".repeat(40);
    d.record(&Exchange {
        method: "GET",
        path: &deep,
        status: 200,
        ..Exchange::default()
    });
    assert_eq!(d.dropped(), 46);
}

#[test]
fn shapes_and_export_are_a_valid_draft() {
    let d = Discovery::default();
    let body = json!({"email": "a@b.test", "qty": 2, "tags": ["x"]});
    d.record(&Exchange {
        method: "POST",
        path: "/api/orders",
        status: 201,
        request_content_type: Some("application/json"),
        response_content_type: Some("application/json"),
        request_body: Some(&body),
        ..Exchange::default()
    });
    d.record(&Exchange {
        method: "GET",
        path: "/api/orders/42",
        query: Some("expand=items"),
        status: 200,
        ..Exchange::default()
    });
    let doc = d.export();
    assert_eq!(doc["openapi"], "3.1.0");
    let post = &doc["paths"]["/api/orders"]["post"];
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["schema"]["properties"]["qty"]["type"],
        "integer"
    );
    let get = &doc["paths"]["/api/orders/{id}"]["get"];
    assert_eq!(
        get["parameters"][0],
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
    );
    assert_eq!(get["parameters"][1]["name"], "expand");
    // The draft loads back as a document, and its operations match the traffic.
    let reloaded = OpenApi::from_value(doc).expect("the export is a loadable OpenAPI 3.1 document");
    assert!(reloaded.find(&http::Method::GET, "/api/orders/77").is_ok());
}

#[test]
fn diff_reports_shadow_and_unseen_endpoints() {
    let api = OpenApi::from_text(include_str!("fixtures/shop.json")).unwrap();
    let d = Discovery::new(DiscoveryOptions {
        max_literal_children: 20,
        ..DiscoveryOptions::default()
    });
    replay(&d);
    let report = d.diff(&api);
    let shadow: Vec<String> = report
        .shadow
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(
        shadow,
        [
            "GET /api/blobs/{id}",
            "GET /api/internal/export",
            "GET /api/invoices/{id}",
            "GET /api/users/me/profile",
            "GET /api/users/{id}/profile",
        ]
    );
    let unseen: Vec<String> = report
        .unseen
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(unseen, ["POST /orders"]);
    assert!(report.matched.iter().any(
        |(learned, doc)| learned.path == "/api/orders/{id}" && doc.path == "/orders/{orderId}"
    ));
}

#[test]
fn concurrent_recording_is_consistent() {
    let d = Arc::new(Discovery::default());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let d = Arc::clone(&d);
            std::thread::spawn(move || {
                for i in 0..250 {
                    let path = format!("/v1/items/{}", t * 1000 + i);
                    d.record(&Exchange {
                        method: "GET",
                        path: &path,
                        status: 200,
                        ..Exchange::default()
                    });
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let endpoints = d.endpoints();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].stats.count, 1000);
}
