//! JSON bodies, flattened into `ARGS_POST` the way ModSecurity and Coraza
//! name them: `{"a":{"b":[1,"x"]}}` → `json.a.b=2` (the length),
//! `json.a.b.0=1`, `json.a.b.1=x`.

use serde_json::Value;

use crate::eval::data::Coll;

/// Parses `body` and adds one argument per scalar; an error message when
/// the body is not JSON or nests deeper than `max_depth`.
pub(super) fn parse(body: &[u8], max_depth: usize, out: &mut Coll) -> Result<(), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("JSON parsing error: {e}"))?;
    flatten(&value, "json".to_string(), 0, max_depth, out)
}

fn flatten(
    v: &Value,
    name: String,
    depth: usize,
    max: usize,
    out: &mut Coll,
) -> Result<(), String> {
    if depth > max {
        return Err("JSON depth limit exceeded".into());
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                flatten(child, format!("{name}.{k}"), depth + 1, max, out)?;
            }
        }
        Value::Array(items) => {
            // The array itself is an argument too, valued with its length
            // (Coraza does the same), so `ARGS_NAMES` sees `json.list`.
            out.push(name.clone(), items.len().to_string());
            for (i, child) in items.iter().enumerate() {
                flatten(child, format!("{name}.{i}"), depth + 1, max, out)?;
            }
        }
        Value::String(s) => out.push(name, s.as_bytes()),
        Value::Null => out.push(name, &b""[..]),
        Value::Bool(b) => out.push(name, b.to_string()),
        Value::Number(n) => out.push(name, n.to_string()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_paths() {
        let mut c = Coll::default();
        parse(br#"{"a":{"b":[1,"x"]},"c":null}"#, 10, &mut c).unwrap();
        let names: Vec<&str> = c.entries.iter().map(|(k, _)| &**k).collect();
        assert_eq!(names, ["json.a.b", "json.a.b.0", "json.a.b.1", "json.c"]);
        assert_eq!(c.get("json.a.b"), Some(&b"2"[..]));
        assert!(parse(b"{", 10, &mut c).is_err());
        assert!(parse(br#"[[[[1]]]]"#, 2, &mut Coll::default()).is_err());
    }
}
