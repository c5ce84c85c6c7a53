//! The operator of a `SecRule`: `"@name argument"`, `"!@name argument"`,
//! or a bare pattern, which means `@rx`. The name is validated against
//! ModSecurity v3's operator list; the argument is kept as a template for
//! the compiler (which builds regexes, phrase sets, IP sets ...).

use std::fmt;

use super::error::{AtError, ErrorKind, PResult};
use super::macros::{Template, Unknown};

macro_rules! operators {
    ($($variant:ident = $name:literal, $arg:ident;)*) => {
        /// Every operator SecLang accepts.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum OperatorKind {
            $($variant,)*
        }

        const OPERATOR_TABLE: &[(&str, OperatorKind, Arg)] = &[
            $(($name, OperatorKind::$variant, Arg::$arg),)*
        ];
    };
}

/// Whether an operator takes an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    Required,
    None,
}

operators! {
    BeginsWith = "beginsWith", Required;
    Contains = "contains", Required;
    ContainsWord = "containsWord", Required;
    DetectSqli = "detectSQLi", None;
    DetectXss = "detectXSS", None;
    EndsWith = "endsWith", Required;
    Eq = "eq", Required;
    FuzzyHash = "fuzzyHash", Required;
    Ge = "ge", Required;
    GeoLookup = "geoLookup", None;
    GsbLookup = "gsbLookup", Required;
    Gt = "gt", Required;
    InspectFile = "inspectFile", Required;
    IpMatch = "ipMatch", Required;
    IpMatchFromFile = "ipMatchFromFile", Required;
    Le = "le", Required;
    Lt = "lt", Required;
    NoMatch = "noMatch", None;
    Pm = "pm", Required;
    PmFromFile = "pmFromFile", Required;
    Rbl = "rbl", Required;
    Rsub = "rsub", Required;
    Rx = "rx", Required;
    RxGlobal = "rxGlobal", Required;
    StrEq = "streq", Required;
    StrMatch = "strmatch", Required;
    UnconditionalMatch = "unconditionalMatch", None;
    ValidateByteRange = "validateByteRange", Required;
    ValidateDtd = "validateDTD", Required;
    ValidateHash = "validateHash", Required;
    ValidateSchema = "validateSchema", Required;
    ValidateUrlEncoding = "validateUrlEncoding", None;
    ValidateUtf8Encoding = "validateUtf8Encoding", None;
    VerifyCc = "verifyCC", Required;
    VerifyCpf = "verifyCPF", Required;
    VerifySsn = "verifySSN", Required;
    VerifySvnr = "verifySVNR", Required;
    Within = "within", Required;
}

/// Short spellings ModSecurity accepts for two file-based operators.
const ALIASES: &[(&str, OperatorKind)] = &[
    ("ipMatchF", OperatorKind::IpMatchFromFile),
    ("pmf", OperatorKind::PmFromFile),
];

impl OperatorKind {
    /// Resolves an operator name (without `@`), ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<OperatorKind> {
        let table = OPERATOR_TABLE.iter().map(|&(n, k, _)| (n, k));
        table
            .chain(ALIASES.iter().copied())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, k)| k)
    }

    /// The canonical name, without `@`.
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// False for operators such as `@detectSQLi` that take no argument.
    pub fn takes_argument(self) -> bool {
        self.entry().2 == Arg::Required
    }

    fn entry(self) -> &'static (&'static str, OperatorKind, Arg) {
        OPERATOR_TABLE
            .iter()
            .find(|(_, k, _)| *k == self)
            .expect("every operator is in the table")
    }
}

/// A parsed operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub kind: OperatorKind,
    /// `!@op`: the rule matches when the operator does not.
    pub negated: bool,
    /// The argument as written (after the operator name and its separating
    /// blanks). `%{...}` references to known variables are split out; the
    /// raw text is still available through [`Template::raw`]. Backslashes,
    /// including `\"`, are exactly as in the file.
    pub argument: Template,
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = if self.negated { "!" } else { "" };
        match self.argument.raw() {
            "" => write!(f, "{not}@{}", self.kind.name()),
            arg => write!(f, "{not}@{} {arg}", self.kind.name()),
        }
    }
}

/// Parses the operator argument of a `SecRule` (quotes already removed).
pub(crate) fn parse_operator(text: &str) -> PResult<Operator> {
    let (negated, rest) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let prefix = text.len() - rest.len();
    let Some(named) = rest.strip_prefix('@') else {
        // No `@`: the whole text is a regular expression.
        let argument = template(rest).map_err(|e| e.shift(prefix))?;
        return Ok(Operator {
            kind: OperatorKind::Rx,
            negated,
            argument,
        });
    };
    let name_len = named
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(named.len());
    let name = &named[..name_len];
    let kind = OperatorKind::from_name(name)
        .ok_or_else(|| AtError::new(prefix, ErrorKind::UnknownOperator(name.to_string())))?;
    let argument_text = named[name_len..].trim_start();
    let argument_at = text.len() - argument_text.len();
    if !kind.takes_argument() && !argument_text.trim_end().is_empty() {
        let reason = format!("@{} takes no argument", kind.name());
        return Err(AtError::new(
            argument_at,
            ErrorKind::invalid("operator argument", argument_text, reason),
        ));
    }
    let argument = template(argument_text).map_err(|e| e.shift(argument_at))?;
    Ok(Operator {
        kind,
        negated,
        argument,
    })
}

fn template(text: &str) -> PResult<Template> {
    Template::parse_with(text, Unknown::Keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::variables::Variable;

    #[test]
    fn explicit_and_implicit_operators() {
        let op = parse_operator("@rx ^(?:GET|HEAD)$").unwrap();
        assert_eq!(
            (op.kind, op.negated, op.argument.raw()),
            (OperatorKind::Rx, false, "^(?:GET|HEAD)$")
        );
        let op = parse_operator("!@within %{tx.allowed_methods}").unwrap();
        assert_eq!((op.kind, op.negated), (OperatorKind::Within, true));
        assert_eq!(op.argument.macros().next().unwrap().variable, Variable::Tx);
        let op = parse_operator("^attack$").unwrap();
        assert_eq!(
            (op.kind, op.negated, op.argument.raw()),
            (OperatorKind::Rx, false, "^attack$")
        );
        let op = parse_operator("!foo").unwrap();
        assert_eq!(
            (op.kind, op.negated, op.argument.raw()),
            (OperatorKind::Rx, true, "foo")
        );
    }

    #[test]
    fn names_are_case_insensitive_with_aliases() {
        assert_eq!(
            parse_operator("@DETECTSQLI").unwrap().kind,
            OperatorKind::DetectSqli
        );
        assert_eq!(
            parse_operator("@pmf words.data").unwrap().kind,
            OperatorKind::PmFromFile
        );
        assert_eq!(
            parse_operator("@ipMatchF ips.txt").unwrap().kind,
            OperatorKind::IpMatchFromFile
        );
        assert_eq!(OperatorKind::PmFromFile.name(), "pmFromFile");
    }

    #[test]
    fn argument_keeps_backslashes_and_inner_spaces() {
        let op = parse_operator(r#"@rx ['\";=\x5c] x "#).unwrap();
        assert_eq!(op.argument.raw(), r#"['\";=\x5c] x "#);
        let op = parse_operator("@pm  a b").unwrap();
        assert_eq!(op.argument.raw(), "a b");
        // Regex braces after `%` are not macros.
        assert!(parse_operator("@rx %{2}").unwrap().argument.is_literal());
    }

    #[test]
    fn errors() {
        let err = parse_operator("!@nosuch x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownOperator("nosuch".into()));
        assert_eq!(err.offset, 1);
        assert!(parse_operator("@detectSQLi x").is_err());
        assert!(parse_operator("@detectSQLi ").is_ok());
        assert!(parse_operator("@").is_err());
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(parse_operator("!@eq 0").unwrap().to_string(), "!@eq 0");
        assert_eq!(
            parse_operator("@unconditionalMatch").unwrap().to_string(),
            "@unconditionalMatch"
        );
    }
}
