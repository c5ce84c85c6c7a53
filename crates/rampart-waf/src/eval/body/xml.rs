//! A minimal XML reader for `XML:/*` (all text) and `XML://@*` (attribute
//! values): tags are scanned, not validated beyond balance of `<` and `>`.

use crate::eval::data::Request;

/// Bound on collected nodes; more is an error rather than unbounded work.
const MAX_NODES: usize = 100_000;

pub(super) fn parse(body: &[u8], req: &mut Request) -> Result<(), String> {
    let mut i = 0;
    let mut saw_element = false;
    while i < body.len() {
        if req.xml_text.len() + req.xml_attrs.len() > MAX_NODES {
            return Err("XML: too many nodes".into());
        }
        if body[i] != b'<' {
            let end = body[i..]
                .iter()
                .position(|b| *b == b'<')
                .map_or(body.len(), |p| i + p);
            let text = &body[i..end];
            if !text.iter().all(u8::is_ascii_whitespace) {
                req.xml_text.push(decode_entities(text));
            }
            i = end;
            continue;
        }
        if body[i..].starts_with(b"<![CDATA[") {
            let start = i + 9;
            let end = find(&body[start..], b"]]>").ok_or("XML: unterminated CDATA")?;
            req.xml_text.push(body[start..start + end].to_vec());
            i = start + end + 3;
            continue;
        }
        if body[i..].starts_with(b"<!--") {
            let end = find(&body[i..], b"-->").ok_or("XML: unterminated comment")?;
            i += end + 3;
            continue;
        }
        let end = body[i..]
            .iter()
            .position(|b| *b == b'>')
            .ok_or("XML: unterminated tag")?;
        let tag = &body[i + 1..i + end];
        if !matches!(tag.first(), Some(b'?' | b'!' | b'/')) {
            saw_element = true;
            attributes(tag, &mut req.xml_attrs);
        }
        i += end + 1;
    }
    if !saw_element {
        return Err("XML: no root element".into());
    }
    Ok(())
}

/// Values of `name="value"` / `name='value'` pairs inside a tag.
fn attributes(tag: &[u8], out: &mut Vec<Vec<u8>>) {
    let mut i = 0;
    while i < tag.len() {
        if tag[i] == b'=' {
            let mut j = i + 1;
            while j < tag.len() && tag[j].is_ascii_whitespace() {
                j += 1;
            }
            if let Some(&q @ (b'"' | b'\'')) = tag.get(j) {
                let start = j + 1;
                let end = tag[start..]
                    .iter()
                    .position(|b| *b == q)
                    .map_or(tag.len(), |p| start + p);
                out.push(decode_entities(&tag[start..end]));
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
}

/// Replaces the predefined entities and character references, as an XML
/// parser does before anything reads the text.
fn decode_entities(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'&' {
            if let Some((decoded, used)) = entity(&text[i + 1..]) {
                out.extend_from_slice(&decoded);
                i += used + 1;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// The entity after `&` (up to `;`): its bytes and the length consumed.
fn entity(rest: &[u8]) -> Option<(Vec<u8>, usize)> {
    let end = rest.iter().take(12).position(|b| *b == b';')?;
    let name = std::str::from_utf8(&rest[..end]).ok()?;
    let ch = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => name.strip_prefix('#')?.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    let mut buf = [0u8; 4];
    Some((ch.encode_utf8(&mut buf).as_bytes().to_vec(), end + 1))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes() {
        let mut req = Request::default();
        parse(
            br#"<?xml version="1.0"?><a x="1"><b y='2'>hi</b><![CDATA[<c>]]></a>"#,
            &mut req,
        )
        .unwrap();
        assert_eq!(req.xml_text, [b"hi".to_vec(), b"<c>".to_vec()]);
        assert_eq!(req.xml_attrs, [b"1".to_vec(), b"2".to_vec()]);
        assert!(parse(b"just text", &mut Request::default()).is_err());
        let mut req = Request::default();
        parse(b"<a p='&#x7B;&lt;&quot;'>&#65;&amp;</a>", &mut req).unwrap();
        assert_eq!(req.xml_attrs, [b"{<\"".to_vec()]);
        assert_eq!(req.xml_text, [b"A&".to_vec()]);
    }
}
