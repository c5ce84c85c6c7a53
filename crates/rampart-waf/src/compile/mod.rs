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
pub mod fast;
mod operator;
pub mod pcre;
pub mod prefilter;
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

/// Run-time compiled regexes keyed on the pattern, one map for operator
/// patterns and one for selectors; `None` remembers a pattern that cannot
/// be compiled.
type RegexCache = [HashMap<String, Option<Arc<Regex>>>; 2];

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
    /// Per phase, per program entry: for a rule with `skipAfter`, the index
    /// after its marker (the end of the phase when the marker is missing).
    skip_targets: [Vec<u32>; 5],
    /// The prefilter of all `@rx` links (see `compile::prefilter`).
    prefilter: Option<prefilter::Prefilter>,
    /// Per transformation chain: whether some link of it has a prefilter
    /// slot.
    filtered_chains: Vec<bool>,
    prefilter_on: bool,
    /// The `VAR:/regex/` selectors of the loaded rules, compiled at load and
    /// keyed on the address of their pattern text (see
    /// [`RuleSet::selector_regex`]).
    selectors: HashMap<usize, (String, Arc<Regex>), crate::inthash::IntBuild>,
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
        let mut caches = self.dynamic.lock().unwrap_or_else(|e| e.into_inner());
        let cache = &mut caches[usize::from(selector)];
        if let Some(found) = cache.get(pattern) {
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
        cache.insert(pattern.to_string(), compiled.clone());
        compiled
    }

    /// The compiled form of a `VAR:/regex/` selector (case-insensitive, as
    /// ModSecurity's are). Selectors written in the rules were compiled at
    /// load and are found by the address of their text, without hashing
    /// or locking; any other pattern goes through the run-time cache.
    pub(crate) fn selector_regex(&self, pattern: &str) -> Option<Arc<Regex>> {
        if let Some((text, re)) = self.selectors.get(&(pattern.as_ptr() as usize)) {
            if text == pattern {
                return Some(re.clone());
            }
        }
        self.dynamic_regex(pattern, true)
    }

    /// Fills `selectors` from every target, exclusion and
    /// `ctl:ruleRemoveTarget*` of the rules.
    fn compile_selectors(&mut self) {
        let mut found: Vec<&String> = Vec::new();
        fn note<'a>(found: &mut Vec<&'a String>, t: &'a crate::parser::Target) {
            if let Some(crate::parser::Selector::Regex(r)) = &t.selector {
                found.push(r);
            }
        }
        for link in self.rules.iter().flat_map(|r| r.links()) {
            for t in link.targets.iter().chain(&link.exclusions) {
                note(&mut found, t);
            }
            for action in &link.effects {
                if let crate::parser::Action::Ctl(crate::parser::Ctl::RuleRemoveTarget {
                    targets,
                    ..
                }) = action
                {
                    for t in targets {
                        note(&mut found, t);
                    }
                }
            }
        }
        let mut selectors = HashMap::default();
        for pattern in found {
            if pattern.is_empty() {
                continue; // no unique address
            }
            if let Some(re) = self.dynamic_regex(pattern, true) {
                selectors.insert(pattern.as_ptr() as usize, (pattern.clone(), re));
            }
        }
        self.selectors = selectors;
    }

    /// Where a phase's program resumes after the `skipAfter` of the rule at
    /// `entry`: one lookup, computed at load.
    pub fn skip_after_target(&self, phase: Phase, entry: usize) -> usize {
        let n = phase.number() as usize - 1;
        self.skip_targets[n]
            .get(entry)
            .map_or(self.phases[n].len(), |t| *t as usize)
    }

    /// Turns the `@rx` prefilters on (the default) or off. Results are the
    /// same either way; off exists to prove it.
    pub fn set_prefilter(&mut self, on: bool) {
        self.prefilter_on = on;
    }

    /// The prefilter, when prefilters are on and some link of the
    /// transformation chain `chain_key` has a slot in it.
    pub fn chain_filter(&self, chain_key: u32) -> Option<&prefilter::Prefilter> {
        if !self.prefilter_on || !*self.filtered_chains.get(chain_key as usize)? {
            return None;
        }
        self.prefilter.as_ref()
    }

    /// True when the prefilter of `link` rules out a match on `value` (the
    /// value after the link's transformations).
    pub fn prefilter_rejects(&self, link: &CompiledRule, value: &[u8]) -> bool {
        match (link.prefilter, self.chain_filter(link.chain_key)) {
            (Some(slot), Some(filter)) => !prefilter::slot_set(&filter.scan(value), slot),
            _ => false,
        }
    }

    /// Gives each `@rx` link a prefilter slot when its pattern has required
    /// literals (not `multiMatch` links: they test intermediate values).
    fn build_prefilters(&mut self) {
        let mut builder = prefilter::FilterBuilder::default();
        for rule in &mut self.rules {
            let mut link = Some(rule);
            while let Some(l) = link {
                if let (CompiledOp::Rx(re), false) = (&l.operator, l.multi_match) {
                    if let Some(literals) = prefilter::required_literals(re.as_str()) {
                        l.prefilter = Some(builder.add(l.chain_key, literals));
                    }
                }
                link = l.chain.as_deref_mut();
            }
        }
        match builder.finish(self.chains.len()) {
            Ok((filter, chains)) => {
                self.prefilter = filter;
                self.filtered_chains = chains;
            }
            Err(_) => self.prefilter_on = false,
        }
    }

    /// Fills `skip_targets` from the programs (after the rules are final).
    fn index_skip_targets(&mut self) {
        for (n, program) in self.phases.iter().enumerate() {
            let mut targets = vec![program.len() as u32; program.len()];
            // Nearest following marker of each name, scanning backwards.
            let mut next: HashMap<&str, usize> = HashMap::new();
            for (i, entry) in program.iter().enumerate().rev() {
                match entry {
                    Entry::Marker(name) => {
                        next.insert(name, i + 1);
                    }
                    Entry::Rule(r) => {
                        if let Some(marker) = &self.rules[*r].skip_after {
                            if let Some(at) = next.get(marker.as_str()) {
                                targets[i] = *at as u32;
                            }
                        }
                    }
                }
            }
            self.skip_targets[n] = targets;
        }
    }

    /// Finds a rule by id.
    pub fn rule(&self, id: u64) -> Option<&CompiledRule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests;
