//! Segments of pure rules, found at load: a stretch of a phase's program
//! whose rules read and write TX only, through keys known at load (see
//! `eval::segments` for how a transaction reuses the outcome of an earlier
//! evaluation of the same segment).
//!
//! CRS's phases 3 to 5 are mostly such rules: the paranoia-level gates of
//! 950-956, the outbound score sums and checks of 959 and the correlation
//! of 980. On a benign exchange they see the same TX values every time.
//! The request phases have fewer, but one is run on every request: the
//! inbound score sums and checks of 949 at the end of phase 2.
//!
//! A segment starts where the rule loop can arrive from something else
//! than the pure rule before it: the start of the phase, the entry after
//! a rule that is not pure, and the target of every `skipAfter`. It ends
//! at the first rule that is not pure. For each segment the keys its
//! rules may read or write are listed: a rule is pure (`compile::pure`),
//! and in addition every TX target is a plain `TX:key` (no whole `TX`,
//! no `/regex/`), every macro names its key, every `setvar` key is a
//! literal, and no link captures (`capture` writes `TX:0`-`TX:9`
//! depending on the value). A segment with a rule that does not qualify
//! ends before it.

use crate::eval::StoreKey;
use crate::parser::{Phase, Selector, Template, TemplatePart, Variable};

use super::operator::{Arg, CompiledOp};
use super::pure::rule_pure;
use super::{CompiledRule, Entry};

/// Segments with fewer rules are not worth the look-up (a thread-local read and a
/// comparison of their keys' values).
const MIN_RULES: usize = 3;

/// No segment starts at this entry.
const NONE: u32 = u32::MAX;

/// One segment: `[start, end)` of its phase's program, and the TX keys its
/// rules read or write.
#[derive(Debug)]
pub(crate) struct Segment {
    pub end: usize,
    /// Every key a rule of the segment reads or writes, each once.
    pub keys: Box<[StoreKey]>,
    /// Which of `keys` some `setvar` of the segment writes.
    pub written: Box<[bool]>,
    /// The ids of the segment's rules whose disruptive action is not
    /// `pass`.
    pub disruptive: Box<[u64]>,
}

/// The segments of every phase, with the entries they start at.
#[derive(Debug, Default)]
pub(crate) struct Segments {
    /// Per phase (index `number - 1`), per entry: the segment starting
    /// there, or `NONE`. Empty for phases without segments.
    starts: [Vec<u32>; 5],
    pub list: Vec<Segment>,
}

impl Segments {
    /// Finds the segments of every phase.
    pub fn find(
        phases: &[Vec<Entry>; 5],
        rules: &[CompiledRule],
        skip_targets: &[Vec<u32>; 5],
    ) -> Segments {
        let mut found = Segments::default();
        for phase in Phase::ALL {
            let n = phase.number() as usize - 1;
            let program = &phases[n];
            let pure: Vec<bool> = program
                .iter()
                .map(|e| match e {
                    Entry::Rule(r) => rule_keys(&rules[*r]).is_some(),
                    Entry::Marker(_) => true,
                })
                .collect();
            let mut starts = vec![NONE; program.len()];
            let mut any = false;
            for (start, end) in runs(&pure, &skip_targets[n]) {
                let count = program[start..end]
                    .iter()
                    .filter(|e| matches!(e, Entry::Rule(_)))
                    .count();
                if count < MIN_RULES {
                    continue;
                }
                starts[start] = found.list.len() as u32;
                found.list.push(segment(program, rules, start, end));
                any = true;
            }
            if any {
                found.starts[n] = starts;
            }
        }
        found
    }

    /// Per entry of `phase`'s program, the segment starting there
    /// (`u32::MAX`: none); empty when the phase has none.
    pub fn starts(&self, phase: Phase) -> &[u32] {
        &self.starts[phase.number() as usize - 1]
    }
}

/// The runs of entries that `fits`, as `(start, end)`: one from where each
/// run starts, and one from each entry inside a run that a jump lands on
/// (`jump_targets`), each to the end of its run. The loop reaches an entry
/// from something else than the entry before it only at those starts.
pub(super) fn runs(fits: &[bool], jump_targets: &[u32]) -> Vec<(usize, usize)> {
    (0..fits.len())
        .filter(|&start| {
            let run_starts = start == 0 || !fits[start - 1];
            let jumped_to = jump_targets.iter().any(|t| *t as usize == start);
            fits[start] && (run_starts || jumped_to)
        })
        .map(|start| {
            let end = (start..fits.len())
                .find(|i| !fits[*i])
                .unwrap_or(fits.len());
            (start, end)
        })
        .collect()
}

/// The segment `[start, end)`: its keys, deduplicated.
fn segment(program: &[Entry], rules: &[CompiledRule], start: usize, end: usize) -> Segment {
    let mut keys: Vec<StoreKey> = Vec::new();
    let mut written: Vec<bool> = Vec::new();
    let mut add = |key: &StoreKey, write: bool| match keys.iter().position(|k| k == key) {
        Some(at) => written[at] |= write,
        None => {
            keys.push(key.clone());
            written.push(write);
        }
    };
    let mut disruptive = Vec::new();
    for entry in &program[start..end] {
        let Entry::Rule(r) = entry else { continue };
        if rules[*r].disruptive != super::Disruptive::Pass {
            disruptive.push(rules[*r].id);
        }
        for link in rules[*r].links() {
            for key in link_reads(link).into_iter().flatten() {
                add(&key, false);
            }
            for effect in &link.effects {
                if let Some(key) = &effect.key {
                    add(key, true);
                }
            }
        }
    }
    Segment {
        end,
        keys: keys.into_boxed_slice(),
        written: written.into_boxed_slice(),
        disruptive: disruptive.into_boxed_slice(),
    }
}

/// The TX keys a rule reads or writes, when it qualifies (see the module
/// documentation); `None` otherwise.
fn rule_keys(rule: &CompiledRule) -> Option<Vec<StoreKey>> {
    if !rule_pure(rule) {
        return None;
    }
    let mut keys = Vec::new();
    for link in rule.links() {
        if link.capture {
            return None;
        }
        keys.extend(link_reads(link)?);
        for effect in &link.effects {
            // Pure: every effect is a `setvar` on TX; its key must be a
            // literal (made at load as `effect.key`).
            keys.push(effect.key.clone()?);
        }
    }
    Some(keys)
}

/// The TX keys a link reads: its targets, and the macros of its operator
/// argument, `msg`, `logdata` and `setvar` values. `None` when one of
/// them is not a plain key.
fn link_reads(link: &CompiledRule) -> Option<Vec<StoreKey>> {
    let mut keys = Vec::new();
    for target in link.targets.iter().chain(&link.exclusions) {
        match (&target.variable, &target.selector) {
            (Variable::Tx, Some(Selector::Key(k))) => keys.push(StoreKey::new(k)),
            _ => return None,
        }
    }
    let mut templates: Vec<&Template> = Vec::new();
    if let Some(t) = operator_template(&link.operator) {
        templates.push(t);
    }
    templates.extend(link.meta.msg.as_ref());
    templates.extend(link.meta.logdata.as_ref());
    for effect in &link.effects {
        if let crate::parser::Action::SetVar(sv) = &effect.action {
            templates.push(&sv.var.key);
            if let crate::parser::SetVarOp::Set(t)
            | crate::parser::SetVarOp::Add(t)
            | crate::parser::SetVarOp::Sub(t) = &sv.op
            {
                templates.push(t);
            }
        }
    }
    for t in templates {
        for part in t.parts() {
            if let TemplatePart::Macro(m) = part {
                keys.push(m.stored.clone()?);
            }
        }
    }
    Some(keys)
}

/// The template of an operator argument with macros.
fn operator_template(op: &CompiledOp) -> Option<&Template> {
    match op {
        CompiledOp::RxMacro(t) => Some(t),
        CompiledOp::StrEq(Arg::Macro(t))
        | CompiledOp::Contains(Arg::Macro(t))
        | CompiledOp::ContainsWord(Arg::Macro(t))
        | CompiledOp::BeginsWith(Arg::Macro(t))
        | CompiledOp::EndsWith(Arg::Macro(t))
        | CompiledOp::Within(Arg::Macro(t))
        | CompiledOp::Compare(_, Arg::Macro(t)) => Some(t),
        _ => None,
    }
}
