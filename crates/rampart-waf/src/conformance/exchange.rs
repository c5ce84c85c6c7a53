//! Turns a go-ftw stage into an HTTP exchange and runs it through a
//! [`Transaction`]: the request from the stage's fields or its base64 raw
//! `encoded_request`, and the response CRS's test backend (albedo) would
//! send: `/reflect` echoes the status, headers and body described in the
//! JSON request body; every other path answers 200 with an empty body.

use base64::Engine as _;

use super::model::{scalar_text, Input};
use super::server::expand_templates;
use crate::{RuleSet, Transaction};

/// A request ready to feed to the engine.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub version: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// The stage's request as the bytes a test client sends on the wire: the
/// encoded request as is, or the built one serialised as HTTP/1.
pub fn raw_bytes(input: &Input) -> Result<Vec<u8>, String> {
    if let Some(encoded) = &input.encoded_request {
        let compact: String = encoded.split_whitespace().collect();
        return base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| format!("bad encoded_request: {e}"));
    }
    let req = build_request(input)?;
    let mut out = format!("{} {} {}\r\n", req.method, req.uri, req.version).into_bytes();
    for (k, v) in &req.headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if !req
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&req.body);
    Ok(out)
}

/// Builds the stage's request.
pub fn build_request(input: &Input) -> Result<Request, String> {
    if let Some(encoded) = &input.encoded_request {
        let compact: String = encoded.split_whitespace().collect();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| format!("bad encoded_request: {e}"))?;
        return Ok(parse_raw(&raw));
    }
    let mut req = Request {
        method: input.method.clone().unwrap_or_else(|| "GET".into()),
        uri: input.uri.clone().unwrap_or_else(|| "/".into()),
        version: input.version.clone().unwrap_or_else(|| "HTTP/1.1".into()),
        headers: Vec::new(),
        body: input
            .data
            .as_ref()
            .map(|d| expand_templates(&scalar_text(d)))
            .unwrap_or_default()
            .into_bytes(),
    };
    for (k, v) in input.headers.iter().flatten() {
        req.headers
            .push((scalar_text(k), scalar_text(v).into_bytes()));
    }
    let has = |req: &Request, name: &str| {
        req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    // go-ftw completes a body's headers unless told not to: a form
    // content type and the length.
    if input.autocomplete_headers.unwrap_or(true) && !req.body.is_empty() {
        if !has(&req, "content-type") {
            let form = b"application/x-www-form-urlencoded".to_vec();
            req.headers.push(("Content-Type".into(), form));
        }
        if !has(&req, "content-length") {
            let len = req.body.len().to_string().into_bytes();
            req.headers.push(("Content-Length".into(), len));
        }
    }
    Ok(req)
}

/// Parses `METHOD URI VERSION\r\nHeaders\r\n\r\nbody`.
pub fn parse_raw(raw: &[u8]) -> Request {
    let split = find(raw, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| find(raw, b"\n\n").map(|i| (i, i + 2)))
        .unwrap_or((raw.len(), raw.len()));
    let head = String::from_utf8_lossy(&raw[..split.0]).into_owned();
    let body = raw[split.1..].to_vec();
    let mut lines = head.lines();
    let line = lines.next().unwrap_or_default();
    let mut parts = line.splitn(3, ' ');
    let mut req = Request {
        method: parts.next().unwrap_or_default().to_string(),
        uri: parts.next().unwrap_or_default().to_string(),
        version: parts.next().unwrap_or("HTTP/1.1").trim().to_string(),
        ..Request::default()
    };
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            req.headers
                .push((k.trim().to_string(), v.trim().as_bytes().to_vec()));
        }
    }
    req.body = body;
    req
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Status, headers and body of a backend response.
type BackendResponse = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

/// The response albedo would send for this request.
fn backend_response(req: &Request) -> BackendResponse {
    let path = req.uri.split('?').next().unwrap_or("");
    let plain = vec![("Content-Type".to_string(), b"text/plain".to_vec())];
    if path != "/reflect" {
        return (200, plain, Vec::new());
    }
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
        return (200, plain, Vec::new());
    };
    let status = spec["status"].as_u64().map_or(200, |s| s as u16);
    let mut body = spec["body"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    if let Some(enc) = spec["encodedBody"].as_str() {
        body = base64::engine::general_purpose::STANDARD
            .decode(enc)
            .unwrap_or_default();
    }
    let mut headers: Vec<(String, Vec<u8>)> = spec["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().unwrap_or_default().as_bytes().to_vec(),
            )
        })
        .collect();
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        // Go's net/http sniffs a type when the handler sets none.
        let lower = String::from_utf8_lossy(&body[..body.len().min(64)]).to_ascii_lowercase();
        let html = [
            "<!doctype html",
            "<html",
            "<head",
            "<body",
            "<script",
            "<table",
            "<div",
        ]
        .iter()
        .any(|p| lower.trim_start().starts_with(p));
        let ctype = if html {
            "text/html; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        headers.push(("Content-Type".into(), ctype.as_bytes().to_vec()));
    }
    (status, headers, body)
}

/// Runs the exchange through all five phases; returns the logged rule ids.
/// What the engine did with one request: the logged rules' ids, and their
/// log lines in ModSecurity's `[id "…"] [msg "…"] [data "…"]` shape, which
/// go-ftw's `match_regex` expectations are written against.
#[derive(Debug, Default)]
pub struct Fired {
    pub ids: Vec<u64>,
    pub log: String,
}

pub fn run(rules: &RuleSet, input: &Input, req: &Request) -> Fired {
    let mut tx = Transaction::new(rules);
    let dest = input.dest_addr.as_deref().unwrap_or("127.0.0.1");
    tx.set_connection("127.0.0.1", 40000, dest, input.port.unwrap_or(80));
    tx.set_request_line(&req.method, &req.uri, &req.version);
    for (k, v) in &req.headers {
        tx.add_request_header(k, v);
    }
    tx.process_request_headers();
    tx.append_request_body(&req.body);
    tx.process_request_body();
    let (status, headers, body) = backend_response(req);
    tx.set_response_status(status, "HTTP/1.1");
    for (k, v) in &headers {
        tx.add_response_header(k, v);
    }
    tx.process_response_headers();
    tx.append_response_body(&body);
    tx.process_response_body();
    tx.process_logging();
    let mut fired = Fired::default();
    for m in tx.matched_rules().iter().filter(|m| m.logged) {
        fired.ids.push(m.id);
        let (msg, data) = (log_escape(&m.msg), log_escape(&m.logdata));
        fired.log.push_str(&format!(
            "[id \"{}\"] [msg \"{msg}\"] [data \"{data}\"]\n",
            m.id
        ));
    }
    fired
}

/// Control characters as `\xNN`, as ModSecurity writes them in its log, so
/// one rule stays on one line.
fn log_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_requests() {
        let raw = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nHi \r\n0\r\n\r\n";
        let req = parse_raw(raw);
        assert_eq!((req.method.as_str(), req.uri.as_str()), ("POST", "/a?b=1"));
        assert_eq!(req.headers.len(), 2);
        assert_eq!(req.body, b"3\r\nHi \r\n0\r\n\r\n");
    }
}
