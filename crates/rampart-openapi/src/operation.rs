//! A compiled operation: everything needed to check one request and its
//! response, built once at load.

use std::borrow::Cow;
use std::sync::Arc;

use jsonschema::Validator;
use serde_json::Value;

use crate::extensions::{AuthExt, RateLimitExt};
use crate::params::{Param, ParamIn};
use crate::undeclared;
use crate::violation::{Place, Violation, ViolationKind};

/// A body schema: the compiled validator and the schema itself (walked for
/// undeclared properties).
pub struct BodySchema {
    pub(crate) validator: Validator,
    pub(crate) schema: Value,
}

/// One declared media type (`application/json`, `application/*`, `*/*`).
pub struct MediaEntry {
    pub(crate) media: String,
    pub(crate) schema: Option<BodySchema>,
}

/// The documented responses of an operation.
#[derive(Default)]
pub struct Responses {
    pub(crate) exact: Vec<(u16, Vec<MediaEntry>)>,
    /// `1XX` … `5XX`, indexed by the first digit minus one.
    pub(crate) ranges: [Option<Vec<MediaEntry>>; 5],
    pub(crate) default: Option<Vec<MediaEntry>>,
}

/// A documented request body.
pub struct RequestBodySpec {
    pub(crate) required: bool,
    pub(crate) content: Vec<MediaEntry>,
}

/// What to do with request properties the schema does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Undeclared {
    /// Leave them (only `additionalProperties: false` refuses them).
    #[default]
    Allow,
    /// Refuse the request with the first one's pointer.
    Reject,
    /// Remove them and go on.
    Strip,
}

/// A checked JSON body, possibly rewritten.
#[derive(Debug, Default)]
pub struct BodyOutcome {
    /// The parsed body, after stripping, when the body is JSON with a schema.
    pub value: Option<Value>,
    /// How many undeclared properties were removed.
    pub stripped: usize,
}

/// One operation of the document.
pub struct Operation {
    /// `operationId`, when the document gives one.
    pub operation_id: Option<String>,
    pub method: http::Method,
    /// The path template as written (`/users/{id}`), without the base path.
    pub path: String,
    /// `x-rampart-ratelimit` of the operation, else of the document root.
    pub rate_limit: Option<RateLimitExt>,
    /// `x-rampart-auth` of the operation, else of the document root.
    pub auth: Option<AuthExt>,
    pub(crate) params: Vec<Param>,
    pub(crate) body: Option<RequestBodySpec>,
    pub(crate) responses: Responses,
    pub(crate) doc: Arc<Value>,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("operation_id", &self.operation_id)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("rate_limit", &self.rate_limit)
            .field("auth", &self.auth)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Operation {
    /// Checks path, query and header parameters. `path_params` are the raw
    /// values captured by the router.
    pub fn check_params(
        &self,
        path_params: &[(&str, &str)],
        query: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Result<(), Violation> {
        let pairs = query.map(crate::params::parse_query).unwrap_or_default();
        let mut raw: Vec<Cow<'_, str>> = Vec::new();
        for p in &self.params {
            raw.clear();
            match p.location {
                ParamIn::Path => raw.extend(
                    path_params
                        .iter()
                        .filter(|(n, _)| *n == p.name)
                        .map(|(_, v)| crate::params::decode_path(v)),
                ),
                ParamIn::Query => raw.extend(
                    pairs
                        .iter()
                        .filter(|(k, _)| *k == p.name.as_str())
                        .map(|(_, v)| v.clone()),
                ),
                ParamIn::Header => raw.extend(
                    headers
                        .get_all(p.name.as_str())
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes())),
                ),
                ParamIn::Cookie => raw.extend(cookie(headers, &p.name).map(Cow::Owned)),
            }
            p.check(&raw)?;
        }
        Ok(())
    }

    /// Whether this operation documents a request body.
    pub fn has_request_body(&self) -> bool {
        self.body.is_some()
    }

    /// Whether any documented response has a JSON schema (so responses are
    /// worth holding for validation or stripping).
    pub fn has_response_schemas(&self) -> bool {
        let r = &self.responses;
        r.exact
            .iter()
            .map(|(_, c)| c)
            .chain(r.ranges.iter().flatten())
            .chain(r.default.iter())
            .any(|c| c.iter().any(|m| m.schema.is_some()))
    }

    /// Checks a complete request body. `Strip` removes undeclared properties
    /// *before* schema validation (so `additionalProperties: false` does not
    /// refuse what was stripped).
    pub fn check_request_body(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        undeclared: Undeclared,
    ) -> Result<BodyOutcome, Violation> {
        let Some(spec) = &self.body else {
            return Ok(BodyOutcome::default());
        };
        if body.is_empty() {
            return if spec.required {
                Err(Violation::new(ViolationKind::Missing, Place::RequestBody))
            } else {
                Ok(BodyOutcome::default())
            };
        }
        let entry = find_media(&spec.content, content_type).ok_or_else(|| {
            Violation::new(ViolationKind::UnsupportedMediaType, Place::RequestBody)
        })?;
        let checked = check_json(
            &self.doc,
            entry,
            content_type,
            body,
            undeclared,
            Place::RequestBody,
        )?;
        match checked.violation {
            Some(v) => Err(v),
            None => Ok(BodyOutcome {
                value: checked.value,
                stripped: checked.stripped,
            }),
        }
    }

    /// Checks a complete response body against the schema documented for
    /// `status` and the response content type; with `strip`, undeclared
    /// fields are removed first (and the result says how many). An
    /// undocumented status is a violation; an undocumented media type, or one
    /// without a JSON schema, passes unchanged.
    pub fn check_response_body(
        &self,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
        strip: bool,
    ) -> ResponseOutcome {
        let Some(content) = self.responses.for_status(status) else {
            let v = Violation::new(ViolationKind::UndocumentedStatus, Place::Response)
                .at(&format!("/{status}"));
            return ResponseOutcome {
                violation: Some(v),
                ..ResponseOutcome::default()
            };
        };
        let Some(entry) = find_media(content, content_type) else {
            return ResponseOutcome::default();
        };
        let mode = if strip {
            Undeclared::Strip
        } else {
            Undeclared::Allow
        };
        match check_json(
            &self.doc,
            entry,
            content_type,
            body,
            mode,
            Place::ResponseBody,
        ) {
            Ok(checked) => checked,
            Err(violation) => ResponseOutcome {
                violation: Some(violation),
                ..ResponseOutcome::default()
            },
        }
    }
}

/// What checking a response body found: the (possibly stripped) value and
/// the first violation, reported separately so stripping and validation can
/// run under different policies.
#[derive(Debug, Default)]
pub struct ResponseOutcome {
    pub value: Option<Value>,
    pub stripped: usize,
    pub violation: Option<Violation>,
}

impl Responses {
    /// The documented content for `status`: exact code, then `NXX`, then `default`.
    pub fn for_status(&self, status: u16) -> Option<&[MediaEntry]> {
        if let Some((_, c)) = self.exact.iter().find(|(code, _)| *code == status) {
            return Some(c);
        }
        let range = usize::from(status / 100)
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i));
        range
            .and_then(Option::as_ref)
            .or(self.default.as_ref())
            .map(Vec::as_slice)
    }
}

fn check_json(
    doc: &Value,
    entry: &MediaEntry,
    content_type: Option<&str>,
    body: &[u8],
    undeclared: Undeclared,
    place: Place,
) -> Result<ResponseOutcome, Violation> {
    let Some(schema) = &entry.schema else {
        return Ok(ResponseOutcome::default());
    };
    let media = content_type.map_or_else(|| entry.media.clone(), essence);
    if !is_json(&media) {
        return Ok(ResponseOutcome::default());
    }
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|_| Violation::new(ViolationKind::MalformedJson, place))?;
    let mut stripped = 0;
    match undeclared {
        Undeclared::Allow => {}
        Undeclared::Reject => {
            if let Some(pointer) = undeclared::find_undeclared(doc, &schema.schema, &value) {
                return Err(Violation::new(ViolationKind::UndeclaredProperty, place).at(&pointer));
            }
        }
        Undeclared::Strip => {
            stripped = undeclared::strip_undeclared(doc, &schema.schema, &mut value)
        }
    }
    let violation = schema
        .validator
        .iter_errors(&value)
        .next()
        .map(|err| Violation::from_schema_error(place, &err));
    Ok(ResponseOutcome {
        value: Some(value),
        stripped,
        violation,
    })
}

/// Picks the declared media type for a `Content-Type`: exact, `type/*`, `*/*`.
/// Without a `Content-Type`, a single declared type is assumed.
fn find_media<'e>(content: &'e [MediaEntry], content_type: Option<&str>) -> Option<&'e MediaEntry> {
    let Some(ct) = content_type else {
        return (content.len() == 1).then(|| &content[0]);
    };
    let essence = essence(ct);
    let main = essence.split('/').next().unwrap_or("");
    content
        .iter()
        .find(|m| m.media == essence)
        .or_else(|| {
            content
                .iter()
                .find(|m| m.media.strip_suffix("/*") == Some(main))
        })
        .or_else(|| content.iter().find(|m| m.media == "*/*"))
}

/// `application/json; charset=utf-8` → `application/json` (lowercase).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// JSON media types: `application/json` and any `+json` suffix.
pub fn is_json(essence: &str) -> bool {
    essence == "application/json"
        || essence.ends_with("+json")
        || essence == "*/*"
        || essence == "application/*"
}

fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}
