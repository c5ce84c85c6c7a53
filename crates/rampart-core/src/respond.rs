//! The one place where a refusal becomes an HTTP response.
//!
//! API clients get `application/problem+json` (RFC 9457); a client that
//! prefers HTML (a browser) gets a small page. Both carry the status, the
//! stable reason code and the request id, and never internal error text.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Response};

use crate::decision::Denial;

/// Header that carries the request id on every response.
pub const REQUEST_ID: &str = "x-request-id";

/// Renders a denial for the client described by `request_headers`.
pub fn render(denial: &Denial, request_id: &str, request_headers: &HeaderMap) -> Response<Bytes> {
    render_as(denial, request_id, prefers_html(request_headers))
}

/// Renders a denial as HTML (`html`) or problem+json.
pub fn render_as(denial: &Denial, request_id: &str, html: bool) -> Response<Bytes> {
    let (body, content_type) = match denial.body.as_deref() {
        Some((content_type, body)) => (body.clone(), content_type.clone()),
        None if html => (
            Bytes::from(html_body(denial, request_id)),
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        None => (
            Bytes::from(json_body(denial, request_id)),
            HeaderValue::from_static("application/problem+json"),
        ),
    };
    let len = body.len();
    let mut resp = Response::new(body);
    *resp.status_mut() = denial.status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, content_type);
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(REQUEST_ID, v);
    }
    for (name, value) in &denial.headers {
        h.append(name.clone(), value.clone());
    }
    resp
}

fn json_body(denial: &Denial, request_id: &str) -> String {
    let body = serde_json::json!({
        "type": format!("urn:rampart:reason:{}", denial.reason),
        "title": denial.status.canonical_reason().unwrap_or("Error"),
        "status": denial.status.as_u16(),
        "detail": denial.detail,
        "reason": denial.reason,
        "request_id": request_id,
    });
    body.to_string()
}

fn html_body(denial: &Denial, request_id: &str) -> String {
    let title = denial.status.canonical_reason().unwrap_or("Error");
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status} {title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}}\
         code{{background:#eee;padding:0 .3em}}</style></head><body>\
         <h1>{status} {title}</h1><p>{detail}</p>\
         <p>Reason: <code>{reason}</code><br>Request id: <code>{rid}</code></p>\
         </body></html>",
        status = denial.status.as_u16(),
        title = escape_html(title),
        detail = escape_html(&denial.detail),
        reason = escape_html(denial.reason),
        rid = escape_html(request_id),
    )
}

/// `s` with the five HTML-special characters as entities, safe inside
/// element text and quoted attributes; borrowed when there is none. The one
/// escaper for every page rampart renders (refusals, challenges, forms).
pub fn escape_html(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// True when the client ranks `text/html` above JSON in its `Accept` header.
/// A client that sends no `Accept` or `*/*` (curl, SDKs) gets JSON.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let mut html_q = 0.0f32;
    let mut json_q = 0.0f32;
    for value in headers.get_all(http::header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media.eq_ignore_ascii_case("text/html") {
                html_q = html_q.max(q);
            } else if media.eq_ignore_ascii_case("application/json")
                || media.eq_ignore_ascii_case("application/problem+json")
            {
                json_q = json_q.max(q);
            }
        }
    }
    html_q > 0.0 && html_q > json_q
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn escape_html_covers_the_five_specials_and_borrows_clean_text() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(matches!(
            escape_html("plain text é"),
            std::borrow::Cow::Borrowed("plain text é")
        ));
    }

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        assert!(prefers_html(&accept(
            "text/html,application/xhtml+xml,*/*;q=0.8"
        )));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(!prefers_html(&accept("application/json, text/html;q=0.5")));
        assert!(prefers_html(&accept("application/json;q=0.4, text/html")));
    }

    #[test]
    fn json_denial_carries_reason_and_request_id() {
        let d = Denial::new(
            StatusCode::FORBIDDEN,
            "ip_denied",
            "your address is not allowed",
        );
        let r = render(&d, "abc123", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(r.headers()[REQUEST_ID], "abc123");
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["reason"], "ip_denied");
        assert_eq!(v["request_id"], "abc123");
        assert_eq!(v["status"], 403);
        assert_eq!(
            r.headers()[CONTENT_LENGTH],
            r.body().len().to_string().as_str()
        );
    }

    #[test]
    fn html_denial_escapes_detail() {
        let d = Denial::new(StatusCode::BAD_REQUEST, "bad_request", "<script>x</script>");
        let r = render(&d, "rid", &accept("text/html"));
        let body = std::str::from_utf8(r.body()).unwrap();
        assert!(body.contains("&lt;script&gt;"));
        assert!(!body.contains("<script>"));
        assert!(body.contains("bad_request") && body.contains("rid"));
    }

    #[test]
    fn extra_headers_are_kept() {
        let d = Denial::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("3"));
        let r = render(&d, "rid", &HeaderMap::new());
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "3");
    }

    #[test]
    fn a_filter_page_replaces_the_problem_document() {
        let page = Bytes::from_static(b"<p>solve the puzzle</p>");
        let d = Denial::new(StatusCode::FORBIDDEN, "challenge_required", "x")
            .with_body(HeaderValue::from_static("text/html"), page.clone());
        for html in [true, false] {
            let r = render_as(&d, "rid", html);
            assert_eq!(r.headers()[CONTENT_TYPE], "text/html");
            assert_eq!(r.headers()[CONTENT_LENGTH], page.len().to_string().as_str());
            assert_eq!(r.body(), &page);
            assert_eq!(r.headers()[REQUEST_ID], "rid");
        }
    }
}
