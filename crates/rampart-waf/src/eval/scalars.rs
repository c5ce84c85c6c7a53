//! Scalar variables (`REQUEST_URI`, `REQBODY_ERROR`, `MULTIPART_*` …):
//! one value, or none when the transaction has not got it.

use std::sync::{Arc, OnceLock};

use crate::parser::{BodyProcessor, Variable};

use super::data::Bytes;
use super::vars::Shared;
use super::Transaction;

/// Scalars that only change when the request line, the connection, the
/// headers or a body change (see `Transaction::invalidate_scalars`): they
/// are computed once and shared, in slot `stable_index(var)` of
/// [`StableScalars`].
fn stable_index(var: Variable) -> Option<usize> {
    Some(match var {
        Variable::RequestFilename => 0,
        Variable::RequestBasename => 1,
        Variable::RequestMethod => 2,
        Variable::RequestProtocol => 3,
        Variable::RequestUri => 4,
        Variable::RequestUriRaw => 5,
        Variable::QueryString => 6,
        Variable::RequestLine => 7,
        Variable::RemoteAddr => 8,
        Variable::ServerAddr => 9,
        Variable::ServerName => 10,
        Variable::RequestBody => 11,
        Variable::ResponseBody => 12,
        _ => return None,
    })
}

/// Slots of `stable_index` (at most 16: see `StableScalars::filled`).
const STABLE: usize = 13;

/// The stable scalars of a transaction, one slot per variable (a look-up
/// is an index, not a search): `None` until computed, then the value (or
/// `Some(None)` when the transaction has none).
#[derive(Default)]
pub(super) struct StableScalars {
    slots: [Option<Option<Shared>>; STABLE],
    /// Bit `i` is set when slot `i` is filled: the setters clear the slots
    /// for every header added, almost always with none filled yet.
    filled: u16,
}

impl StableScalars {
    fn get(&self, index: usize) -> Option<&Option<Shared>> {
        self.slots[index].as_ref()
    }

    fn set(&mut self, index: usize, value: Option<Shared>) {
        self.slots[index] = Some(value);
        self.filled |= 1 << index;
    }

    /// Forgets every value (their inputs changed).
    pub fn clear(&mut self) {
        while self.filled != 0 {
            let index = self.filled.trailing_zeros() as usize;
            self.slots[index] = None;
            self.filled &= self.filled - 1;
        }
    }
}

/// Request methods and protocols seen on almost every request, shared by
/// all transactions: setting one is a reference count, not an allocation
/// (the text is immutable, so sharing it cannot change what any
/// transaction sees).
const COMMON_METHODS: &[&str] = &["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"];
const COMMON_PROTOCOLS: &[&str] = &["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/2.0"];

/// The method as a shared string (see `COMMON_METHODS`).
pub(super) fn method(text: &str) -> Arc<str> {
    static SHARED: OnceLock<Vec<Arc<str>>> = OnceLock::new();
    interned(text, COMMON_METHODS, &SHARED)
}

/// The protocol as a shared string (see `COMMON_PROTOCOLS`).
pub(super) fn protocol(text: &str) -> Arc<str> {
    static SHARED: OnceLock<Vec<Arc<str>>> = OnceLock::new();
    interned(text, COMMON_PROTOCOLS, &SHARED)
}

/// A clone of the shared copy of `text` when it is one of `common`
/// (compared exactly, case included), else a new string.
fn interned(text: &str, common: &[&str], shared: &OnceLock<Vec<Arc<str>>>) -> Arc<str> {
    let table = shared.get_or_init(|| common.iter().map(|s| Arc::from(*s)).collect());
    match table.iter().find(|s| ***s == *text) {
        Some(s) => s.clone(),
        None => Arc::from(text),
    }
}

/// The empty value, shared (`QUERY_STRING` of a URI without a query).
fn empty() -> Shared {
    static EMPTY: OnceLock<Arc<str>> = OnceLock::new();
    Shared::Text(EMPTY.get_or_init(|| Arc::from("")).clone())
}

// Scalars are built straight into shared values (`Bytes`): building a
// `Vec` and then copying it into an `Arc` cost an allocation, a copy and a
// free per scalar (~16 per benign request), and a whole copy of the body
// for `REQUEST_BODY`.

fn flag(b: bool) -> Option<Bytes> {
    Some(Bytes::from(if b { &b"1"[..] } else { &b"0"[..] }))
}

fn text(s: &str) -> Option<Bytes> {
    bytes(s.as_bytes())
}

fn bytes(b: &[u8]) -> Option<Bytes> {
    Some(Bytes::from(b))
}

/// A decimal number: small ones (`REQUEST_BODY_LENGTH` 0 …) are clones of
/// values built once (see `vars::count_value`), others one allocation.
fn number(n: impl Into<u128>) -> Option<Bytes> {
    let n: u128 = n.into();
    if let Ok(small) = usize::try_from(n) {
        if small <= super::vars::SHARED_COUNTS {
            return Some(super::vars::count_value(small));
        }
    }
    let mut digits = [0u8; 40];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    bytes(&digits[at..])
}

impl<'r> Transaction<'r> {
    /// The value of a scalar variable, shared: stable ones are computed
    /// once per transaction.
    pub(super) fn scalar_shared(&self, var: Variable) -> Option<Shared> {
        match var {
            Variable::MatchedVar => {
                return self
                    .matched_var
                    .as_ref()
                    .map(|(_, v)| Shared::Bytes(v.clone()))
            }
            Variable::MatchedVarName => {
                return self
                    .matched_var
                    .as_ref()
                    .map(|(n, _)| Shared::Text(n.clone()))
            }
            _ => {}
        }
        let Some(index) = stable_index(var) else {
            return self.scalar(var).map(Shared::Bytes);
        };
        match var {
            Variable::RequestBody if !self.request_body_visible() => return None,
            Variable::ResponseBody if self.phase_done < 4 => return None,
            _ => {}
        }
        if let Some(value) = self.scalar_cache.borrow().get(index) {
            return value.clone();
        }
        let value = self.stable_scalar(var);
        self.scalar_cache.borrow_mut().set(index, value.clone());
        value
    }

    /// A stable scalar, computed. The request line's parts and the
    /// addresses are clones of the shared strings the setters keep, and so
    /// is `REQUEST_FILENAME` when the URI has neither a query nor a `%`.
    fn stable_scalar(&self, var: Variable) -> Option<Shared> {
        let (req, conn) = (&self.req, &self.conn);
        let path = req.uri.split('?').next().unwrap_or("");
        let shared = |s: &Arc<str>| Some(Shared::Text(s.clone()));
        match var {
            Variable::RequestMethod => shared(&req.method),
            Variable::RequestProtocol => shared(&req.protocol),
            Variable::RequestUri => shared(&req.uri),
            Variable::RequestUriRaw => shared(&req.uri_raw),
            Variable::RemoteAddr => shared(&conn.client_ip),
            Variable::ServerAddr => shared(&conn.server_ip),
            Variable::QueryString => match req.uri.split_once('?') {
                Some((_, q)) if !q.is_empty() => bytes(q.as_bytes()).map(Shared::Bytes),
                _ => Some(empty()),
            },
            // ModSecurity v3 derives these from the percent-decoded URI.
            Variable::RequestFilename if !path.contains('%') && path.len() == req.uri.len() => {
                shared(&req.uri)
            }
            Variable::RequestFilename => bytes(&percent_decode(path.as_bytes())).map(Shared::Bytes),
            Variable::RequestBasename => {
                let decoded = percent_decode(path.as_bytes());
                let start = decoded.iter().rposition(|b| *b == b'/' || *b == b'\\');
                bytes(&decoded[start.map_or(0, |s| s + 1)..]).map(Shared::Bytes)
            }
            Variable::RequestLine => {
                let parts = [&*req.method, " ", &*req.uri_raw, " ", &*req.protocol];
                Some(Shared::Text(Arc::from(parts.concat())))
            }
            _ => self.scalar(var).map(Shared::Bytes),
        }
    }

    fn request_body_visible(&self) -> bool {
        // Only URL-encoded (or unprocessed) bodies, unless a rule forces
        // it: CRS's tests expect XML element names to stay invisible.
        let visible = matches!(self.req.processor, None | Some(BodyProcessor::UrlEncoded))
            || self.ov.force_body_variable;
        visible && self.phase_done >= 2
    }

    /// The value of a scalar variable.
    pub(super) fn scalar(&self, var: Variable) -> Option<Bytes> {
        self.request_scalar(var)
            .or_else(|| self.body_scalar(var))
            .or_else(|| self.other_scalar(var))
    }

    fn request_scalar(&self, var: Variable) -> Option<Bytes> {
        let req = &self.req;
        match var {
            Variable::RemotePort => number(self.conn.client_port),
            Variable::ServerPort => number(self.conn.server_port),
            Variable::ServerName => {
                let host = req.headers.get("host").unwrap_or_default();
                let host = String::from_utf8_lossy(host);
                text(host.rsplit_once(':').map_or(&*host, |(h, _)| h))
            }
            Variable::ArgsCombinedSize => {
                let all = req.args_get.entries.iter().chain(&req.args_post.entries);
                number(all.map(|(k, v)| k.len() + v.len()).sum::<usize>() as u64)
            }
            _ => None,
        }
    }

    fn body_scalar(&self, var: Variable) -> Option<Bytes> {
        let req = &self.req;
        let mp = &req.multipart;
        let is_multipart = req.processor == Some(BodyProcessor::Multipart);
        match var {
            Variable::RequestBody => self
                .request_body_visible()
                .then(|| Bytes::from(&req.body[..])),
            Variable::RequestBodyLength => number(req.body.len() as u64),
            // Known from the headers on (phase 1), as in ModSecurity v3.
            Variable::ReqbodyProcessor => req
                .processor
                .or_else(|| self.body_processor())
                .and_then(|p| text(processor_name(p))),
            Variable::ReqbodyError | Variable::ReqbodyProcessorError => {
                flag(req.body_error.is_some())
            }
            Variable::ReqbodyErrorMsg | Variable::ReqbodyProcessorErrorMsg => {
                text(req.body_error.as_deref().unwrap_or(""))
            }
            Variable::UrlencodedError => flag(req.urlencoded_error),
            Variable::FilesCombinedSize => {
                number(req.files.iter().map(|f| f.size).sum::<usize>() as u64)
            }
            Variable::MultipartFilename => req.multipart_filename.as_deref().and_then(text),
            Variable::MultipartName => req.multipart_name.as_deref().and_then(text),
            _ if !is_multipart && is_multipart_flag(var) => None,
            Variable::MultipartBoundaryQuoted => flag(mp.boundary_quoted),
            Variable::MultipartBoundaryWhitespace => flag(mp.boundary_whitespace),
            Variable::MultipartDataAfter => flag(mp.data_after),
            Variable::MultipartDataBefore => flag(mp.data_before),
            Variable::MultipartHeaderFolding => flag(mp.header_folding),
            Variable::MultipartLfLine => flag(mp.lf_line),
            Variable::MultipartCrlfLfLines => flag(mp.crlf_lf_lines),
            Variable::MultipartMissingSemicolon | Variable::MultipartSemicolonMissing => {
                flag(mp.missing_semicolon)
            }
            Variable::MultipartInvalidQuoting => flag(mp.invalid_quoting),
            Variable::MultipartInvalidPart => flag(mp.invalid_part),
            Variable::MultipartInvalidHeaderFolding => flag(mp.invalid_header_folding),
            Variable::MultipartFileLimitExceeded => flag(mp.file_limit_exceeded),
            Variable::MultipartUnmatchedBoundary => flag(mp.unmatched_boundary),
            Variable::MultipartStrictError => flag(mp.strict_error(req.body_error.is_some())),
            Variable::InboundDataError => flag(req.body_truncated),
            _ => None,
        }
    }

    fn other_scalar(&self, var: Variable) -> Option<Bytes> {
        let res = &self.res;
        match var {
            Variable::ResponseStatus | Variable::Status => res.status.and_then(number),
            Variable::ResponseProtocol => {
                (!res.protocol.is_empty()).then(|| Bytes::from(res.protocol.as_bytes()))
            }
            Variable::StatusLine => res
                .status
                .and_then(|s| text(&format!("{} {s}", res.protocol))),
            Variable::ResponseBody => (self.phase_done >= 4).then(|| Bytes::from(&res.body[..])),
            Variable::ResponseContentType => res.headers.get("content-type").and_then(bytes),
            Variable::ResponseContentLength => res.headers.get("content-length").and_then(bytes),
            Variable::MatchedVar => self.matched_var.as_ref().map(|(_, v)| v.clone()),
            Variable::MatchedVarName => self.matched_var.as_ref().and_then(|(n, _)| text(n)),
            Variable::UniqueId => text(self.unique_id.get_or_init(super::unique_id)),
            Variable::Duration => number(self.started.elapsed().as_micros()),
            Variable::HighestSeverity => number(self.highest_severity),
            Variable::ModsecBuild => text("030100100"),
            Variable::MscPcreLimitsExceeded | Variable::OutboundDataError => flag(false),
            Variable::FullRequestLength => number(self.req.body.len() as u64),
            Variable::TimeEpoch => number(epoch()),
            Variable::WebAppId => text("default"),
            _ => None,
        }
    }
}

/// The `REQBODY_PROCESSOR` spelling of a processor.
pub(super) fn processor_name(p: BodyProcessor) -> &'static str {
    match p {
        BodyProcessor::UrlEncoded => "URLENCODED",
        BodyProcessor::Multipart => "MULTIPART",
        BodyProcessor::Json => "JSON",
        BodyProcessor::Xml => "XML",
    }
}

/// `%XX` decoding without `+` → space (that is form encoding, not URIs);
/// without a `%`, the input itself (no copy).
fn percent_decode(input: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !input.contains(&b'%') {
        return std::borrow::Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn is_multipart_flag(var: Variable) -> bool {
    static FLAGS: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    let flags = FLAGS.get_or_init(|| {
        let mut flags = Vec::new();
        for v in Variable::all() {
            let i = v as usize;
            if flags.len() <= i {
                flags.resize(i + 1, false);
            }
            flags[i] = v.name().starts_with("MULTIPART_");
        }
        flags
    });
    flags.get(var as usize).copied().unwrap_or(false)
}

fn epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
