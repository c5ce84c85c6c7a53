//! What the web server in front of ModSecurity does to a request before
//! the engine sees it, emulated so that CRS's expectations (written
//! against Apache httpd) hold: go-ftw body templates, header trimming and
//! merging, chunked bodies, `Content-Length` framing, HTTP/0.9.

use super::exchange::Request;

/// Expands go-ftw's `{{ "x" | repeat N }}` body templates.
pub fn expand_templates(data: &str) -> String {
    let mut out = String::with_capacity(data.len());
    let mut rest = data;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let inner = &rest[open + 2..open + close];
        match repeat(inner) {
            Some(expanded) => out.push_str(&expanded),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    out
}

/// `"x" | repeat N` → x repeated N times (bounded).
fn repeat(inner: &str) -> Option<String> {
    let (text, count) = inner.split_once('|')?;
    let text = text.trim().strip_prefix('"')?.strip_suffix('"')?;
    let count: usize = count.trim().strip_prefix("repeat")?.trim().parse().ok()?;
    Some(text.repeat(count.min(1 << 20)))
}

/// The request as the engine would receive it, or `None` when the server
/// rejects it outright (a bare CR or LF inside a header value).
pub fn server_view(mut req: Request) -> Option<Request> {
    let mut merged: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, value) in req.headers {
        if value.iter().any(|b| *b == b'\r' || *b == b'\n') {
            return None;
        }
        let value = value.trim_ascii().to_vec();
        // httpd joins repeated headers into one, comma-separated.
        match merged
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some((_, existing)) => {
                existing.extend_from_slice(b", ");
                existing.extend_from_slice(&value);
            }
            None => merged.push((name, value)),
        }
    }
    req.headers = merged;
    let header = |req: &Request, name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let chunked =
        header(&req, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        req.body = dechunk(&req.body);
        req.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
    } else {
        // Without a length an HTTP/1.x server reads no body; with one it
        // reads no more than that.
        let length = header(&req, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
        req.body.truncate(length.unwrap_or(0));
    }
    if req.version.is_empty() {
        req.version = "HTTP/0.9".into();
    }
    Some(req)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = data.get(end + 2..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(expand_templates(r#"a{{ "xy" | repeat 3 }}b"#), "axyxyxyb");
        assert_eq!(expand_templates("{{constructor}}"), "{{constructor}}");
    }

    #[test]
    fn server_normalisation() {
        let req = Request {
            method: "POST".into(),
            uri: "/".into(),
            version: String::new(),
            headers: vec![
                ("Transfer-Encoding".into(), b"chunked".to_vec()),
                ("Content-Length".into(), b"3".to_vec()),
                ("A".into(), b" x ".to_vec()),
                ("a".into(), b"y".to_vec()),
            ],
            body: b"3\r\nHi \r\n3\r\nCRS\r\n0\r\n\r\n".to_vec(),
        };
        let seen = server_view(req).unwrap();
        assert_eq!(seen.body, b"Hi CRS");
        assert_eq!(
            seen.headers,
            [
                ("Transfer-Encoding".to_string(), b"chunked".to_vec()),
                ("A".to_string(), b"x, y".to_vec())
            ]
        );
        assert_eq!(seen.version, "HTTP/0.9");
        let bad = Request {
            headers: vec![("X".into(), b"a\rb".to_vec())],
            ..Request::default()
        };
        assert!(server_view(bad).is_none());
    }
}
