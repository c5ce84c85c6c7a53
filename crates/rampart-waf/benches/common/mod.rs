//! Shared by `benches/waf.rs` and `examples/max_latency.rs`: CRS loaded
//! with a production-like setup at a given paranoia level, the benchmark
//! requests, and one whole exchange through the engine.

#![allow(dead_code)]

use std::path::PathBuf;

use rampart_waf::{RuleSet, Transaction};

pub fn crs_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora/crs")
}

/// A production-like setup (`modsecurity.conf-recommended` plus the
/// paranoia levels), loaded before `crs-setup.conf.example` and the rules.
pub fn setup(paranoia: u8) -> String {
    format!(
        r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecResponseBodyAccess Off
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" \
    "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
    "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecAction "id:900000,phase:1,pass,nolog,\
    setvar:tx.blocking_paranoia_level={paranoia},\
    setvar:tx.detection_paranoia_level={paranoia}"
"#
    )
}

pub fn crs_rules(paranoia: u8) -> RuleSet {
    let crs = crs_dir();
    let mut paths = vec![crs.join("crs-setup.conf.example")];
    let mut rules: Vec<PathBuf> = std::fs::read_dir(crs.join("rules"))
        .expect("CRS rules directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    rules.sort();
    paths.extend(rules);
    let set = RuleSet::load(&paths, &setup(paranoia)).expect("CRS loads");
    assert!(set.unsupported().is_empty());
    set
}

/// One request to push through the engine.
pub struct Req {
    pub name: &'static str,
    pub method: &'static str,
    pub uri: String,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    pub body: Vec<u8>,
}

fn browser_headers() -> Vec<(&'static str, Vec<u8>)> {
    [
        ("Host", "shop.example.com"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/124.0.0.0 Safari/537.36",
        ),
        (
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        ),
        ("Accept-Language", "en-GB,en;q=0.9,fr;q=0.8"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Referer", "https://shop.example.com/catalog"),
        ("Connection", "keep-alive"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.as_bytes().to_vec()))
    .collect()
}

fn api_headers(len: usize) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("Host", b"api.example.com".to_vec()),
        ("User-Agent", b"okhttp/4.12.0".to_vec()),
        ("Accept", b"application/json".to_vec()),
        ("Content-Type", b"application/json".to_vec()),
        ("Content-Length", len.to_string().into_bytes()),
        (
            "Authorization",
            b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl".to_vec(),
        ),
    ]
}

/// A JSON order of about `size` bytes.
fn json_body(size: usize) -> Vec<u8> {
    json_order(size, 0)
}

/// A JSON order of about `size` bytes; `n` varies the customer, the items
/// and the quantities and prices (order 0 is the fixed benchmark body).
fn json_order(size: usize, n: usize) -> Vec<u8> {
    let mut items = Vec::new();
    let mut len = 0;
    let mut i = 0;
    while len < size.saturating_sub(120) {
        let item = format!(
            r#"{{"sku":"SKU-{:05}","name":"Blue cotton shirt size {}","qty":{},"price":{}.99,"gift":false}}"#,
            i + n * 11,
            i + n,
            (i + n) % 7 + 1,
            (i + n * 3) % 90 + 9
        );
        len += item.len() + 1;
        items.push(item);
        i += 1;
    }
    let (id, email) = match n {
        0 => (48213, "jane.doe".to_string()),
        n => (48213 + n, format!("customer{n}")),
    };
    format!(
        r#"{{"customer":{{"id":{id},"email":"{email}@example.com"}},"currency":"EUR","items":[{}],"note":"leave at the door"}}"#,
        items.join(",")
    )
    .into_bytes()
}

pub fn requests() -> Vec<Req> {
    let mut cookies_headers = browser_headers();
    let cookies: Vec<String> = (0..22)
        .map(|i| format!("pref_{i}=v{i}a8f3c2e{}", i * 37))
        .collect();
    cookies_headers.push(("Cookie", cookies.join("; ").into_bytes()));
    let small = json_body(1024);
    let large = json_body(64 * 1024);
    vec![
        Req {
            name: "get_3_args",
            method: "GET",
            uri: "/api/v1/products?category=books&page=2&sort=price_asc".into(),
            headers: browser_headers(),
            body: Vec::new(),
        },
        Req {
            name: "post_json_1k",
            method: "POST",
            uri: "/api/v1/orders".into(),
            headers: api_headers(small.len()),
            body: small,
        },
        Req {
            name: "get_22_cookies",
            method: "GET",
            uri: "/account/settings".into(),
            headers: cookies_headers,
            body: Vec::new(),
        },
        Req {
            name: "attack_sqli",
            method: "GET",
            uri: "/api/v1/products?category=books&id=1%27%20OR%20%271%27%3D%271%27%20--%20&page=2"
                .into(),
            headers: browser_headers(),
            body: Vec::new(),
        },
        Req {
            name: "post_json_64k",
            method: "POST",
            uri: "/api/v1/orders/bulk".into(),
            headers: api_headers(large.len()),
            body: large,
        },
    ]
}

/// Requests that differ from one another as real traffic does, for
/// benchmarks of anything that remembers values across transactions (the
/// same request sent again and again would make such a memo look
/// perfect). `count` distinct requests of one kind, to be sent in turn:
///
/// * `varied_get_3_args`: one browser's headers (repeated, as from a real
///   client) and three arguments whose values change (`page` on every
///   request, `category` and `sort` from small vocabularies);
/// * `varied_post_json_1k`: an API client's headers and a 1 KB JSON order
///   whose ids, email and item values change on every request;
/// * `varied_get_22_cookies`: a browser's headers and 22 cookies whose
///   values all change on every request;
/// * `cold_get_3_args`: `varied_get_3_args` where every header value is
///   distinct too (the worst case for such a memo: everything misses).
///
/// `None` for any other name.
pub fn rotation(name: &str, count: usize) -> Option<Vec<Req>> {
    let make: fn(usize) -> Req = match name {
        "varied_get_3_args" => varied_get,
        "varied_post_json_1k" => varied_json,
        "varied_get_22_cookies" => varied_cookies,
        "cold_get_3_args" => cold_get,
        _ => return None,
    };
    Some((0..count).map(make).collect())
}

/// The names [`rotation`] knows.
pub const ROTATIONS: [&str; 4] = [
    "varied_get_3_args",
    "varied_post_json_1k",
    "varied_get_22_cookies",
    "cold_get_3_args",
];

const CATEGORIES: [&str; 13] = [
    "books", "music", "garden", "toys", "kitchen", "sports", "shoes", "office", "beauty", "tools",
    "games", "baby", "pets",
];
const SORTS: [&str; 7] = [
    "price_asc",
    "price_desc",
    "name",
    "newest",
    "rating",
    "popular",
    "relevance",
];

fn varied_uri(i: usize) -> String {
    format!(
        "/api/v1/products?category={}&page={}&sort={}",
        CATEGORIES[i % CATEGORIES.len()],
        i + 2,
        SORTS[(i / 3) % SORTS.len()]
    )
}

fn varied_get(i: usize) -> Req {
    Req {
        name: "varied_get_3_args",
        method: "GET",
        uri: varied_uri(i),
        headers: browser_headers(),
        body: Vec::new(),
    }
}

fn cold_get(i: usize) -> Req {
    let headers = [
        ("Host", format!("shop{i}.example.com")),
        (
            "User-Agent",
            format!(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/124.0.{i}.0 Safari/537.36"
            ),
        ),
        (
            "Accept",
            format!("text/html,application/xhtml+xml,application/xml;q=0.9,image/x{i},*/*;q=0.8"),
        ),
        ("Accept-Language", format!("en-GB,en;q=0.9,x-{i};q=0.8")),
        ("Accept-Encoding", format!("gzip, deflate, br, x{i}")),
        (
            "Referer",
            format!("https://shop.example.com/catalog?from={i}"),
        ),
        ("Connection", "keep-alive".to_string()),
    ];
    Req {
        name: "cold_get_3_args",
        method: "GET",
        uri: varied_uri(i),
        headers: headers
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect(),
        body: Vec::new(),
    }
}

fn varied_json(i: usize) -> Req {
    let body = json_order(1024, i);
    Req {
        name: "varied_post_json_1k",
        method: "POST",
        uri: "/api/v1/orders".into(),
        headers: api_headers(body.len()),
        body,
    }
}

fn varied_cookies(i: usize) -> Req {
    let mut headers = browser_headers();
    let cookies: Vec<String> = (0..22)
        .map(|c| format!("pref_{c}=v{c}a{:x}e{}", i * 7919 + c, i * 37 + c))
        .collect();
    headers.push(("Cookie", cookies.join("; ").into_bytes()));
    Req {
        name: "varied_get_22_cookies",
        method: "GET",
        uri: "/account/settings".into(),
        headers,
        body: Vec::new(),
    }
}

/// Runs one whole exchange; returns the blocking status, if any.
pub fn exchange(rules: &RuleSet, req: &Req) -> Option<u16> {
    let mut tx = Transaction::new(rules);
    tx.set_connection("203.0.113.7", 51234, "10.0.0.2", 443);
    tx.set_request_line(req.method, &req.uri, "HTTP/1.1");
    for (k, v) in &req.headers {
        tx.add_request_header(k, v);
    }
    tx.process_request_headers();
    tx.append_request_body(&req.body);
    tx.process_request_body();
    tx.set_response_status(200, "HTTP/1.1");
    tx.add_response_header("Content-Type", b"application/json");
    tx.add_response_header("Content-Length", b"2");
    tx.process_response_headers();
    tx.append_response_body(b"{}");
    tx.process_response_body();
    tx.process_logging();
    tx.intervention().map(|i| i.status)
}
