//! API discovery: learn the endpoints actually served from observed
//! exchanges, export them as a draft OpenAPI 3.1 document, and diff them
//! against a loaded document (shadow endpoints, documented ones never seen).
//!
//! Paths are collapsed into templates as they are recorded: identifier-like
//! segments (see [`classify`]) become `{id}`, and a node whose literal
//! children grow past [`DiscoveryOptions::max_literal_children`] is turned
//! into a template too (usernames, slugs), keeping only children popular
//! enough to be real resources. Memory is bounded by the caps in
//! [`DiscoveryOptions`]; recording takes one short lock on one of several
//! shards (chosen by the first path segment).

pub mod classify;
pub mod export;
pub mod tree;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

pub use export::{DiffReport, EndpointRef};
use tree::Tree;

/// Limits and knobs of a [`Discovery`] recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryOptions {
    /// Most distinct (template, method) endpoints kept; later new ones are
    /// counted in `dropped` only. Default 2000.
    pub max_endpoints: usize,
    /// Most distinct query parameter names kept per endpoint. Default 32.
    pub max_params: usize,
    /// Literal children a path node may have before it becomes a template.
    /// Default 50.
    pub max_literal_children: usize,
    /// Deepest path recorded, in segments; deeper ones are dropped. Default 16.
    pub max_depth: usize,
    /// Whether 404 responses are recorded (scanners make them noise). Default false.
    pub record_not_found: bool,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            max_endpoints: 2000,
            max_params: 32,
            max_literal_children: 50,
            max_depth: 16,
            record_not_found: false,
        }
    }
}

/// One observed exchange. Only names, types and counts are kept: never
/// parameter values or body contents.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exchange<'a> {
    pub method: &'a str,
    /// The request path, without query string.
    pub path: &'a str,
    /// The raw query string; only parameter names are kept.
    pub query: Option<&'a str>,
    pub request_content_type: Option<&'a str>,
    pub status: u16,
    pub response_content_type: Option<&'a str>,
    /// Whether an identity was verified (`ctx.identity.is_some()`).
    pub authenticated: bool,
    /// The parsed JSON request body, if the caller has it (top-level shape only).
    pub request_body: Option<&'a Value>,
    /// The parsed JSON response body, likewise.
    pub response_body: Option<&'a Value>,
}

const SHARDS: usize = 16;

/// A thread-safe, bounded recorder of observed endpoints.
pub struct Discovery {
    options: DiscoveryOptions,
    shards: Vec<Mutex<Tree>>,
    endpoints: AtomicUsize,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("options", &self.options)
            .field("endpoints", &self.endpoints.load(Ordering::Relaxed))
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery::new(DiscoveryOptions::default())
    }
}

impl Discovery {
    pub fn new(options: DiscoveryOptions) -> Self {
        Discovery {
            options,
            shards: (0..SHARDS).map(|_| Mutex::new(Tree::default())).collect(),
            endpoints: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Records one exchange.
    pub fn record(&self, ex: &Exchange<'_>) {
        if ex.status == 404 && !self.options.record_not_found {
            return;
        }
        let segments: Vec<&str> = ex.path.trim_start_matches('/').split('/').collect();
        if segments.len() > self.options.max_depth || !method_ok(ex.method) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let shard = &self.shards[shard_of(segments[0])];
        let Ok(mut tree) = shard.lock() else {
            return;
        };
        let limits = tree::Limits {
            options: &self.options,
            endpoints: &self.endpoints,
        };
        if !tree.record(&segments, ex, &limits) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Distinct endpoints currently known.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.load(Ordering::Relaxed)
    }

    /// Exchanges not recorded because a cap was reached (or the path too deep).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Every learned endpoint: `(method, template)` with its statistics.
    pub fn endpoints(&self) -> Vec<tree::Endpoint> {
        let mut out = Vec::new();
        for shard in &self.shards {
            if let Ok(tree) = shard.lock() {
                tree.collect(&mut out);
            }
        }
        out.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
        out
    }

    /// A draft OpenAPI 3.1 document of what was learned.
    pub fn export(&self) -> Value {
        export::to_openapi(&self.endpoints())
    }

    /// Compares what was learned with a loaded document.
    pub fn diff(&self, api: &crate::OpenApi) -> DiffReport {
        export::diff(&self.endpoints(), api)
    }
}

pub use tree::Endpoint;

fn method_ok(m: &str) -> bool {
    matches!(
        m,
        "GET" | "PUT" | "POST" | "DELETE" | "OPTIONS" | "HEAD" | "PATCH" | "TRACE"
    )
}

/// Identifier-like first segments share one shard, like their template will.
fn shard_of(first: &str) -> usize {
    if classify::is_identifier(first) {
        return 0;
    }
    // FNV-1a: stable, cheap, and the input is bounded by max_depth segments.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in first.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}
