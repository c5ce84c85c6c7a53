//! Request and response validation against the two fixtures.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
use rampart_openapi::{OpenApi, Place, SpecVersion, Undeclared, ViolationKind};
use serde_json::json;

fn petstore() -> OpenApi {
    OpenApi::from_text(include_str!("fixtures/petstore.yaml")).expect("petstore loads")
}

fn shop() -> OpenApi {
    OpenApi::from_text(include_str!("fixtures/shop.json")).expect("shop loads")
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

/// Matches and checks parameters; returns the violation kind, if any.
fn params(
    api: &OpenApi,
    method: Method,
    path_and_query: &str,
    h: &HeaderMap,
) -> Option<ViolationKind> {
    let (path, query) = path_and_query
        .split_once('?')
        .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
    let m = match api.find(&method, path) {
        Ok(m) => m,
        Err(v) => return Some(v.kind),
    };
    m.operation
        .check_params(&m.path_params, query, h)
        .err()
        .map(|v| v.kind)
}

#[test]
fn versions_and_base_paths() {
    assert_eq!(petstore().version(), SpecVersion::V3_0);
    assert_eq!(petstore().base_paths(), ["/v1"]);
    assert_eq!(shop().version(), SpecVersion::V3_1);
    assert_eq!(shop().operations().count(), 4);
}

#[test]
fn endpoint_matching() {
    let api = petstore();
    let none = HeaderMap::new();
    assert_eq!(params(&api, Method::GET, "/v1/pets", &none), None);
    assert_eq!(
        params(&api, Method::GET, "/pets", &none),
        Some(ViolationKind::UnknownEndpoint),
        "base path is required"
    );
    assert_eq!(
        params(&api, Method::GET, "/v1/admin", &none),
        Some(ViolationKind::UnknownEndpoint)
    );
    assert_eq!(
        params(&api, Method::PATCH, "/v1/pets/1", &none),
        Some(ViolationKind::MethodNotAllowed)
    );
    let mine = api.find(&Method::GET, "/v1/pets/mine").unwrap();
    assert_eq!(
        mine.operation.operation_id.as_deref(),
        Some("myPets"),
        "literal beats template"
    );
    let head = api.find(&Method::HEAD, "/v1/pets/7").unwrap();
    assert_eq!(head.operation.operation_id.as_deref(), Some("getPet"));
    let allowed: Vec<String> = api
        .allowed_methods("/v1/pets/7")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(allowed, ["GET", "DELETE"]);
}

#[test]
fn query_parameters_are_coerced_and_checked() {
    let api = petstore();
    let none = HeaderMap::new();
    assert_eq!(
        params(
            &api,
            Method::GET,
            "/v1/pets?limit=10&tags=a&tags=b&sort=name,age",
            &none
        ),
        None
    );
    assert_eq!(
        params(&api, Method::GET, "/v1/pets?limit=ten", &none),
        Some(ViolationKind::BadType)
    );
    assert_eq!(
        params(&api, Method::GET, "/v1/pets?limit=0", &none),
        Some(ViolationKind::Schema)
    );
    assert_eq!(
        params(
            &api,
            Method::GET,
            "/v1/pets?tags=a&tags=b&tags=c&tags=d",
            &none
        ),
        Some(ViolationKind::Schema)
    );
    assert_eq!(
        params(&api, Method::GET, "/v1/pets?sort=name,weight", &none),
        Some(ViolationKind::Schema)
    );
}

#[test]
fn path_and_header_parameters() {
    let api = petstore();
    let none = HeaderMap::new();
    assert_eq!(
        params(&api, Method::GET, "/v1/pets/0", &none),
        Some(ViolationKind::Schema),
        "minimum 1"
    );
    assert_eq!(
        params(&api, Method::DELETE, "/v1/pets/abc", &none),
        Some(ViolationKind::BadType)
    );
    let long = "x".repeat(40);
    assert_eq!(
        params(
            &api,
            Method::GET,
            "/v1/pets/3",
            &headers(&[("x-trace-id", &long)])
        ),
        Some(ViolationKind::Schema)
    );

    let shop = shop();
    let uuid = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";
    let ok = headers(&[("x-api-version", "2024-06")]);
    assert_eq!(
        params(&shop, Method::GET, &format!("/api/orders/{uuid}"), &ok),
        None
    );
    assert_eq!(
        params(&shop, Method::GET, "/api/orders/12345", &ok),
        Some(ViolationKind::Schema),
        "uuid format"
    );
    assert_eq!(
        params(
            &shop,
            Method::GET,
            &format!("/api/orders/{uuid}"),
            &HeaderMap::new()
        ),
        Some(ViolationKind::Missing)
    );
    let bad = headers(&[("x-api-version", "1999")]);
    let m = shop
        .find(
            &Method::GET,
            "/api/orders/9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
        )
        .unwrap();
    let v = m
        .operation
        .check_params(&m.path_params, None, &bad)
        .unwrap_err();
    assert_eq!(
        (v.place, v.name.as_deref(), v.keyword.as_deref()),
        (Place::Header, Some("X-Api-Version"), Some("enum"))
    );
    assert_eq!(
        params(
            &shop,
            Method::GET,
            "/api/orders?since=2024-05-01T10:00:00Z&status=open&status=paid&page=2",
            &HeaderMap::new()
        ),
        None
    );
    assert_eq!(
        params(
            &shop,
            Method::GET,
            "/api/orders?since=yesterday",
            &HeaderMap::new()
        ),
        Some(ViolationKind::Schema)
    );
}

fn body_check(
    api: &OpenApi,
    method: Method,
    path: &str,
    body: serde_json::Value,
    mode: Undeclared,
) -> Result<rampart_openapi::BodyOutcome, rampart_openapi::Violation> {
    let m = api.find(&method, path).unwrap();
    let op = Arc::clone(m.operation);
    op.check_request_body(Some("application/json"), body.to_string().as_bytes(), mode)
}

fn order() -> serde_json::Value {
    json!({"email": "ann@example.com", "items": [{"sku": "ABC-1", "quantity": 2}],
           "payment": {"kind": "card", "token": "tok_12345678"}, "note": null,
           "shipping": {"line1": "1 Main St", "country": "DE", "line2": null}})
}

#[test]
fn request_bodies_with_ref_one_of_formats_and_nulls() {
    let api = shop();
    assert!(body_check(
        &api,
        Method::POST,
        "/api/orders",
        order(),
        Undeclared::Allow
    )
    .is_ok());
    let cases = [
        ("/email", "format", json!({"email": "not-an-email"})),
        (
            "/items/0/quantity",
            "minimum",
            json!({"items": [{"sku": "ABC", "quantity": 0}]}),
        ),
        (
            "/payment",
            "oneOf",
            json!({"payment": {"kind": "card", "iban": "x"}}),
        ),
        (
            "/shipping/country",
            "pattern",
            json!({"shipping": {"line1": "x", "country": "de"}}),
        ),
        ("/note", "type", json!({"note": 5})),
    ];
    for (pointer, keyword, patch) in cases {
        let mut body = order();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let v = body_check(&api, Method::POST, "/api/orders", body, Undeclared::Allow).unwrap_err();
        assert_eq!(
            (v.kind, v.pointer.as_str(), v.keyword.as_deref()),
            (ViolationKind::Schema, pointer, Some(keyword)),
            "{v}"
        );
    }
    let mut missing = order();
    missing.as_object_mut().unwrap().remove("email");
    let v = body_check(
        &api,
        Method::POST,
        "/api/orders",
        missing,
        Undeclared::Allow,
    )
    .unwrap_err();
    assert_eq!(v.keyword.as_deref(), Some("required"));
}

#[test]
fn nullable_in_3_0_and_required_bodies() {
    let api = petstore();
    assert!(body_check(
        &api,
        Method::POST,
        "/v1/pets",
        json!({"name": "Rex", "tag": null}),
        Undeclared::Allow
    )
    .is_ok());
    let v = body_check(
        &api,
        Method::POST,
        "/v1/pets",
        json!({"name": "Rex", "status": "lost"}),
        Undeclared::Allow,
    )
    .unwrap_err();
    assert_eq!(v.keyword.as_deref(), Some("enum"));
    let op = Arc::clone(api.find(&Method::POST, "/v1/pets").unwrap().operation);
    assert_eq!(
        op.check_request_body(Some("application/json"), b"", Undeclared::Allow)
            .unwrap_err()
            .kind,
        ViolationKind::Missing
    );
    assert_eq!(
        op.check_request_body(Some("application/json"), b"{\"name\":", Undeclared::Allow)
            .unwrap_err()
            .kind,
        ViolationKind::MalformedJson
    );
    assert_eq!(
        op.check_request_body(Some("text/xml"), b"<pet/>", Undeclared::Allow)
            .unwrap_err()
            .kind,
        ViolationKind::UnsupportedMediaType
    );
    assert!(op
        .check_request_body(
            Some("application/json; charset=utf-8"),
            br#"{"name":"a"}"#,
            Undeclared::Allow
        )
        .is_ok());
}

#[test]
fn undeclared_request_properties_reject_and_strip() {
    let api = shop();
    let mut body = order();
    body["is_admin"] = json!(true);
    body["items"][0]["discount"] = json!(100);
    body["metadata"] = json!({"free": "form map"});
    assert!(
        body_check(
            &api,
            Method::POST,
            "/api/orders",
            body.clone(),
            Undeclared::Allow
        )
        .is_ok(),
        "schemas are open by default"
    );
    let v = body_check(
        &api,
        Method::POST,
        "/api/orders",
        body.clone(),
        Undeclared::Reject,
    )
    .unwrap_err();
    assert_eq!(v.kind, ViolationKind::UndeclaredProperty);
    assert!(
        ["/is_admin", "/items/0/discount"].contains(&v.pointer.as_str()),
        "{}",
        v.pointer
    );
    let out = body_check(&api, Method::POST, "/api/orders", body, Undeclared::Strip).unwrap();
    assert_eq!(out.stripped, 2);
    let value = out.value.unwrap();
    assert!(value.get("is_admin").is_none() && value["items"][0].get("discount").is_none());
    assert_eq!(
        value["metadata"],
        json!({"free": "form map"}),
        "maps stay open"
    );
    assert_eq!(
        value["payment"],
        json!({"kind": "card", "token": "tok_12345678"}),
        "oneOf branch properties are declared"
    );
}

#[test]
fn array_bodies_and_path_integers() {
    let api = shop();
    let ok = json!([{"line1": "a", "country": "FR"}]);
    assert!(body_check(
        &api,
        Method::PUT,
        "/api/customers/7/addresses",
        ok,
        Undeclared::Reject
    )
    .is_ok());
    let too_many = serde_json::Value::Array(vec![json!({"line1": "a", "country": "FR"}); 6]);
    let v = body_check(
        &api,
        Method::PUT,
        "/api/customers/7/addresses",
        too_many,
        Undeclared::Allow,
    )
    .unwrap_err();
    assert_eq!(v.keyword.as_deref(), Some("maxItems"));
}

#[test]
fn response_validation_and_stripping() {
    let api = shop();
    let uuid = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";
    let op = Arc::clone(
        api.find(&Method::GET, &format!("/api/orders/{uuid}"))
            .unwrap()
            .operation,
    );
    let mut order = order();
    order["id"] = json!(uuid);
    order["status"] = json!("paid");
    order["created_at"] = json!("2024-06-01T12:00:00Z");
    let good = order.to_string();
    let out = op.check_response_body(200, Some("application/json"), good.as_bytes(), true);
    assert!(out.violation.is_none() && out.stripped == 0);

    order["internal_cost"] = json!(12.5);
    order["items"][0]["supplier_id"] = json!("S-99");
    let leaky = order.to_string();
    let out = op.check_response_body(200, Some("application/json"), leaky.as_bytes(), true);
    assert_eq!(out.stripped, 2);
    let value = out.value.unwrap();
    assert!(value.get("internal_cost").is_none() && value["items"][0].get("supplier_id").is_none());

    let out = op.check_response_body(200, Some("application/json"), br#"{"id": "x"}"#, false);
    assert_eq!(out.violation.unwrap().place, Place::ResponseBody);
    // `default` covers any status; its problem+json schema applies.
    let out = op.check_response_body(
        503,
        Some("application/problem+json"),
        br#"{"status": "bad"}"#,
        false,
    );
    assert_eq!(out.violation.unwrap().keyword.as_deref(), Some("type"));
}

#[test]
fn response_status_ranges_and_undocumented_statuses() {
    let api = shop();
    let list = Arc::clone(api.find(&Method::GET, "/api/orders").unwrap().operation);
    let out = list.check_response_body(
        206,
        Some("application/json"),
        br#"{"items": [], "next": null}"#,
        false,
    );
    assert!(out.violation.is_none(), "2XX covers 206");
    let out = list.check_response_body(500, Some("application/json"), b"{}", false);
    assert_eq!(
        out.violation.unwrap().kind,
        ViolationKind::UndocumentedStatus
    );
}

#[test]
fn extensions_are_exposed_per_operation() {
    let api = petstore();
    let create = api.find(&Method::POST, "/v1/pets").unwrap().operation;
    let rl = create.rate_limit.as_ref().unwrap();
    assert_eq!(
        (rl.count, rl.burst, rl.key.as_str(), rl.period.as_secs()),
        (10, 5, "consumer", 60)
    );
    let auth = create.auth.as_ref().unwrap();
    assert_eq!(auth.scopes, ["pets:write"]);
    let list = api.find(&Method::GET, "/v1/pets").unwrap().operation;
    assert_eq!(
        list.rate_limit.as_ref().unwrap().count,
        100,
        "root extension inherited"
    );
    assert!(list.auth.is_none());
    let shop = shop();
    let get = shop.find(&Method::GET, "/api/orders").unwrap().operation;
    assert_eq!(get.auth.as_ref().unwrap().scopes, ["orders:read"]);
}

#[test]
fn load_errors_are_clear() {
    let err = |text: &str| OpenApi::from_text(text).unwrap_err().to_string();
    assert!(err("swagger: '2.0'\n").contains("version"));
    assert!(err("{not json").contains("JSON"));
    let dangling = json!({"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/Nope"}}}}}});
    assert!(OpenApi::from_value(dangling)
        .unwrap_err()
        .to_string()
        .contains("not found"));
    let dup = json!({"openapi": "3.1.0", "paths": {"/a/{x}": {}, "/a/{y}": {}}});
    assert!(OpenApi::from_value(dup)
        .unwrap_err()
        .to_string()
        .contains("same paths"));
    let bad_schema = json!({"openapi": "3.1.0", "paths": {"/a": {"post": {"requestBody": {"content": {"application/json": {"schema": {"type": 5}}}}, "responses": {}}}}});
    assert!(OpenApi::from_value(bad_schema)
        .unwrap_err()
        .to_string()
        .contains("requestBody"));
}
