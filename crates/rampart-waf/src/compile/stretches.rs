//! Stretches: runs of a phase's program whose rules the value memo may
//! rule out all together (see `eval::engine::stretches` for how a
//! transaction uses them).
//!
//! A rule whose first link has a verdict plan (`compile::verdicts`) finds
//! nothing in a request when its first link finds nothing in any of the
//! values it tests, and each of those tests is a pure function of the
//! value's bytes. A run of such rules (markers between them are free)
//! therefore changes nothing when every one of them finds nothing: no
//! action runs and the loop goes on to the next entry.
//!
//! Each stretch gets verdict bits of its own, one per *group*: a variable
//! read whole (or through a `/regex/` selector), or a variable under one
//! plain key (`REQUEST_HEADERS:User-Agent`). A group's bit on a value
//! says "every rule of the stretch that reads this group tested these
//! bytes and found nothing". The engine notes it after a stretch was
//! evaluated without any link matching, on the values every reader
//! tested; body-processor variables (`XML`, `FILES` …) get no bit and
//! must be empty, as in the plans.
//!
//! A stretch starts where a run starts and at every `skipAfter` target
//! inside one (the loop may arrive there by a jump), and ends where the
//! run ends.

use crate::parser::{Selector, Variable};

use super::rule::{CompiledRule, VerdictTarget};
use super::Entry;

/// Shorter runs are not worth the check: one rule's own verdict plan
/// costs as much.
const MIN_RULES: usize = 2;

/// No stretch starts at this entry.
const NONE: u32 = u32::MAX;

/// The values one bit of a stretch is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub var: Variable,
    /// `Some`: only the values under this key (ASCII case ignored), for
    /// rules that read the variable under that plain key alone.
    pub key: Option<Box<str>>,
    /// `None` for a body-processor variable, which must be empty.
    pub bit: Option<u32>,
    /// The stretch's rules (indices into the rule set) that read the
    /// group.
    pub readers: Box<[usize]>,
    /// Every reader tests every value of the group (no selector other
    /// than the group's key, no exclusion of the variable): noting needs
    /// no look at the keys unless a `ctl` removed targets.
    pub plain: bool,
}

/// One stretch: `[start, end)` of its phase's program.
#[derive(Debug)]
pub(crate) struct Stretch {
    pub end: usize,
    /// The rules of the stretch (indices into the rule set).
    pub rules: Box<[usize]>,
    /// The groups, those whose values change most often first.
    pub groups: Box<[Group]>,
}

/// The stretches of every phase, with the entries they start at.
#[derive(Debug, Default)]
pub(crate) struct Stretches {
    /// Per phase (index `number - 1`), per entry: the stretch starting
    /// there, or `NONE`. Empty for phases without stretches.
    starts: [Vec<u32>; 5],
    pub list: Vec<Stretch>,
}

impl Stretches {
    /// Finds the stretches of every phase and gives their groups verdict
    /// bits from `next_bit` on; the stretches and the number of bits
    /// after theirs.
    pub fn find(
        phases: &[Vec<Entry>; 5],
        rules: &[CompiledRule],
        skip_targets: &[Vec<u32>; 5],
        mut next_bit: u32,
    ) -> (Stretches, u32) {
        let mut found = Stretches::default();
        for (n, program) in phases.iter().enumerate() {
            let fits: Vec<bool> = program
                .iter()
                .map(|e| match e {
                    Entry::Rule(r) => fits(&rules[*r]),
                    Entry::Marker(_) => true,
                })
                .collect();
            let mut starts = vec![NONE; program.len()];
            for (start, end) in super::segments::runs(&fits, &skip_targets[n]) {
                let members: Vec<usize> = program[start..end]
                    .iter()
                    .filter_map(|e| match e {
                        Entry::Rule(r) => Some(*r),
                        Entry::Marker(_) => None,
                    })
                    .collect();
                if members.len() < MIN_RULES {
                    continue;
                }
                let groups = groups(rules, &members, &mut next_bit);
                starts[start] = found.list.len() as u32;
                found.list.push(Stretch {
                    end,
                    rules: members.into_boxed_slice(),
                    groups,
                });
            }
            if starts.iter().any(|s| *s != NONE) {
                found.starts[n] = starts;
            }
        }
        (found, next_bit)
    }

    /// Per entry of the phase (`number - 1`), the stretch starting there
    /// (`u32::MAX`: none); empty when the phase has none.
    pub fn starts(&self, phase_index: usize) -> &[u32] {
        &self.starts[phase_index]
    }
}

/// Whether a rule may be part of a stretch: its first link has a verdict
/// plan (so finding nothing is a pure function of the values it tests).
fn fits(rule: &CompiledRule) -> bool {
    rule.verdict_bit.is_some() && rule.verdict_plan.is_some() && rule.tx_compare.is_none()
}

/// The groups of the stretch of `members`, each with its readers and a
/// new bit (none for body-processor variables).
fn groups(rules: &[CompiledRule], members: &[usize], next_bit: &mut u32) -> Box<[Group]> {
    let mut groups: Vec<Group> = Vec::new();
    for &r in members {
        let rule = &rules[r];
        let plan = rule.verdict_plan.as_deref().unwrap_or_default();
        for target in plan {
            let (var, key, bit) = match *target {
                VerdictTarget::Empty(var) => (var, None, false),
                VerdictTarget::Values(var) => (var, None, true),
                VerdictTarget::Keyed(var, index) => (var, plain_key(rule, index), true),
            };
            let at = groups.iter().position(|g| g.var == var && g.key == key);
            let group = match at {
                Some(at) => &mut groups[at],
                None => {
                    let bit = bit.then(|| {
                        *next_bit += 1;
                        *next_bit - 1
                    });
                    groups.push(Group {
                        var,
                        key,
                        bit,
                        readers: Box::new([]),
                        plain: true,
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            let mut readers = group.readers.to_vec();
            readers.push(r);
            group.readers = readers.into_boxed_slice();
            group.plain &= reads_plainly(rule, var, group.key.is_some());
        }
    }
    groups.sort_by_key(|g| (g.bit.is_none(), super::verdicts::volatility_rank(g.var)));
    groups.into_boxed_slice()
}

/// The key of a plain key selector, lower-cased (keys are compared
/// ignoring ASCII case); `None` for a scalar, which ignores selectors.
fn plain_key(rule: &CompiledRule, index: u32) -> Option<Box<str>> {
    let target = rule.targets.get(index as usize)?;
    match &target.selector {
        Some(Selector::Key(key)) if crate::eval::is_collection(target.variable) => {
            Some(key.to_ascii_lowercase().into_boxed_str())
        }
        _ => None,
    }
}

/// Whether `rule` tests every value of its group of `var`: every target
/// of `var` reads it whole (or, for a keyed group, under its key) and no
/// exclusion names `var`.
fn reads_plainly(rule: &CompiledRule, var: Variable, keyed: bool) -> bool {
    let no_exclusion = !rule.exclusions.iter().any(|ex| ex.variable == var);
    let selectors_plain = rule
        .targets
        .iter()
        .filter(|t| t.variable == var)
        .all(|t| keyed || t.selector.is_none() || !crate::eval::is_collection(var));
    no_exclusion && selectors_plain
}

#[cfg(test)]
mod tests;
