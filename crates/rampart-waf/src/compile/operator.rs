//! Operators with their compiled state: regexes, phrase automata, IP sets,
//! byte ranges. Built once at load; evaluation lives in `eval::operators`.

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;

use super::pcre;
use crate::parser::{Operator, OperatorKind, Template};

/// An argument that may hold macros (`@lt %{tx.max}`), expanded per request.
#[derive(Clone, Debug)]
pub enum Arg {
    Literal(Vec<u8>),
    Macro(Template),
}

impl Arg {
    fn new(template: &Template) -> Arg {
        if template.is_literal() {
            Arg::Literal(template.raw().as_bytes().to_vec())
        } else {
            Arg::Macro(template.clone())
        }
    }
}

/// Numeric comparisons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// A CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// An operator ready to run.
#[derive(Debug)]
pub enum CompiledOp {
    Rx(Box<Regex>),
    /// `@rx ^.*$`: under ModSecurity's flags (DOTALL, MULTILINE) `.*`
    /// takes every byte and `$` holds at the end of the value, so the
    /// leftmost match is the whole value, whatever it holds (CRS 920450
    /// and 920451 capture header names so). No regex needs to run.
    RxWhole,
    /// `@rx` whose pattern has macros: compiled per request (and cached).
    RxMacro(Template),
    Pm(Box<Phrases>),
    StrEq(Arg),
    Contains(Arg),
    ContainsWord(Arg),
    BeginsWith(Arg),
    EndsWith(Arg),
    Within(Arg),
    Compare(Cmp, Arg),
    IpMatch(Vec<Cidr>),
    ValidateByteRange(Box<[bool; 256]>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    DetectSqli,
    DetectXss,
    Unconditional,
    NoMatch,
}

/// The phrases of `@pm` / `@pmFromFile` and their automaton.
#[derive(Debug)]
pub struct Phrases {
    pub automaton: AhoCorasick,
    /// The phrases in lower case (the prefilter's literals: `@pm` matches
    /// exactly when one of them occurs, ignoring case).
    pub lowercase: Vec<Vec<u8>>,
    /// The length of the shortest phrase: a shorter value cannot hold a
    /// match (ignoring case keeps lengths), so the automaton need not run.
    pub shortest: usize,
    /// For a list too large for the prefilter: a value without any of the
    /// phrases' chosen trigrams holds no phrase (see `compile::trigrams`).
    pub trigrams: Option<super::trigrams::TrigramFilter>,
}

impl Phrases {
    /// False when the shortcuts may rule out a match on `value` without
    /// running the automaton: it is shorter than every phrase, or holds
    /// none of their chosen trigrams. Both are exact (see the fields).
    pub fn may_match(&self, value: &[u8]) -> bool {
        value.len() >= self.shortest && self.trigrams.as_ref().is_none_or(|t| t.may_match(value))
    }
}

/// The `@rx` pattern of [`CompiledOp::RxWhole`].
pub(super) const WHOLE_VALUE: &str = "^.*$";

/// Compiles `op`; `dir` is the directory of the rule's file (data files).
/// An `Err` says why the rule cannot run here.
pub fn compile(op: &Operator, dir: &Path) -> Result<CompiledOp, String> {
    let arg = &op.argument;
    let raw = arg.raw();
    Ok(match op.kind {
        OperatorKind::Rx if arg.is_literal() && raw == WHOLE_VALUE => CompiledOp::RxWhole,
        OperatorKind::Rx if arg.is_literal() => CompiledOp::Rx(Box::new(pcre::compile(raw)?)),
        OperatorKind::Rx => CompiledOp::RxMacro(arg.clone()),
        OperatorKind::Pm => CompiledOp::Pm(Box::new(phrases(raw.split_whitespace())?)),
        OperatorKind::PmFromFile => CompiledOp::Pm(Box::new(pm_from_files(raw, dir)?)),
        OperatorKind::StrEq => CompiledOp::StrEq(Arg::new(arg)),
        OperatorKind::Contains => CompiledOp::Contains(Arg::new(arg)),
        OperatorKind::ContainsWord => CompiledOp::ContainsWord(Arg::new(arg)),
        OperatorKind::BeginsWith => CompiledOp::BeginsWith(Arg::new(arg)),
        OperatorKind::EndsWith => CompiledOp::EndsWith(Arg::new(arg)),
        OperatorKind::Within => CompiledOp::Within(Arg::new(arg)),
        OperatorKind::Eq => CompiledOp::Compare(Cmp::Eq, Arg::new(arg)),
        OperatorKind::Ge => CompiledOp::Compare(Cmp::Ge, Arg::new(arg)),
        OperatorKind::Gt => CompiledOp::Compare(Cmp::Gt, Arg::new(arg)),
        OperatorKind::Le => CompiledOp::Compare(Cmp::Le, Arg::new(arg)),
        OperatorKind::Lt => CompiledOp::Compare(Cmp::Lt, Arg::new(arg)),
        OperatorKind::IpMatch => CompiledOp::IpMatch(cidrs(raw.split(','))?),
        OperatorKind::IpMatchFromFile => CompiledOp::IpMatch(ip_file(raw, dir)?),
        OperatorKind::ValidateByteRange => CompiledOp::ValidateByteRange(byte_ranges(raw)?),
        OperatorKind::ValidateUrlEncoding => CompiledOp::ValidateUrlEncoding,
        OperatorKind::ValidateUtf8Encoding => CompiledOp::ValidateUtf8Encoding,
        OperatorKind::DetectSqli => CompiledOp::DetectSqli,
        OperatorKind::DetectXss => CompiledOp::DetectXss,
        OperatorKind::UnconditionalMatch => CompiledOp::Unconditional,
        OperatorKind::NoMatch => CompiledOp::NoMatch,
        other => return Err(format!("operator @{} is not implemented", other.name())),
    })
}

/// A case-insensitive phrase automaton (ModSecurity's `@pm` ignores case).
fn phrases<'a>(words: impl Iterator<Item = &'a str>) -> Result<Phrases, String> {
    let words: Vec<&str> = words.filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Err("@pm needs at least one phrase".into());
    }
    let automaton = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(&words)
        .map_err(|e| e.to_string())?;
    let lowercase: Vec<Vec<u8>> = words
        .iter()
        .map(|w| w.as_bytes().to_ascii_lowercase())
        .collect();
    let shortest = words.iter().map(|w| w.len()).min().unwrap_or(0);
    // Smaller lists are in the prefilter DFA, which rules values out
    // before the operator runs.
    let trigrams = if lowercase.len() > super::MAX_PM_PHRASES {
        super::trigrams::TrigramFilter::build(&lowercase)
    } else {
        None
    };
    Ok(Phrases {
        automaton,
        lowercase,
        shortest,
        trigrams,
    })
}

/// Reads data files: one phrase a line, `#` comments, blank lines ignored.
fn data_lines(files: &str, dir: &Path) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for name in files.split_whitespace() {
        let path = dir.join(name);
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        lines.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    Ok(lines)
}

fn pm_from_files(files: &str, dir: &Path) -> Result<Phrases, String> {
    let lines = data_lines(files, dir)?;
    phrases(lines.iter().map(String::as_str))
}

fn ip_file(files: &str, dir: &Path) -> Result<Vec<Cidr>, String> {
    let lines = data_lines(files, dir)?;
    cidrs(lines.iter().map(String::as_str))
}

fn cidrs<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<Cidr>, String> {
    items
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_cidr)
        .collect()
}

/// `10.0.0.0/8`, `::1`, `192.168.1.1`.
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid IP address `{text}`"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("invalid prefix in `{text}`"))?,
        None => max,
    };
    Ok(Cidr { addr, prefix })
}

/// `@validateByteRange 1-255,9,10`: the allowed bytes.
fn byte_ranges(text: &str) -> Result<Box<[bool; 256]>, String> {
    let mut allowed = Box::new([false; 256]);
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<u8>()
                .map_err(|_| format!("invalid byte range `{part}`"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("invalid byte range `{part}`"));
        }
        for b in lo..=hi {
            allowed[b as usize] = true;
        }
    }
    Ok(allowed)
}
