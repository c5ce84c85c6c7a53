//! The learned path tree behind one discovery shard, and the per-endpoint
//! statistics it keeps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::classify::is_identifier;
use super::{DiscoveryOptions, Exchange};

const MAX_STATUSES: usize = 32;
const MAX_MEDIA_TYPES: usize = 8;
const MAX_SHAPE_PROPERTIES: usize = 64;
/// A collapsed node keeps a literal child seen at least this often...
const POPULAR_MIN_HITS: u64 = 10;
/// ...and at least this share (in percent) of the node's traffic.
const POPULAR_MIN_PERCENT: u64 = 10;

/// What was learned about one (template, method) endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub count: u64,
    pub authenticated: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub query_params: BTreeMap<String, u64>,
    pub request_types: BTreeSet<String>,
    pub response_types: BTreeSet<String>,
    /// Top-level JSON type of request bodies, and of their properties.
    pub request_shape: Option<Shape>,
    pub response_shape: Option<Shape>,
}

/// The top-level shape of JSON bodies: their type and, for objects, the
/// properties seen with their JSON types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub kind: &'static str,
    pub properties: BTreeMap<String, &'static str>,
}

/// A learned endpoint, as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: String,
    /// Path template, e.g. `/users/{id}/orders/{id2}`.
    pub path: String,
    pub stats: Stats,
}

#[derive(Default)]
struct Node {
    hits: u64,
    literals: HashMap<String, Node>,
    param: Option<Box<Node>>,
    /// Set once the literal children outgrew the limit: new literals go to `param`.
    collapsed: bool,
    methods: Vec<(String, Stats)>,
}

/// Caps shared by all shards.
pub(super) struct Limits<'a> {
    pub options: &'a DiscoveryOptions,
    pub endpoints: &'a AtomicUsize,
}

/// One shard's tree.
#[derive(Default)]
pub struct Tree {
    root: Node,
    nodes: usize,
}

impl Tree {
    /// Records `ex` under `segments`; false when a cap refused it.
    pub(super) fn record(
        &mut self,
        segments: &[&str],
        ex: &Exchange<'_>,
        limits: &Limits<'_>,
    ) -> bool {
        let max_nodes = limits.options.max_endpoints.saturating_mul(4);
        let mut node = &mut self.root;
        for seg in segments {
            node.hits += 1;
            let ident = is_identifier(seg);
            let known = node.literals.contains_key(*seg);
            if !ident
                && !known
                && !node.collapsed
                && node.literals.len() >= limits.options.max_literal_children
            {
                collapse(node, limits.endpoints);
            }
            let goes_literal = !ident && (node.literals.contains_key(*seg) || !node.collapsed);
            let exists = if goes_literal {
                node.literals.contains_key(*seg)
            } else {
                node.param.is_some()
            };
            if !exists {
                if self.nodes >= max_nodes {
                    return false;
                }
                self.nodes += 1;
            }
            node = if goes_literal {
                node.literals.entry((*seg).to_string()).or_default()
            } else {
                node.param.get_or_insert_with(Box::default)
            };
        }
        node.hits += 1;
        let stats = match node.methods.iter().position(|(m, _)| m == ex.method) {
            Some(i) => &mut node.methods[i].1,
            None => {
                if limits.endpoints.load(Ordering::Relaxed) >= limits.options.max_endpoints {
                    return false;
                }
                limits.endpoints.fetch_add(1, Ordering::Relaxed);
                node.methods.push((ex.method.to_string(), Stats::default()));
                let last = node.methods.len() - 1;
                &mut node.methods[last].1
            }
        };
        stats.add(ex, limits.options.max_params);
        true
    }

    /// Appends every endpoint of this tree to `out`.
    pub fn collect(&self, out: &mut Vec<Endpoint>) {
        collect_node(&self.root, &mut String::new(), 0, out);
    }
}

fn collect_node(node: &Node, path: &mut String, params: usize, out: &mut Vec<Endpoint>) {
    for (method, stats) in &node.methods {
        let p = if path.is_empty() {
            "/".to_string()
        } else {
            path.clone()
        };
        out.push(Endpoint {
            method: method.clone(),
            path: p,
            stats: stats.clone(),
        });
    }
    let mark = path.len();
    for (name, child) in &node.literals {
        path.push('/');
        path.push_str(name);
        collect_node(child, path, params, out);
        path.truncate(mark);
    }
    if let Some(child) = &node.param {
        let name = if params == 0 {
            "{id}".to_string()
        } else {
            format!("{{id{}}}", params + 1)
        };
        path.push('/');
        path.push_str(&name);
        collect_node(child, path, params + 1, out);
        path.truncate(mark);
    }
}

/// Turns `node`'s unpopular literal children into its template child.
fn collapse(node: &mut Node, endpoints: &AtomicUsize) {
    node.collapsed = true;
    let threshold = POPULAR_MIN_HITS.max(node.hits * POPULAR_MIN_PERCENT / 100);
    let names: Vec<String> = node
        .literals
        .iter()
        .filter(|(_, c)| c.hits < threshold)
        .map(|(n, _)| n.clone())
        .collect();
    for name in names {
        if let Some(child) = node.literals.remove(&name) {
            let param = node.param.get_or_insert_with(Box::default);
            merge(param, child, endpoints);
        }
    }
}

fn merge(into: &mut Node, from: Node, endpoints: &AtomicUsize) {
    into.hits += from.hits;
    for (method, stats) in from.methods {
        match into.methods.iter_mut().find(|(m, _)| *m == method) {
            Some((_, existing)) => {
                existing.merge(stats);
                endpoints.fetch_sub(1, Ordering::Relaxed);
            }
            None => into.methods.push((method, stats)),
        }
    }
    for (name, child) in from.literals {
        match into.literals.get_mut(&name) {
            Some(existing) => merge(existing, child, endpoints),
            None => {
                into.literals.insert(name, child);
            }
        }
    }
    if let Some(child) = from.param {
        let param = into.param.get_or_insert_with(Box::default);
        merge(param, *child, endpoints);
    }
}

impl Stats {
    fn add(&mut self, ex: &Exchange<'_>, max_params: usize) {
        self.count += 1;
        self.authenticated += u64::from(ex.authenticated);
        bump_capped(&mut self.statuses, ex.status, MAX_STATUSES);
        for name in query_names(ex.query) {
            if self.query_params.len() < max_params || self.query_params.contains_key(name) {
                *self.query_params.entry(name.to_string()).or_default() += 1;
            }
        }
        insert_capped(&mut self.request_types, ex.request_content_type);
        insert_capped(&mut self.response_types, ex.response_content_type);
        if let Some(body) = ex.request_body {
            Shape::learn(&mut self.request_shape, body);
        }
        if let Some(body) = ex.response_body {
            Shape::learn(&mut self.response_shape, body);
        }
    }

    fn merge(&mut self, other: Stats) {
        self.count += other.count;
        self.authenticated += other.authenticated;
        for (s, n) in other.statuses {
            if self.statuses.len() < MAX_STATUSES || self.statuses.contains_key(&s) {
                *self.statuses.entry(s).or_default() += n;
            }
        }
        for (p, n) in other.query_params {
            *self.query_params.entry(p).or_default() += n;
        }
        self.request_types.extend(other.request_types);
        self.response_types.extend(other.response_types);
        self.request_shape = self.request_shape.take().or(other.request_shape);
        self.response_shape = self.response_shape.take().or(other.response_shape);
    }
}

impl Shape {
    fn learn(slot: &mut Option<Shape>, body: &Value) {
        let shape = slot.get_or_insert_with(|| Shape {
            kind: json_type(body),
            properties: BTreeMap::new(),
        });
        if let Value::Object(map) = body {
            for (k, v) in map {
                if shape.properties.len() >= MAX_SHAPE_PROPERTIES {
                    break;
                }
                shape
                    .properties
                    .entry(k.chars().take(64).collect())
                    .or_insert(json_type(v));
            }
        }
    }
}

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn query_names(query: Option<&str>) -> impl Iterator<Item = &str> {
    query
        .unwrap_or("")
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(k, _)| k))
        .filter(|k| !k.is_empty() && k.len() <= 64)
}

fn bump_capped(map: &mut BTreeMap<u16, u64>, key: u16, cap: usize) {
    if map.len() < cap || map.contains_key(&key) {
        *map.entry(key).or_default() += 1;
    }
}

fn insert_capped(set: &mut BTreeSet<String>, value: Option<&str>) {
    let Some(v) = value
        .map(crate::operation::essence)
        .filter(|v| !v.is_empty() && v.len() <= 100)
    else {
        return;
    };
    if set.len() < MAX_MEDIA_TYPES {
        set.insert(v);
    }
}
