//! Undeclared properties: what mass-assignment and data-exposure protection
//! look for.
//!
//! A property of a JSON object is *declared* when some schema that applies at
//! that place lists it in `properties`. The schemas that apply are the one at
//! the place plus, transitively, every `$ref` target and every branch of
//! `allOf`, `anyOf` and `oneOf` (all branches: the walk does not decide which
//! `oneOf` branch matched, so a property declared by any branch is allowed).
//!
//! An object is *open*, and none of its properties is undeclared, when an
//! applicable schema says so explicitly (`additionalProperties` or
//! `unevaluatedProperties` set to `true` or to a schema, i.e. a map), uses
//! `patternProperties`, or when no applicable schema lists any `properties`
//! (a free-form `{"type": "object"}`). An absent `additionalProperties` does
//! not open an object: that default is exactly the gap mass assignment uses.

use serde_json::Value;

use crate::spec::{escape_pointer, lookup};

/// Deepest instance nesting walked; deeper values are left alone.
const MAX_DEPTH: usize = 64;
/// Longest `$ref` chain followed while gathering schemas.
const MAX_REF_HOPS: usize = 32;

/// The first undeclared property under `schema`, as a JSON pointer.
pub fn find_undeclared(doc: &Value, schema: &Value, instance: &Value) -> Option<String> {
    let mut pointer = String::new();
    find_in(doc, &[schema], instance, &mut pointer, 0).then_some(pointer)
}

/// Removes every undeclared property under `schema`; returns how many.
pub fn strip_undeclared(doc: &Value, schema: &Value, instance: &mut Value) -> usize {
    strip_in(doc, &[schema], instance, 0)
}

fn find_in(
    doc: &Value,
    schemas: &[&Value],
    instance: &Value,
    pointer: &mut String,
    depth: usize,
) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let applicable = gather(doc, schemas);
    match instance {
        Value::Object(map) => {
            let open = is_open(&applicable);
            for (key, value) in map {
                let mark = pointer.len();
                pointer.push('/');
                push_escaped(pointer, key);
                let children = property_schemas(&applicable, key);
                if children.is_empty() && !open {
                    return true;
                }
                if find_in(doc, &children, value, pointer, depth + 1) {
                    return true;
                }
                pointer.truncate(mark);
            }
            false
        }
        Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            let mark = pointer.len();
            pointer.push('/');
            pointer.push_str(&i.to_string());
            let found = find_in(doc, &item_schemas(&applicable, i), item, pointer, depth + 1);
            if !found {
                pointer.truncate(mark);
            }
            found
        }),
        _ => false,
    }
}

fn strip_in(doc: &Value, schemas: &[&Value], instance: &mut Value, depth: usize) -> usize {
    if depth > MAX_DEPTH {
        return 0;
    }
    let applicable = gather(doc, schemas);
    match instance {
        Value::Object(map) => {
            let mut removed = 0;
            if !is_open(&applicable) {
                let before = map.len();
                map.retain(|key, _| !property_schemas(&applicable, key).is_empty());
                removed = before - map.len();
            }
            for (key, value) in map.iter_mut() {
                removed += strip_in(doc, &property_schemas(&applicable, key), value, depth + 1);
            }
            removed
        }
        Value::Array(items) => items
            .iter_mut()
            .enumerate()
            .map(|(i, item)| strip_in(doc, &item_schemas(&applicable, i), item, depth + 1))
            .sum(),
        _ => 0,
    }
}

/// Appends `key` as a JSON pointer segment without allocating when it needs
/// no escaping (the common case).
fn push_escaped(pointer: &mut String, key: &str) {
    if key.contains(['~', '/']) {
        pointer.push_str(&escape_pointer(key));
    } else {
        pointer.push_str(key);
    }
}

/// Every schema that applies where `schemas` do: `$ref` targets and all
/// composition branches, transitively.
fn gather<'d>(doc: &'d Value, schemas: &[&'d Value]) -> Vec<&'d Value> {
    let mut out: Vec<&Value> = Vec::new();
    let mut stack: Vec<(&Value, usize)> = schemas.iter().map(|s| (*s, 0)).collect();
    while let Some((schema, hops)) = stack.pop() {
        if hops > MAX_REF_HOPS || out.iter().any(|seen| std::ptr::eq(*seen, schema)) {
            continue;
        }
        out.push(schema);
        if let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| lookup(doc, r))
        {
            stack.push((target, hops + 1));
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            for branch in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                stack.push((branch, hops + 1));
            }
        }
    }
    out
}

fn is_open(applicable: &[&Value]) -> bool {
    let opens = |v: Option<&Value>| matches!(v, Some(Value::Bool(true)) | Some(Value::Object(_)));
    let mut any_properties = false;
    for s in applicable {
        if opens(s.get("additionalProperties"))
            || opens(s.get("unevaluatedProperties"))
            || s.get("patternProperties").is_some()
        {
            return true;
        }
        any_properties |= s.get("properties").is_some_and(Value::is_object);
    }
    !any_properties
}

fn property_schemas<'d>(applicable: &[&'d Value], key: &str) -> Vec<&'d Value> {
    applicable
        .iter()
        .filter_map(|s| s.get("properties")?.get(key))
        .collect()
}

fn item_schemas<'d>(applicable: &[&'d Value], index: usize) -> Vec<&'d Value> {
    let mut out = Vec::new();
    for s in applicable {
        let prefix = s.get("prefixItems").and_then(Value::as_array);
        match (s.get("items"), prefix) {
            (_, Some(tuple)) if index < tuple.len() => out.push(&tuple[index]),
            // Draft-4 tuple form: `items` as an array.
            (Some(Value::Array(tuple)), _) => out.extend(tuple.get(index)),
            (Some(items @ Value::Object(_)), _) => out.push(items),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Base": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "User": {"allOf": [{"$ref": "#/components/schemas/Base"},
                {"type": "object", "properties": {"name": {"type": "string"},
                 "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}}}}]},
            "Tag": {"type": "object", "properties": {"label": {"type": "string"}}},
            "Map": {"type": "object", "additionalProperties": {"type": "string"}},
            "Free": {"type": "object"},
            "Pet": {"oneOf": [
                {"type": "object", "properties": {"bark": {"type": "boolean"}}},
                {"type": "object", "properties": {"meow": {"type": "boolean"}}}]}
        }}})
    }

    fn user() -> Value {
        json!({"$ref": "#/components/schemas/User"})
    }

    #[test]
    fn all_of_and_ref_properties_are_declared() {
        let d = doc();
        let ok = json!({"id": 1, "name": "a", "tags": [{"label": "x"}]});
        assert_eq!(find_undeclared(&d, &user(), &ok), None);
    }

    #[test]
    fn undeclared_found_at_depth_with_pointer() {
        let d = doc();
        let bad = json!({"id": 1, "tags": [{"label": "x"}, {"label": "y", "is_admin": true}]});
        assert_eq!(
            find_undeclared(&d, &user(), &bad).as_deref(),
            Some("/tags/1/is_admin")
        );
        let top = json!({"role": "admin"});
        assert_eq!(find_undeclared(&d, &user(), &top).as_deref(), Some("/role"));
    }

    #[test]
    fn strip_removes_only_undeclared() {
        let d = doc();
        let mut v = json!({"id": 1, "role": "admin", "tags": [{"label": "x", "owner": 7}]});
        assert_eq!(strip_undeclared(&d, &user(), &mut v), 2);
        assert_eq!(v, json!({"id": 1, "tags": [{"label": "x"}]}));
    }

    #[test]
    fn maps_and_free_form_objects_are_open() {
        let d = doc();
        let map = json!({"$ref": "#/components/schemas/Map"});
        assert_eq!(find_undeclared(&d, &map, &json!({"anything": "x"})), None);
        let free = json!({"$ref": "#/components/schemas/Free"});
        assert_eq!(find_undeclared(&d, &free, &json!({"anything": 1})), None);
    }

    #[test]
    fn one_of_branches_are_unioned() {
        let d = doc();
        let pet = json!({"$ref": "#/components/schemas/Pet"});
        assert_eq!(find_undeclared(&d, &pet, &json!({"meow": true})), None);
        assert_eq!(
            find_undeclared(&d, &pet, &json!({"fly": true})).as_deref(),
            Some("/fly")
        );
    }

    #[test]
    fn ref_cycles_terminate() {
        let d = json!({"components": {"schemas": {
            "A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}}});
        let s = json!({"$ref": "#/components/schemas/A"});
        assert_eq!(find_undeclared(&d, &s, &json!({"x": 1})), None);
    }

    #[test]
    fn keys_with_slashes_are_escaped() {
        let d = doc();
        let v = json!({"a/b~c": 1});
        assert_eq!(
            find_undeclared(&d, &user(), &v).as_deref(),
            Some("/a~1b~0c")
        );
    }
}
