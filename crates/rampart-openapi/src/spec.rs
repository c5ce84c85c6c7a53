//! Reading an OpenAPI document: JSON or YAML text, version detection, internal
//! `$ref` resolution with cycle detection, `servers` base paths, and the
//! OpenAPI 3.0 → JSON Schema translation (`nullable`).

use serde_json::{Map, Value};

use crate::error::LoadError;

/// Which OpenAPI line the document follows; decides the JSON Schema dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    /// 3.0.x: schemas are a JSON Schema draft-4 dialect with `nullable`.
    V3_0,
    /// 3.1.x: schemas are JSON Schema 2020-12.
    V3_1,
}

/// Longest chain of `$ref` → `$ref` hops followed before giving up.
const MAX_REF_HOPS: usize = 32;

/// Parses JSON (if the text starts with `{`) or YAML into a JSON value.
///
/// YAML mappings may have non-string keys (`200:` for a response code), so
/// YAML goes through the YAML value model and keys are rendered as strings.
pub fn parse_text(text: &str) -> Result<Value, LoadError> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| LoadError::Parse(e.to_string()));
    }
    let yaml: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| LoadError::Parse(e.to_string()))?;
    yaml_to_json(yaml, 0)
}

fn yaml_to_json(v: serde_norway::Value, depth: usize) -> Result<Value, LoadError> {
    use serde_norway::Value as Y;
    if depth > 256 {
        return Err(LoadError::Parse("YAML nesting deeper than 256".into()));
    }
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => yaml_number(&n),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(|i| yaml_to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                out.insert(yaml_key(k)?, yaml_to_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value, depth + 1)?,
    })
}

fn yaml_number(n: &serde_norway::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::from(i)
    } else if let Some(u) = n.as_u64() {
        Value::from(u)
    } else {
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    }
}

fn yaml_key(k: serde_norway::Value) -> Result<String, LoadError> {
    use serde_norway::Value as Y;
    match k {
        Y::String(s) => Ok(s),
        Y::Number(n) => Ok(n.to_string()),
        Y::Bool(b) => Ok(b.to_string()),
        Y::Null => Ok("null".into()),
        _ => Err(LoadError::Parse(
            "a YAML mapping key is not a scalar".into(),
        )),
    }
}

/// Reads the `openapi` field.
pub fn detect_version(doc: &Value) -> Result<SpecVersion, LoadError> {
    let v = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if v.starts_with("3.0.") || v == "3.0" {
        Ok(SpecVersion::V3_0)
    } else if v.starts_with("3.1.") || v == "3.1" {
        Ok(SpecVersion::V3_1)
    } else {
        Err(LoadError::Version(v.chars().take(32).collect()))
    }
}

/// Follows `value`'s `$ref` chain inside `doc` until a non-reference object.
///
/// Only internal references (`#/...`) are accepted: a gateway must not fetch
/// files or URLs named by a document. A chain that revisits a reference, or
/// is longer than [`MAX_REF_HOPS`], is a cycle and an error.
pub fn resolve<'a>(doc: &'a Value, value: &'a Value, at: &str) -> Result<&'a Value, LoadError> {
    let mut current = value;
    let mut seen: Vec<&str> = Vec::new();
    while let Some(reference) = current.get("$ref").and_then(Value::as_str) {
        if seen.contains(&reference) || seen.len() >= MAX_REF_HOPS {
            return Err(ref_error(reference, at, "reference cycle"));
        }
        seen.push(reference);
        current =
            lookup(doc, reference).ok_or_else(|| ref_error(reference, at, "target not found"))?;
    }
    Ok(current)
}

/// Looks up an internal reference (`#/a/b`), or `None`.
pub fn lookup<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(doc);
    }
    let decoded = percent_encoding::percent_decode_str(pointer)
        .decode_utf8()
        .ok()?;
    doc.pointer(&decoded)
}

fn ref_error(reference: &str, at: &str, problem: &'static str) -> LoadError {
    LoadError::Ref {
        reference: reference.chars().take(200).collect(),
        at: at.to_string(),
        problem,
    }
}

/// Checks every `$ref` in the document: internal, resolvable, not a pure
/// reference cycle. Recursive schemas (a tree node whose children are tree
/// nodes) are fine: only `$ref` → `$ref` loops are refused.
pub fn check_refs(doc: &Value) -> Result<(), LoadError> {
    let mut stack = vec![(doc, String::new())];
    while let Some((node, at)) = stack.pop() {
        match node {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref") {
                    let Some(reference) = r.as_str() else {
                        return Err(ref_error("<non-string>", &at, "`$ref` must be a string"));
                    };
                    if !reference.starts_with('#') {
                        return Err(ref_error(
                            reference,
                            &at,
                            "only internal `#/...` references are supported",
                        ));
                    }
                    resolve(doc, node, &at)?;
                }
                for (k, v) in map {
                    stack.push((v, format!("{at}/{}", escape_pointer(k))));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    stack.push((v, format!("{at}/{i}")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Base paths from `servers[*].url` (path part only, no trailing `/`).
/// An empty list means "served at the root". Server variables in the path
/// take their `default`.
pub fn base_paths(servers: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for server in servers.and_then(Value::as_array).into_iter().flatten() {
        let Some(url) = server.get("url").and_then(Value::as_str) else {
            continue;
        };
        let url = substitute_variables(url, server.get("variables"));
        let path = url_path(&url).trim_end_matches('/').to_string();
        if !out.contains(&path) {
            out.push(path);
        }
    }
    if out.iter().any(String::is_empty) {
        // One server at the root makes every other base path optional too.
        out.retain(|p| !p.is_empty());
        out.push(String::new());
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.len()));
    out
}

fn substitute_variables(url: &str, vars: Option<&Value>) -> String {
    let mut out = url.to_string();
    if let Some(vars) = vars.and_then(Value::as_object) {
        for (name, var) in vars {
            let default = var.get("default").and_then(Value::as_str).unwrap_or("");
            out = out.replace(&format!("{{{name}}}"), default);
        }
    }
    out
}

fn url_path(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None if url.starts_with("//") => &url[2..],
        None => return url,
    };
    rest.find('/').map_or("", |i| &rest[i..])
}

/// Rewrites OpenAPI 3.0 schema extensions into plain JSON Schema, in place,
/// everywhere a schema can appear in the document.
///
/// `nullable: true` becomes `null` added to `type` (and `enum`), or, when the
/// schema has no `type` (a `$ref`, a composition), an `anyOf` with
/// `{"type": "null"}`, which is what authors mean by it in practice.
pub fn translate_v30(doc: &mut Value) {
    translate_node(doc, 0);
}

fn translate_node(node: &mut Value, depth: usize) {
    if depth > 512 {
        return;
    }
    match node {
        Value::Object(map) => {
            for v in map.values_mut() {
                translate_node(v, depth + 1);
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                make_nullable(map);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| translate_node(v, depth + 1)),
        _ => {}
    }
}

fn make_nullable(map: &mut Map<String, Value>) {
    map.remove("nullable");
    if let Some(Value::Array(values)) = map.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            map.insert(
                "type".into(),
                Value::Array(vec![Value::String(t), "null".into()]),
            );
        }
        Some(Value::Array(types)) => {
            if !types.iter().any(|t| t == "null") {
                types.push("null".into());
            }
        }
        _ => {
            let inner = Value::Object(std::mem::take(map));
            map.insert(
                "anyOf".into(),
                Value::Array(vec![inner, serde_json::json!({"type": "null"})]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_integer_keys_become_strings() {
        let doc = parse_text("openapi: 3.0.3\nresponses:\n  200:\n    description: ok\n").unwrap();
        assert!(doc["responses"]["200"].is_object());
    }

    #[test]
    fn ref_cycles_are_refused() {
        let doc = json!({"components": {"parameters": {
            "a": {"$ref": "#/components/parameters/b"},
            "b": {"$ref": "#/components/parameters/a"}}}});
        let err = check_refs(&doc).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
    }

    #[test]
    fn recursive_schemas_are_not_cycles() {
        let doc = json!({"components": {"schemas": {"Node": {"type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}}});
        check_refs(&doc).unwrap();
    }

    #[test]
    fn external_refs_are_refused() {
        let doc = json!({"a": {"$ref": "other.yaml#/x"}});
        assert!(check_refs(&doc)
            .unwrap_err()
            .to_string()
            .contains("internal"));
    }

    #[test]
    fn base_paths_come_from_server_urls() {
        let servers = json!([
            {"url": "https://api.example.com/v1/"},
            {"url": "/{ver}/api", "variables": {"ver": {"default": "v2"}}}
        ]);
        assert_eq!(
            base_paths(Some(&servers)),
            vec!["/v2/api".to_string(), "/v1".to_string()]
        );
        assert!(base_paths(None).is_empty());
    }

    #[test]
    fn nullable_is_translated() {
        let mut s = json!({"type": "string", "nullable": true, "enum": ["a"]});
        translate_v30(&mut s);
        assert_eq!(s, json!({"type": ["string", "null"], "enum": ["a", null]}));
        let mut r = json!({"$ref": "#/x", "nullable": true});
        translate_v30(&mut r);
        assert_eq!(r, json!({"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}));
    }
}
