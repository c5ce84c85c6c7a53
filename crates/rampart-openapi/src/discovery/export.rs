//! Learned endpoints → a draft OpenAPI 3.1 document, and the diff against a
//! loaded document.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::tree::{Endpoint, Shape};

/// One endpoint named by method and path template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EndpointRef {
    pub method: String,
    pub path: String,
}

/// Learned traffic compared with a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffReport {
    /// Seen in traffic, not in the document (shadow APIs).
    pub shadow: Vec<EndpointRef>,
    /// In the document, never seen in traffic (dead or zombie endpoints).
    pub unseen: Vec<EndpointRef>,
    /// Seen and documented: (learned, documented) pairs.
    pub matched: Vec<(EndpointRef, EndpointRef)>,
}

/// Builds the draft document.
pub fn to_openapi(endpoints: &[Endpoint]) -> Value {
    let mut paths = Map::new();
    for e in endpoints {
        let item = paths.entry(e.path.clone()).or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(e.method.to_ascii_lowercase(), operation(e));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Discovered API (draft)",
            "version": "0.0.0-discovered",
            "description": "Learned by rampart from observed traffic. Review before use."
        },
        "paths": paths
    })
}

fn operation(e: &Endpoint) -> Value {
    let s = &e.stats;
    let mut parameters: Vec<Value> = path_params(&e.path)
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(s.query_params.iter().map(|(name, seen)| {
        json!({"name": name, "in": "query", "required": *seen == s.count, "schema": {"type": "string"}})
    }));
    let mut responses = Map::new();
    for status in s.statuses.keys() {
        let mut response = json!({"description": "observed"});
        if (200..300).contains(status) && !s.response_types.is_empty() {
            response["content"] = content(&s.response_types, s.response_shape.as_ref());
        }
        responses.insert(status.to_string(), response);
    }
    let mut op = json!({
        "parameters": parameters,
        "responses": responses,
        "x-rampart-observed": {
            "requests": s.count,
            "authenticated": s.authenticated,
            "anonymous": s.count - s.authenticated,
        }
    });
    if !s.request_types.is_empty() {
        op["requestBody"] = json!({"content": content(&s.request_types, s.request_shape.as_ref())});
    }
    op
}

fn content(types: &BTreeSet<String>, shape: Option<&Shape>) -> Value {
    let schema = shape.map_or_else(|| json!({}), shape_schema);
    let map: Map<String, Value> = types
        .iter()
        .map(|t| {
            let entry = if crate::operation::is_json(t) {
                json!({"schema": schema})
            } else {
                json!({})
            };
            (t.clone(), entry)
        })
        .collect();
    Value::Object(map)
}

fn shape_schema(shape: &Shape) -> Value {
    if shape.kind != "object" {
        return json!({"type": shape.kind});
    }
    let props: Map<String, Value> = shape
        .properties
        .iter()
        .map(|(k, t)| (k.clone(), json!({"type": t})))
        .collect();
    json!({"type": "object", "properties": props})
}

fn path_params(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
}

/// Compares learned endpoints with `api`. A learned template is matched by
/// running it through the document's router: its `{id}` segments fill the
/// document's templated segments, and never match a literal one.
pub fn diff(endpoints: &[Endpoint], api: &crate::OpenApi) -> DiffReport {
    let mut report = DiffReport::default();
    let mut seen: BTreeSet<EndpointRef> = BTreeSet::new();
    for e in endpoints {
        let learned = EndpointRef {
            method: e.method.clone(),
            path: e.path.clone(),
        };
        let method = e.method.parse::<http::Method>().ok();
        match method.as_ref().and_then(|m| api.find(m, &e.path).ok()) {
            Some(m) => {
                let documented = EndpointRef {
                    method: m.operation.method.to_string(),
                    path: m.operation.path.clone(),
                };
                seen.insert(documented.clone());
                report.matched.push((learned, documented));
            }
            None => report.shadow.push(learned),
        }
    }
    for op in api.operations() {
        let documented = EndpointRef {
            method: op.method.to_string(),
            path: op.path.clone(),
        };
        if !seen.contains(&documented) {
            report.unseen.push(documented);
        }
    }
    report
}
