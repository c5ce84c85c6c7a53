//! `multipart/form-data`: parts become `ARGS_POST` (fields) or `FILES`
//! (uploads), their headers `MULTIPART_PART_HEADERS`, and irregularities
//! raise the `MULTIPART_*` flags ModSecurity defines, which CRS inspects.
//!
//! Lines may end in CRLF or bare LF (the latter raises `MULTIPART_LF_LINE`).

use crate::eval::data::{FilePart, Request};

/// Bound on parts; more is an error (`MULTIPART_FILE_LIMIT_EXCEEDED` for
/// files), never unbounded work.
const MAX_PARTS: usize = 1000;

/// The boundary from `Content-Type`, noting quoting and whitespace.
fn boundary(ctype: &[u8], req: &mut Request) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(ctype);
    let lower = text.to_ascii_lowercase();
    let at = lower.find("boundary")?;
    let rest = text[at + 8..].trim_start();
    let rest = rest.strip_prefix('=')?;
    if rest.starts_with([' ', '\t']) {
        req.multipart.boundary_whitespace = true;
    }
    let rest = rest.trim_start();
    let value = if let Some(q) = rest.strip_prefix('"') {
        req.multipart.boundary_quoted = true;
        q.split('"').next().unwrap_or("")
    } else {
        rest.split(';').next().unwrap_or("").trim_end()
    };
    if value.contains([' ', '\t']) {
        req.multipart.boundary_whitespace = true;
    }
    (!value.is_empty()).then(|| value.as_bytes().to_vec())
}

/// Splits into lines; each with a flag telling whether it ended in CRLF.
fn lines(body: &[u8]) -> Vec<(&[u8], bool)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in body.iter().enumerate() {
        if *b == b'\n' {
            let crlf = i > start && body[i - 1] == b'\r';
            let end = if crlf { i - 1 } else { i };
            out.push((&body[start..end], crlf));
            start = i + 1;
        }
    }
    if start < body.len() {
        out.push((&body[start..], true));
    }
    out
}

#[derive(Default)]
struct Part {
    headers: Vec<Vec<u8>>,
    content: Vec<u8>,
    in_body: bool,
    /// Separator before the next content line (the line break that
    /// precedes a boundary belongs to the boundary, not the content).
    pending: Vec<u8>,
}

pub(super) fn parse(ctype: &[u8], body: &[u8], req: &mut Request) -> Result<(), String> {
    let boundary = boundary(ctype, req).ok_or("Multipart: boundary not found")?;
    let mut dash = b"--".to_vec();
    dash.extend_from_slice(&boundary);
    let mut part: Option<Part> = None;
    let mut finished = false;
    let (mut crlf_lines, mut lf_lines) = (0usize, 0usize);
    for (line, crlf) in lines(body) {
        if finished {
            if !line.iter().all(u8::is_ascii_whitespace) {
                req.multipart.data_after = true;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(dash.as_slice()) {
            if let Some(p) = part.take() {
                finish_part(p, req)?;
            }
            if rest.starts_with(b"--") {
                finished = true;
            } else {
                if !rest.iter().all(u8::is_ascii_whitespace) {
                    req.multipart.unmatched_boundary = true;
                }
                part = Some(Part::default());
            }
            count_ending(crlf, &mut crlf_lines, &mut lf_lines);
            continue;
        }
        match part.as_mut() {
            None => {
                if !line.is_empty() {
                    req.multipart.data_before = true;
                }
                if line.starts_with(b"--") {
                    req.multipart.unmatched_boundary = true;
                }
            }
            Some(p) if !p.in_body => {
                count_ending(crlf, &mut crlf_lines, &mut lf_lines);
                header_line(p, line, req);
            }
            Some(p) => {
                p.content.append(&mut p.pending);
                p.content.extend_from_slice(line);
                p.pending = if crlf {
                    b"\r\n".to_vec()
                } else {
                    b"\n".to_vec()
                };
            }
        }
    }
    req.multipart.lf_line = lf_lines > 0;
    req.multipart.crlf_lf_lines = lf_lines > 0 && crlf_lines > 0;
    if let Some(p) = part.take() {
        finish_part(p, req)?;
    }
    if !finished {
        return Err("Multipart: final boundary missing".into());
    }
    Ok(())
}

fn count_ending(crlf: bool, crlf_lines: &mut usize, lf_lines: &mut usize) {
    if crlf {
        *crlf_lines += 1;
    } else {
        *lf_lines += 1;
    }
}

fn header_line(p: &mut Part, line: &[u8], req: &mut Request) {
    if line.is_empty() {
        p.in_body = true;
        return;
    }
    if matches!(line.first(), Some(b' ' | b'\t')) {
        // Folded continuation of the previous header.
        req.multipart.header_folding = true;
        match p.headers.last_mut() {
            Some(last) => last.extend_from_slice(line),
            None => req.multipart.invalid_header_folding = true,
        }
        return;
    }
    if !line.contains(&b':') {
        req.multipart.invalid_part = true;
    }
    p.headers.push(line.to_vec());
}

/// Files a completed part under `FILES` or `ARGS_POST`.
fn finish_part(p: Part, req: &mut Request) -> Result<(), String> {
    if req.args_post.len() + req.files.len() >= MAX_PARTS {
        req.multipart.file_limit_exceeded = true;
        return Err("Multipart: too many parts".into());
    }
    let mut name = None;
    let mut filename = None;
    for h in &p.headers {
        let text = String::from_utf8_lossy(h);
        let Some((hname, value)) = text.split_once(':') else {
            continue;
        };
        if hname.trim().eq_ignore_ascii_case("content-disposition") {
            let params = disposition(value.trim(), req)?;
            name = params.0;
            filename = params.1;
        }
    }
    let Some(name) = name else {
        req.multipart.invalid_part = true;
        return Err("Multipart: part without a name".into());
    };
    for h in &p.headers {
        req.multipart_part_headers.push(name.clone(), h.clone());
    }
    req.multipart_name = Some(name.clone());
    match filename {
        Some(filename) => {
            req.multipart_filename = Some(filename.clone());
            req.files.push(FilePart {
                field: name,
                filename,
                size: p.content.len(),
            });
        }
        None => req.args_post.push(name, p.content),
    }
    Ok(())
}

/// `form-data; name="a"; filename="b"` → (name, filename).
type Names = (Option<String>, Option<String>);

fn disposition(value: &str, req: &mut Request) -> Result<Names, String> {
    let Some(rest) = value.strip_prefix("form-data") else {
        return Err("Multipart: invalid Content-Disposition".into());
    };
    let mut names: Names = (None, None);
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        match rest.strip_prefix(';') {
            Some(r) => rest = r.trim_start(),
            None => req.multipart.missing_semicolon = true,
        }
        let eq = rest
            .find('=')
            .ok_or("Multipart: invalid Content-Disposition parameter")?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        let (val, after) = param_value(&rest[eq + 1..], req);
        // Surrounding blanks are not part of a name (`"photo.php  "` is
        // a .php upload to the applications that receive it).
        let val = val.trim().to_string();
        match key.as_str() {
            "name" => names.0 = Some(val),
            "filename" | "filename*" => names.1 = Some(val),
            _ => {}
        }
        rest = after.trim_start();
    }
    Ok(names)
}

/// A quoted or bare parameter value, and the text after it.
fn param_value<'a>(text: &'a str, req: &mut Request) -> (String, &'a str) {
    let text = text.trim_start();
    if let Some(q) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                // Only `\"` and `\\` are escapes; other backslashes stay, so
                // `"a\b.php"` still shows its backslash to the rules.
                '\\' if matches!(q[i + 1..].chars().next(), Some('"' | '\\')) => {
                    if let Some((_, n)) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => return (out, &q[i + 1..]),
                c => out.push(c),
            }
        }
        req.multipart.invalid_quoting = true;
        return (out, "");
    }
    if text.starts_with('\'') {
        req.multipart.invalid_quoting = true;
    }
    let end = text.find(';').unwrap_or(text.len());
    (text[..end].trim().to_string(), &text[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_files() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\nworld\r\n\
--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XX--\r\n";
        let mut req = Request::default();
        parse(b"multipart/form-data; boundary=XX", body, &mut req).unwrap();
        assert_eq!(req.args_post.get("a"), Some(&b"hello\r\nworld"[..]));
        assert_eq!(req.files[0].filename, "x.php");
        assert_eq!(req.files[0].size, 5);
        assert_eq!(req.multipart_part_headers.len(), 3);
        assert!(!req.multipart.lf_line);
    }

    #[test]
    fn irregularities_raise_flags() {
        let body = b"junk\n--XX\nContent-Disposition: form-data; name=a\n\nv\n--XX--\n";
        let mut req = Request::default();
        parse(b"multipart/form-data; boundary=\"XX\"", body, &mut req).unwrap();
        assert!(
            req.multipart.data_before && req.multipart.lf_line && req.multipart.boundary_quoted
        );
        assert_eq!(req.args_post.get("a"), Some(&b"v"[..]));
        let mut req = Request::default();
        assert!(parse(b"multipart/form-data", body, &mut req).is_err());
    }
}
