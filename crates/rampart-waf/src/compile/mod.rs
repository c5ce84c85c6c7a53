//! Compiler: parsed directives → an immutable [`RuleSet`].
//!
//! Loading walks the directives in order, as ModSecurity does: it tracks
//! `SecDefaultAction` per phase, links `chain`ed rules, places `SecMarker`s
//! for `skipAfter`, and applies `SecRuleRemoveBy*`, `SecRuleUpdateTarget*`
//! and `SecRuleUpdateActionById` to the rules defined before them. Only then
//! are operators compiled (regexes, phrase automata, IP sets). A rule whose
//! operator cannot be compiled faithfully is left out and listed by
//! [`RuleSet::unsupported`]; the rest of the set still loads.

mod builder;
mod config;
mod operator;
pub mod pcre;
mod rule;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use regex::bytes::Regex;

use crate::parser::{parse_file, parse_str, Location, ParseError, Phase};
use crate::transform::Transformation;

pub use config::EngineConfig;
pub use operator::{parse_cidr, Arg, Cidr, Cmp, CompiledOp};
pub use rule::{CompiledRule, Disruptive, RuleMeta};

/// Why a rule set did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{location}: {message}")]
    Compile { location: Location, message: String },
}

/// A rule that was left out of the set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub id: u64,
    pub location: Location,
    pub reason: String,
}

/// One step of a phase's program: a rule (index into [`RuleSet::rules`]) or
/// a marker that `skipAfter` jumps to.
#[derive(Clone, Debug)]
pub enum Entry {
    Rule(usize),
    Marker(Arc<str>),
}

/// Where the configuration text comes from.
pub enum Source<'a> {
    File(&'a Path),
    Text { text: &'a str, origin: &'a str },
}

/// Run-time compiled regexes keyed on (is a selector, pattern); `None`
/// remembers a pattern that cannot be compiled.
type RegexCache = HashMap<(bool, String), Option<Arc<Regex>>>;

/// The compiled, immutable rule set shared by all transactions.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    phases: [Vec<Entry>; 5],
    config: EngineConfig,
    unsupported: Vec<Unsupported>,
    chains: Vec<Vec<&'static Transformation>>,
    /// Regexes built at run time (selectors such as `TX:/^x_/`, `@rx`
    /// patterns with macros), shared by all transactions.
    dynamic: Mutex<RegexCache>,
}

impl RuleSet {
    /// Loads `setup` (extra directives such as a `SecAction` with test
    /// settings, evaluated first) and then each file in order.
    pub fn load<P: AsRef<Path>>(paths: &[P], setup: &str) -> Result<RuleSet, LoadError> {
        let mut sources = vec![Source::Text {
            text: setup,
            origin: "<setup>",
        }];
        sources.extend(paths.iter().map(|p| Source::File(p.as_ref())));
        Self::from_sources(&sources)
    }

    /// Loads configuration text alone.
    pub fn from_text(text: &str) -> Result<RuleSet, LoadError> {
        Self::from_sources(&[Source::Text {
            text,
            origin: "<inline>",
        }])
    }

    pub fn from_sources(sources: &[Source<'_>]) -> Result<RuleSet, LoadError> {
        let mut builder = builder::Builder::default();
        for source in sources {
            let directives = match source {
                Source::File(path) => parse_file(path)?,
                Source::Text { text, origin } => parse_str(text, origin)?,
            };
            for directive in directives {
                builder.directive(directive)?;
            }
        }
        builder.finish()
    }

    /// Every loaded rule (chain heads), in load order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The program of one phase.
    pub fn phase(&self, phase: Phase) -> &[Entry] {
        &self.phases[phase.number() as usize - 1]
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Rules left out because their operator could not be compiled.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.unsupported
    }

    /// The transformation chain with the given key (see
    /// [`CompiledRule::chain_key`]).
    pub fn transform_chain(&self, key: u32) -> &[&'static Transformation] {
        &self.chains[key as usize]
    }

    /// A pattern compiled on first use; `None` when it cannot be taken.
    /// `selector` patterns (`ARGS:/^id_/`) ignore case, as ModSecurity's do.
    pub(crate) fn dynamic_regex(&self, pattern: &str, selector: bool) -> Option<Arc<Regex>> {
        let key = (selector, pattern.to_string());
        let mut cache = self.dynamic.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.get(&key) {
            return found.clone();
        }
        // Bound the cache: macro-built patterns could otherwise grow it per request.
        if cache.len() > 4096 {
            cache.clear();
        }
        let text = if selector {
            format!("(?i){pattern}")
        } else {
            pattern.to_string()
        };
        let compiled = pcre::compile(&text).ok().map(Arc::new);
        cache.insert(key, compiled.clone());
        compiled
    }

    /// Finds a rule by id.
    pub fn rule(&self, id: u64) -> Option<&CompiledRule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests;
