//! A loaded document: parse, check references, translate, compile every
//! operation, and find the operation for a request.

use std::sync::Arc;

use http::Method;
use serde_json::Value;

use crate::error::LoadError;
use crate::extensions;
use crate::operation::{BodySchema, MediaEntry, Operation, RequestBodySpec, Responses};
use crate::params::{Param, ParamIn, Style, ValueKind};
use crate::router::{RouteError, Router};
use crate::schema::SchemaCompiler;
use crate::spec::{self, escape_pointer, SpecVersion};
use crate::violation::{Place, Violation, ViolationKind};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A compiled OpenAPI document.
pub struct OpenApi {
    version: SpecVersion,
    base_paths: Vec<String>,
    router: Router,
    items: Vec<PathItem>,
    doc: Arc<Value>,
}

struct PathItem {
    template: String,
    operations: Vec<Arc<Operation>>,
}

/// The operation a request maps to, with its raw path parameters.
#[derive(Debug)]
pub struct Matched<'a> {
    pub operation: &'a Arc<Operation>,
    pub path_params: Vec<(&'a str, &'a str)>,
}

impl std::fmt::Debug for OpenApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApi")
            .field("version", &self.version)
            .field("base_paths", &self.base_paths)
            .field("paths", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl OpenApi {
    /// Loads a document from JSON or YAML text.
    pub fn from_text(text: &str) -> Result<OpenApi, LoadError> {
        OpenApi::from_value(spec::parse_text(text)?)
    }

    /// Loads a document already parsed as JSON.
    pub fn from_value(mut doc: Value) -> Result<OpenApi, LoadError> {
        let version = spec::detect_version(&doc)?;
        spec::check_refs(&doc)?;
        if version == SpecVersion::V3_0 {
            spec::translate_v30(&mut doc);
        }
        let compiler = SchemaCompiler::new(&doc, version)?;
        let doc = Arc::new(doc);
        let base_paths = spec::base_paths(doc.get("servers"));
        let mut api = OpenApi {
            version,
            base_paths,
            router: Router::default(),
            items: Vec::new(),
            doc: doc.clone(),
        };
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return Ok(api);
        };
        let root = Root {
            rate_limit: extensions::rate_limit(&doc, "#")?,
            auth: extensions::auth(&doc, "#")?,
        };
        for (template, item) in paths {
            let at = format!("#/paths/{}", escape_pointer(template));
            let item = spec::resolve(&doc, item, &at)?;
            let operations = compile_item(&doc, &compiler, &root, template, item, &at)?;
            let index = api.items.len();
            api.router
                .insert(template, index)
                .map_err(|e| route_error(e, &at))?;
            api.items.push(PathItem {
                template: template.clone(),
                operations,
            });
        }
        Ok(api)
    }

    pub fn version(&self) -> SpecVersion {
        self.version
    }

    /// The base paths taken from `servers` (longest first; `""` is the root).
    pub fn base_paths(&self) -> &[String] {
        &self.base_paths
    }

    /// The translated document (3.0 `nullable` already rewritten).
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> impl Iterator<Item = &Arc<Operation>> {
        self.items.iter().flat_map(|i| i.operations.iter())
    }

    /// Finds the operation for `method` and `path` (no query string).
    /// Unknown path → `UnknownEndpoint`; known path, other method →
    /// `MethodNotAllowed`. `HEAD` falls back to `GET` when not documented.
    pub fn find<'a>(&'a self, method: &Method, path: &'a str) -> Result<Matched<'a>, Violation> {
        let found = self
            .candidates(path)
            .find_map(|p| self.router.find(p))
            .ok_or_else(|| Violation::new(ViolationKind::UnknownEndpoint, Place::Endpoint))?;
        let item = &self.items[found.item];
        let pick = |m: &Method| item.operations.iter().find(|op| op.method == *m);
        let operation = pick(method)
            .or_else(|| {
                (*method == Method::HEAD)
                    .then(|| pick(&Method::GET))
                    .flatten()
            })
            .ok_or_else(|| {
                Violation::new(ViolationKind::MethodNotAllowed, Place::Endpoint).at(&item.template)
            })?;
        Ok(Matched {
            operation,
            path_params: found.params,
        })
    }

    /// The methods documented for the path item matching `path` (for `Allow`).
    pub fn allowed_methods(&self, path: &str) -> Vec<Method> {
        self.candidates(path)
            .find_map(|p| self.router.find(p))
            .map(|m| {
                self.items[m.item]
                    .operations
                    .iter()
                    .map(|op| op.method.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The request path with each base path removed, longest base first.
    fn candidates<'p>(&'p self, path: &'p str) -> impl Iterator<Item = &'p str> + 'p {
        let bare = self.base_paths.is_empty().then_some(path);
        let based = self
            .base_paths
            .iter()
            .filter_map(move |base| strip_base(path, base));
        bare.into_iter().chain(based)
    }
}

fn strip_base<'p>(path: &'p str, base: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(base)?;
    if rest.is_empty() {
        Some("/")
    } else if rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

struct Root {
    rate_limit: Option<extensions::RateLimitExt>,
    auth: Option<extensions::AuthExt>,
}

fn compile_item(
    doc: &Arc<Value>,
    compiler: &SchemaCompiler,
    root: &Root,
    template: &str,
    item: &Value,
    at: &str,
) -> Result<Vec<Arc<Operation>>, LoadError> {
    let shared = item.get("parameters");
    let mut out = Vec::new();
    for method in METHODS {
        let Some(op) = item.get(method) else { continue };
        let at = format!("{at}/{method}");
        let params = compile_params(doc, compiler, shared, op.get("parameters"), &at)?;
        let body = match op.get("requestBody") {
            Some(rb) => Some(compile_request_body(
                doc,
                compiler,
                rb,
                &format!("{at}/requestBody"),
            )?),
            None => None,
        };
        let responses = compile_responses(
            doc,
            compiler,
            op.get("responses"),
            &format!("{at}/responses"),
        )?;
        out.push(Arc::new(Operation {
            operation_id: op
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_string),
            method: method.to_ascii_uppercase().parse().unwrap_or(Method::GET),
            path: template.to_string(),
            rate_limit: extensions::rate_limit(op, &at)?.or_else(|| root.rate_limit.clone()),
            auth: extensions::auth(op, &at)?.or_else(|| root.auth.clone()),
            params,
            body,
            responses,
            doc: doc.clone(),
        }));
    }
    Ok(out)
}

/// Path-item parameters, overridden by operation ones with the same name and location.
fn compile_params(
    doc: &Value,
    compiler: &SchemaCompiler,
    shared: Option<&Value>,
    own: Option<&Value>,
    at: &str,
) -> Result<Vec<Param>, LoadError> {
    let mut out: Vec<Param> = Vec::new();
    for (list, list_at) in [
        (shared, format!("{at}/../parameters")),
        (own, format!("{at}/parameters")),
    ] {
        for (i, p) in list
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let p_at = format!("{list_at}/{i}");
            let param = compile_param(doc, compiler, spec::resolve(doc, p, &p_at)?, &p_at)?;
            out.retain(|q| !(q.name == param.name && q.location == param.location));
            if let Some(param) = param.into_checked() {
                out.push(param);
            }
        }
    }
    Ok(out)
}

impl Param {
    /// Drops parameters the specification says to ignore (`Accept`,
    /// `Content-Type`, `Authorization` headers are described elsewhere).
    fn into_checked(self) -> Option<Param> {
        let ignored = self.location == ParamIn::Header
            && ["accept", "content-type", "authorization"]
                .contains(&self.name.to_ascii_lowercase().as_str());
        (!ignored).then_some(self)
    }
}

fn compile_param(
    doc: &Value,
    compiler: &SchemaCompiler,
    p: &Value,
    at: &str,
) -> Result<Param, LoadError> {
    let invalid = |problem: &str| LoadError::Invalid {
        at: at.to_string(),
        problem: problem.to_string(),
    };
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("parameter without `name`"))?;
    let location = p
        .get("in")
        .and_then(Value::as_str)
        .and_then(ParamIn::parse)
        .ok_or_else(|| invalid("parameter `in` must be path, query, header or cookie"))?;
    let style = Style::parse(p.get("style").and_then(Value::as_str), location)
        .ok_or_else(|| invalid("unknown parameter `style`"))?;
    let explode = p
        .get("explode")
        .and_then(Value::as_bool)
        .unwrap_or(style == Style::Form);
    let required =
        location == ParamIn::Path || p.get("required").and_then(Value::as_bool).unwrap_or(false);
    let (kind, validator) = match p.get("schema") {
        Some(schema) => {
            let resolved = spec::resolve(doc, schema, at)?;
            let kind = ValueKind::of(resolved, |items| {
                spec::resolve(doc, items, at)
                    .cloned()
                    .unwrap_or(Value::Null)
            });
            let kind = if style == Style::DeepObject {
                ValueKind::Unchecked
            } else {
                kind
            };
            (
                kind,
                Some(compiler.compile(schema, &format!("{at}/schema"))?),
            )
        }
        None => (ValueKind::Unchecked, None),
    };
    Ok(Param {
        name: name.to_string(),
        location,
        required,
        kind,
        style,
        explode,
        validator,
    })
}

fn compile_request_body(
    doc: &Value,
    compiler: &SchemaCompiler,
    rb: &Value,
    at: &str,
) -> Result<RequestBodySpec, LoadError> {
    let rb = spec::resolve(doc, rb, at)?;
    Ok(RequestBodySpec {
        required: rb.get("required").and_then(Value::as_bool).unwrap_or(false),
        content: compile_content(compiler, rb.get("content"), &format!("{at}/content"))?,
    })
}

fn compile_content(
    compiler: &SchemaCompiler,
    content: Option<&Value>,
    at: &str,
) -> Result<Vec<MediaEntry>, LoadError> {
    let mut out = Vec::new();
    for (media, entry) in content.and_then(Value::as_object).into_iter().flatten() {
        let entry_at = format!("{at}/{}", escape_pointer(media));
        let schema = match entry.get("schema") {
            Some(schema) => Some(BodySchema {
                validator: compiler.compile(schema, &format!("{entry_at}/schema"))?,
                schema: schema.clone(),
            }),
            None => None,
        };
        out.push(MediaEntry {
            media: crate::operation::essence(media),
            schema,
        });
    }
    Ok(out)
}

fn compile_responses(
    doc: &Value,
    compiler: &SchemaCompiler,
    responses: Option<&Value>,
    at: &str,
) -> Result<Responses, LoadError> {
    let mut out = Responses::default();
    for (code, response) in responses.and_then(Value::as_object).into_iter().flatten() {
        if code.starts_with("x-") {
            continue;
        }
        let r_at = format!("{at}/{}", escape_pointer(code));
        let response = spec::resolve(doc, response, &r_at)?;
        let content = compile_content(
            compiler,
            response.get("content"),
            &format!("{r_at}/content"),
        )?;
        let invalid = || LoadError::Invalid {
            at: r_at.clone(),
            problem: "response key must be a status code, NXX or default".into(),
        };
        match code.as_str() {
            "default" => out.default = Some(content),
            c if c.len() == 3 && c.to_ascii_uppercase().ends_with("XX") => {
                let digit = c.as_bytes()[0].wrapping_sub(b'1') as usize;
                *out.ranges.get_mut(digit).ok_or_else(invalid)? = Some(content);
            }
            c => {
                let status: u16 = c
                    .parse()
                    .ok()
                    .filter(|s| (100..600).contains(s))
                    .ok_or_else(invalid)?;
                out.exact.push((status, content));
            }
        }
    }
    Ok(out)
}

fn route_error(e: RouteError, at: &str) -> LoadError {
    let problem = match e {
        RouteError::Duplicate => "path template matches the same paths as another one",
        RouteError::BadSegment => "path segment with unbalanced braces or more than one parameter",
    };
    LoadError::Invalid {
        at: at.to_string(),
        problem: problem.into(),
    }
}
