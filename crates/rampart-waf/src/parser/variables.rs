//! Variables (`ARGS`, `REQUEST_HEADERS:User-Agent`, `&TX:score`,
//! `!ARGS:/^pw/`, `XML:/*` ...) and the `|`-separated target lists of
//! `SecRule`, `SecRuleUpdateTarget*` and `ctl:ruleRemoveTarget*`.
//!
//! The variable table is ModSecurity v3's list. Names are case-insensitive.
//! Collections accept a selector after `:` (or `.`); scalars do not.

use std::fmt;

use super::error::{AtError, ErrorKind, PResult};

/// Whether a variable holds one value or a keyed collection of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VariableKind {
    Scalar,
    Collection,
}

macro_rules! variables {
    ($($variant:ident = $name:literal, $kind:ident;)*) => {
        /// Every variable and collection name SecLang accepts.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Variable {
            $($variant,)*
        }

        const VARIABLE_TABLE: &[(&str, Variable, VariableKind)] = &[
            $(($name, Variable::$variant, VariableKind::$kind),)*
        ];
    };
}

variables! {
    Args = "ARGS", Collection;
    ArgsCombinedSize = "ARGS_COMBINED_SIZE", Scalar;
    ArgsGet = "ARGS_GET", Collection;
    ArgsGetNames = "ARGS_GET_NAMES", Collection;
    ArgsNames = "ARGS_NAMES", Collection;
    ArgsPost = "ARGS_POST", Collection;
    ArgsPostNames = "ARGS_POST_NAMES", Collection;
    AuthType = "AUTH_TYPE", Scalar;
    Duration = "DURATION", Scalar;
    Env = "ENV", Collection;
    Files = "FILES", Collection;
    FilesCombinedSize = "FILES_COMBINED_SIZE", Scalar;
    FilesNames = "FILES_NAMES", Collection;
    FilesSizes = "FILES_SIZES", Collection;
    FilesTmpContent = "FILES_TMP_CONTENT", Collection;
    FilesTmpNames = "FILES_TMPNAMES", Collection;
    FullRequest = "FULL_REQUEST", Scalar;
    FullRequestLength = "FULL_REQUEST_LENGTH", Scalar;
    Geo = "GEO", Collection;
    Global = "GLOBAL", Collection;
    HighestSeverity = "HIGHEST_SEVERITY", Scalar;
    InboundDataError = "INBOUND_DATA_ERROR", Scalar;
    Ip = "IP", Collection;
    MatchedVar = "MATCHED_VAR", Scalar;
    MatchedVarName = "MATCHED_VAR_NAME", Scalar;
    MatchedVars = "MATCHED_VARS", Collection;
    MatchedVarsNames = "MATCHED_VARS_NAMES", Collection;
    ModsecBuild = "MODSEC_BUILD", Scalar;
    MscPcreLimitsExceeded = "MSC_PCRE_LIMITS_EXCEEDED", Scalar;
    MultipartBoundaryQuoted = "MULTIPART_BOUNDARY_QUOTED", Scalar;
    MultipartBoundaryWhitespace = "MULTIPART_BOUNDARY_WHITESPACE", Scalar;
    MultipartCrlfLfLines = "MULTIPART_CRLF_LF_LINES", Scalar;
    MultipartDataAfter = "MULTIPART_DATA_AFTER", Scalar;
    MultipartDataBefore = "MULTIPART_DATA_BEFORE", Scalar;
    MultipartFileLimitExceeded = "MULTIPART_FILE_LIMIT_EXCEEDED", Scalar;
    MultipartFilename = "MULTIPART_FILENAME", Scalar;
    MultipartHeaderFolding = "MULTIPART_HEADER_FOLDING", Scalar;
    MultipartInvalidHeaderFolding = "MULTIPART_INVALID_HEADER_FOLDING", Scalar;
    MultipartInvalidPart = "MULTIPART_INVALID_PART", Scalar;
    MultipartInvalidQuoting = "MULTIPART_INVALID_QUOTING", Scalar;
    MultipartLfLine = "MULTIPART_LF_LINE", Scalar;
    MultipartMissingSemicolon = "MULTIPART_MISSING_SEMICOLON", Scalar;
    MultipartName = "MULTIPART_NAME", Scalar;
    MultipartPartHeaders = "MULTIPART_PART_HEADERS", Collection;
    MultipartSemicolonMissing = "MULTIPART_SEMICOLON_MISSING", Scalar;
    MultipartStrictError = "MULTIPART_STRICT_ERROR", Scalar;
    MultipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY", Scalar;
    OutboundDataError = "OUTBOUND_DATA_ERROR", Scalar;
    PathInfo = "PATH_INFO", Scalar;
    QueryString = "QUERY_STRING", Scalar;
    RemoteAddr = "REMOTE_ADDR", Scalar;
    RemoteHost = "REMOTE_HOST", Scalar;
    RemotePort = "REMOTE_PORT", Scalar;
    RemoteUser = "REMOTE_USER", Scalar;
    ReqbodyError = "REQBODY_ERROR", Scalar;
    ReqbodyErrorMsg = "REQBODY_ERROR_MSG", Scalar;
    ReqbodyProcessor = "REQBODY_PROCESSOR", Scalar;
    ReqbodyProcessorError = "REQBODY_PROCESSOR_ERROR", Scalar;
    ReqbodyProcessorErrorMsg = "REQBODY_PROCESSOR_ERROR_MSG", Scalar;
    RequestBasename = "REQUEST_BASENAME", Scalar;
    RequestBody = "REQUEST_BODY", Scalar;
    RequestBodyLength = "REQUEST_BODY_LENGTH", Scalar;
    RequestCookies = "REQUEST_COOKIES", Collection;
    RequestCookiesNames = "REQUEST_COOKIES_NAMES", Collection;
    RequestFilename = "REQUEST_FILENAME", Scalar;
    RequestHeaders = "REQUEST_HEADERS", Collection;
    RequestHeadersNames = "REQUEST_HEADERS_NAMES", Collection;
    RequestLine = "REQUEST_LINE", Scalar;
    RequestMethod = "REQUEST_METHOD", Scalar;
    RequestProtocol = "REQUEST_PROTOCOL", Scalar;
    RequestUri = "REQUEST_URI", Scalar;
    RequestUriRaw = "REQUEST_URI_RAW", Scalar;
    Resource = "RESOURCE", Collection;
    ResponseBody = "RESPONSE_BODY", Scalar;
    ResponseContentLength = "RESPONSE_CONTENT_LENGTH", Scalar;
    ResponseContentType = "RESPONSE_CONTENT_TYPE", Scalar;
    ResponseHeaders = "RESPONSE_HEADERS", Collection;
    ResponseHeadersNames = "RESPONSE_HEADERS_NAMES", Collection;
    ResponseProtocol = "RESPONSE_PROTOCOL", Scalar;
    ResponseStatus = "RESPONSE_STATUS", Scalar;
    Rule = "RULE", Collection;
    ServerAddr = "SERVER_ADDR", Scalar;
    ServerName = "SERVER_NAME", Scalar;
    ServerPort = "SERVER_PORT", Scalar;
    Session = "SESSION", Collection;
    SessionId = "SESSIONID", Scalar;
    Status = "STATUS", Scalar;
    StatusLine = "STATUS_LINE", Scalar;
    Time = "TIME", Scalar;
    TimeDay = "TIME_DAY", Scalar;
    TimeEpoch = "TIME_EPOCH", Scalar;
    TimeHour = "TIME_HOUR", Scalar;
    TimeMin = "TIME_MIN", Scalar;
    TimeMon = "TIME_MON", Scalar;
    TimeSec = "TIME_SEC", Scalar;
    TimeWday = "TIME_WDAY", Scalar;
    TimeYear = "TIME_YEAR", Scalar;
    Tx = "TX", Collection;
    UniqueId = "UNIQUE_ID", Scalar;
    UrlencodedError = "URLENCODED_ERROR", Scalar;
    User = "USER", Collection;
    UserId = "USERID", Scalar;
    WebAppId = "WEBAPPID", Scalar;
    WebserverErrorLog = "WEBSERVER_ERROR_LOG", Collection;
    Xml = "XML", Collection;
}

impl Variable {
    /// Resolves a name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Variable> {
        VARIABLE_TABLE
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v, _)| v)
    }

    /// The canonical (upper-case) name.
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    pub fn kind(self) -> VariableKind {
        self.entry().2
    }

    pub fn is_collection(self) -> bool {
        self.kind() == VariableKind::Collection
    }

    /// All variables, in name order.
    pub fn all() -> impl Iterator<Item = Variable> {
        VARIABLE_TABLE.iter().map(|&(_, v, _)| v)
    }

    fn entry(self) -> &'static (&'static str, Variable, VariableKind) {
        VARIABLE_TABLE
            .iter()
            .find(|(_, v, _)| *v == self)
            .expect("every variant is in the table")
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which members of a collection a target addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selector {
    /// `ARGS:id` — a literal key (matched case-insensitively at run time
    /// for headers, cookies and TX, as ModSecurity does).
    Key(String),
    /// `ARGS:/^id_/` — keys matching a regular expression (kept as text).
    Regex(String),
    /// `XML:/*` — an XPath expression.
    XPath(String),
}

/// One entry of a target list, e.g. `!REQUEST_COOKIES:/^_ga/` or `&ARGS`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub variable: Variable,
    pub selector: Option<Selector>,
    /// `&VAR`: the number of values instead of the values.
    pub count: bool,
    /// `!VAR:sel`: remove these values from the rule's other targets.
    pub exclude: bool,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclude {
            f.write_str("!")?;
        }
        if self.count {
            f.write_str("&")?;
        }
        f.write_str(self.variable.name())?;
        match &self.selector {
            None => Ok(()),
            Some(Selector::Key(k) | Selector::XPath(k)) => write!(f, ":{k}"),
            Some(Selector::Regex(r)) => write!(f, ":/{r}/"),
        }
    }
}

/// Parses a `|`-separated target list.
pub(crate) fn parse_targets(text: &str) -> PResult<Vec<Target>> {
    let mut targets = Vec::new();
    let mut start = 0;
    loop {
        let end = target_end(text, start);
        let piece = &text[start..end];
        let target = parse_target(piece.trim()).map_err(|e| e.shift(start))?;
        targets.push(target);
        if end >= text.len() {
            return Ok(targets);
        }
        start = end + 1;
    }
}

/// Index of the `|` that ends the target starting at `start` (or the end).
/// A `/regex/` or `'quoted'` selector may itself contain `|`.
fn target_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let name_start =
        start + text[start..].len() - text[start..].trim_start_matches(['!', '&', ' ']).len();
    let name_end = text[name_start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(text.len(), |n| name_start + n);
    // XPath selectors are never delimited; only regex/quoted ones can hide `|`.
    let is_xml = text[name_start..name_end].eq_ignore_ascii_case("XML");
    if !is_xml && matches!(bytes.get(name_end), Some(b':' | b'.')) {
        if let Some(end) = delimited_end(bytes, name_end + 1) {
            return end;
        }
    }
    text[start..].find('|').map_or(text.len(), |n| start + n)
}

/// For a selector opening with `'` or `/` at `at`, the index just after the
/// matching close, provided it is followed by `|` or the end of the list.
fn delimited_end(bytes: &[u8], at: usize) -> Option<usize> {
    let open = *bytes.get(at)?;
    if open != b'\'' && open != b'/' {
        return None;
    }
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == open && matches!(bytes.get(i + 1), None | Some(b'|')) => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Parses one target such as `!REQUEST_HEADERS:User-Agent`.
pub(crate) fn parse_target(piece: &str) -> PResult<Target> {
    let (exclude, count, rest) = match piece.as_bytes().first() {
        Some(b'!') => (true, false, &piece[1..]),
        Some(b'&') => (false, true, &piece[1..]),
        _ => (false, false, piece),
    };
    let prefix = piece.len() - rest.len();
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if name.is_empty() {
        return Err(AtError::new(
            0,
            ErrorKind::invalid("target", piece, "expected a variable name"),
        ));
    }
    let variable = Variable::from_name(name)
        .ok_or_else(|| AtError::new(prefix, ErrorKind::UnknownVariable(name.to_string())))?;
    let selector = match &rest[name_len..] {
        "" => None,
        tail if tail.starts_with(':') || tail.starts_with('.') => {
            Some(parse_selector(variable, &tail[1..]).map_err(|e| e.shift(prefix + name_len + 1))?)
        }
        _ => {
            return Err(AtError::new(
                0,
                ErrorKind::invalid("target", piece, "unexpected text after the variable name"),
            ))
        }
    };
    Ok(Target {
        variable,
        selector,
        count,
        exclude,
    })
}

fn parse_selector(variable: Variable, raw: &str) -> PResult<Selector> {
    if !variable.is_collection() {
        let reason = format!("{variable} is not a collection and takes no selector");
        return Err(ErrorKind::invalid("selector", raw, reason).into());
    }
    let unquoted = raw
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(raw);
    if unquoted.is_empty() {
        return Err(ErrorKind::invalid("selector", raw, "empty selector").into());
    }
    if variable == Variable::Xml {
        return Ok(Selector::XPath(unquoted.to_string()));
    }
    match unquoted.strip_prefix('/').and_then(|s| s.strip_suffix('/')) {
        Some(regex) if unquoted.len() >= 2 => Ok(Selector::Regex(regex.to_string())),
        _ => Ok(Selector::Key(unquoted.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Target {
        parse_target(text).unwrap()
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(
            Variable::from_name("request_headers"),
            Some(Variable::RequestHeaders)
        );
        assert_eq!(
            Variable::from_name("Matched_Var_Name"),
            Some(Variable::MatchedVarName)
        );
        assert_eq!(Variable::from_name("NOPE"), None);
        assert_eq!(Variable::Tx.name(), "TX");
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut names: Vec<_> = VARIABLE_TABLE.iter().map(|e| e.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARIABLE_TABLE.len());
        assert!(Variable::all().all(|v| Variable::from_name(v.name()) == Some(v)));
    }

    #[test]
    fn target_forms() {
        let t = target("ARGS");
        assert_eq!(
            (t.variable, t.selector, t.count, t.exclude),
            (Variable::Args, None, false, false)
        );
        let t = target("&TX:anomaly_score");
        assert!(t.count && !t.exclude);
        assert_eq!(t.selector, Some(Selector::Key("anomaly_score".into())));
        let t = target("!REQUEST_HEADERS:User-Agent");
        assert!(t.exclude);
        assert_eq!(t.selector, Some(Selector::Key("User-Agent".into())));
        assert_eq!(
            target("TX:/^header_name_/").selector,
            Some(Selector::Regex("^header_name_".into()))
        );
        assert_eq!(
            target("XML:/*").selector,
            Some(Selector::XPath("/*".into()))
        );
        assert_eq!(
            target("XML://@*").selector,
            Some(Selector::XPath("//@*".into()))
        );
        assert_eq!(target("tx.foo").selector, Some(Selector::Key("foo".into())));
        assert_eq!(
            target("ARGS:'/a|b/'").selector,
            Some(Selector::Regex("a|b".into()))
        );
        assert_eq!(
            target("ARGS_NAMES:json.profile").selector,
            Some(Selector::Key("json.profile".into()))
        );
    }

    #[test]
    fn target_lists_split_on_pipes_outside_regexes() {
        let list =
            parse_targets("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm|_ga/|ARGS:x|XML:/*").unwrap();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "REQUEST_COOKIES",
                "!REQUEST_COOKIES:/__utm|_ga/",
                "ARGS:x",
                "XML:/*"
            ]
        );
        // An XPath never swallows the regex target after it.
        let list = parse_targets("XML://@*|ARGS:/x/").unwrap();
        assert_eq!(list[0].selector, Some(Selector::XPath("//@*".into())));
        assert_eq!(list[1].selector, Some(Selector::Regex("x".into())));
    }

    #[test]
    fn errors_point_at_the_bad_target() {
        let err = parse_targets("ARGS|FOO_BAR:x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownVariable("FOO_BAR".into()));
        assert_eq!(err.offset, 5);
        let err = parse_targets("ARGS|!BOGUS").unwrap_err();
        assert_eq!(err.offset, 6);
        assert!(matches!(
            parse_target("REMOTE_ADDR:x").unwrap_err().kind,
            ErrorKind::InvalidValue { .. }
        ));
        assert!(parse_target("ARGS:").is_err());
        assert!(parse_target("").is_err());
        assert!(parse_target("ARGS#x").is_err());
    }
}
