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
    let mut name = String::from("json");
    flatten(&value, &mut name, 0, max_depth, out)
}

/// Adds the arguments under `v`, named from `name`, the path so far. The
/// path is one buffer for the whole body: a child's segment is appended
/// and cut off again, rather than a new string formatted per value.
fn flatten(
    v: &Value,
    name: &mut String,
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
                let parent = name.len();
                name.push('.');
                name.push_str(k);
                flatten(child, name, depth + 1, max, out)?;
                name.truncate(parent);
            }
        }
        Value::Array(items) => {
            // The array itself is an argument too, valued with its length
            // (Coraza does the same), so `ARGS_NAMES` sees `json.list`.
            let mut digits = itoa::Buffer::new();
            out.push(&**name, digits.format(items.len()));
            for (i, child) in items.iter().enumerate() {
                let parent = name.len();
                name.push('.');
                name.push_str(digits.format(i));
                flatten(child, name, depth + 1, max, out)?;
                name.truncate(parent);
            }
        }
        Value::String(s) => out.push(&**name, s.as_bytes()),
        Value::Null => out.push(&**name, &b""[..]),
        Value::Bool(b) => out.push(&**name, if *b { "true" } else { "false" }),
        Value::Number(n) => out.push(&**name, n.to_string()),
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

    /// Sibling paths do not leak into each other (the path buffer is cut
    /// back after each child), indices past 9 are whole numbers, and
    /// scalars keep their JSON text.
    #[test]
    fn sibling_paths_indices_and_scalars() {
        let mut c = Coll::default();
        let list: Vec<String> = (0..12).map(|i| i.to_string()).collect();
        let body = format!(
            r#"{{"o":{{"p":{{"q":true}},"r":false}},"l":[{}],"n":-1.5e3,"s":"x"}}"#,
            list.join(",")
        );
        parse(body.as_bytes(), 10, &mut c).unwrap();
        let pairs: Vec<(String, String)> = c
            .entries
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        // serde_json's map iterates in key order.
        let mut expected = vec![("json.l".to_string(), "12".to_string())];
        expected.extend((0..12).map(|i| (format!("json.l.{i}"), i.to_string())));
        for (k, v) in [
            ("json.n", "-1500.0"),
            ("json.o.p.q", "true"),
            ("json.o.r", "false"),
            ("json.s", "x"),
        ] {
            expected.push((k.to_string(), v.to_string()));
        }
        assert_eq!(pairs, expected);
    }
}
