//! The outcome of a segment of pure rules (see `compile::segments`),
//! remembered by the rule set (per worker thread) and applied to a later transaction that
//! reaches the segment with the same values under the segment's TX keys,
//! instead of evaluating its rules again.
//!
//! Why this is exact. Every rule of a segment reads nothing but the TX
//! keys listed for it (its targets are `TX:key`, its macros `%{tx.key}`),
//! the rule definitions and the transaction's `ctl` overrides, and writes
//! nothing but the listed keys (literal `setvar` keys, no `capture`), the
//! list of matched rules, the highest severity, `MATCHED_VAR(S)` and the
//! flow of the phase (see `compile::pure`). An outcome is only used with
//! the same `ctl` removals in force as when it was made and the same
//! engine mode, so a
//! transaction that reaches the segment's first entry with the same
//! values under its keys evaluates every rule of it to the same result,
//! in the same order, with the same jumps, as the one that made the
//! outcome. What the evaluation changed is then applied: the written keys
//! get their values (all of them have a slot in TX, so the store's order
//! of keys does not depend on when they were written), the matched rules
//! are appended, the highest severity is the minimum of both,
//! `MATCHED_VAR` is the outcome's when a rule of the segment set it,
//! `MATCHED_VARS` is what the segment's last evaluated rule left (each
//! rule clears it first) when some rule was evaluated (a `ctl` may have
//! removed them all),
//! and the loop resumes where the evaluation left the segment. An
//! evaluation that stopped the phase or in which a rule with a disruptive
//! action other than `pass` matched is not remembered. With the
//! shortcuts off (`RuleSet::set_prefilter(false)`) segments are evaluated
//! as usual, which the equivalence tests compare against.

use std::cell::RefCell;
use std::sync::Arc;

use crate::compile::ctl_tags::CtlTag;
use crate::compile::segments::Segment;
use crate::parser::{EngineMode, IdRange, Phase, Target};

use super::data::{Bytes, Coll};
use super::{MatchedRule, TargetScope, Transaction};

/// What evaluating a segment did, and from which values of its keys.
pub(crate) struct Outcome {
    engine: EngineMode,
    /// The `ctl` removals in force (CRS's 941010 removes a target of the
    /// XSS rules in every transaction).
    removed: Removals,
    /// The values of the segment's keys when it was evaluated.
    before: Box<[Option<Bytes>]>,
    /// The keys whose values the evaluation changed (index into the
    /// segment's keys), with their new values (`None`: removed).
    writes: Box<[(u32, Option<Bytes>)]>,
    matched: Box<[MatchedRule]>,
    highest_severity: u8,
    matched_var: Option<(Arc<str>, Bytes)>,
    /// What the last evaluated rule left in `MATCHED_VARS` (`None`: no
    /// rule was evaluated).
    matched_vars: Option<Coll>,
    resume: usize,
}

/// `Overrides::removed_ids`, `removed_tags` and `removed_targets`.
#[derive(PartialEq, Eq)]
struct Removals {
    ids: Vec<IdRange>,
    tags: Vec<CtlTag>,
    targets: Vec<(TargetScope, Vec<Target>)>,
}

/// The latest outcome of every segment of a rule set, per worker thread:
/// read by every transaction, so not behind a lock that the threads
/// would share (as the value memo, see `memo`).
#[derive(Default)]
pub(crate) struct SegmentMemos {
    count: usize,
    locals: thread_local::ThreadLocal<RefCell<Outcomes>>,
}

/// One thread's latest outcome per segment.
type Outcomes = Box<[Option<Arc<Outcome>>]>;

impl std::fmt::Debug for SegmentMemos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SegmentMemos({})", self.count)
    }
}

impl SegmentMemos {
    pub fn new(count: usize) -> SegmentMemos {
        SegmentMemos {
            count,
            locals: thread_local::ThreadLocal::new(),
        }
    }

    /// This thread's outcomes.
    fn local(&self) -> &RefCell<Outcomes> {
        self.locals
            .get_or(|| RefCell::new((0..self.count).map(|_| None).collect()))
    }

    fn get(&self, id: usize) -> Option<Arc<Outcome>> {
        self.local().borrow().get(id)?.clone()
    }

    fn set(&self, id: usize, outcome: Outcome) {
        if let Some(slot) = self.local().borrow_mut().get_mut(id) {
            *slot = Some(Arc::new(outcome));
        }
    }
}

/// Same value, or both absent.
fn same(a: Option<&Bytes>, b: Option<&Bytes>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
        _ => false,
    }
}

impl<'r> Transaction<'r> {
    /// Runs segment `id`, which starts at entry `start` of `phase`: from
    /// its remembered outcome when TX holds the values it was made from,
    /// else by evaluating it (and remembering what it did). Returns what
    /// `run_entries` would: where the loop goes on, or `None` when the
    /// phase stopped.
    pub(super) fn run_segment(&mut self, phase: Phase, start: usize, id: usize) -> Option<usize> {
        let rules = self.rules;
        let seg = &rules.segments().list[id];
        if let Some(outcome) = rules.segment_memos().get(id) {
            if self.reached_as(seg, &outcome) {
                return Some(self.apply_outcome(seg, &outcome));
            }
        }
        self.evaluate_and_keep(phase, start, seg, id)
    }

    /// Evaluates `[start, end)` with the plain rule loop.
    fn run_inside(&mut self, phase: Phase, start: usize, end: usize) -> Option<usize> {
        self.in_segment = true;
        let next = self.run_entries(phase, start, end);
        self.in_segment = false;
        next
    }

    /// Whether the transaction is in the state `outcome` was made from.
    fn reached_as(&self, seg: &Segment, outcome: &Outcome) -> bool {
        let (ov, removed) = (&self.ov, &outcome.removed);
        outcome.engine == ov.engine
            && removed.ids == ov.removed_ids
            && removed.tags == ov.removed_tags
            && removed.targets == ov.removed_targets
            && seg
                .keys
                .iter()
                .zip(outcome.before.iter())
                .all(|(key, before)| same(self.tx.get_key(key), before.as_ref()))
    }

    fn apply_outcome(&mut self, seg: &Segment, outcome: &Outcome) -> usize {
        for (at, value) in outcome.writes.iter() {
            let key = &seg.keys[*at as usize];
            match value {
                Some(value) => self.tx.set_key(key, value.clone()),
                None => self.tx.remove_key(key),
            }
        }
        self.matched.extend(outcome.matched.iter().cloned());
        self.highest_severity = self.highest_severity.min(outcome.highest_severity);
        if let Some(var) = &outcome.matched_var {
            self.matched_var = Some(var.clone());
        }
        if let Some(vars) = &outcome.matched_vars {
            self.matched_vars.clone_from(vars);
        }
        self.current = None;
        outcome.resume
    }

    /// Evaluates the segment and remembers its outcome when it may be
    /// reused (see the module documentation).
    fn evaluate_and_keep(
        &mut self,
        phase: Phase,
        start: usize,
        seg: &Segment,
        id: usize,
    ) -> Option<usize> {
        let before: Box<[Option<Bytes>]> = seg
            .keys
            .iter()
            .map(|k| self.tx.get_key(k).cloned())
            .collect();
        let matched_from = self.matched.len();
        let severity = std::mem::replace(&mut self.highest_severity, 255);
        let matched_var = self.matched_var.take();
        // Every evaluated rule empties `MATCHED_VARS` first (it is not
        // empty here): the marker is still there when none was (all
        // removed by `ctl`s), and the variable is then left as it was.
        // No rule can see the difference today (each empties it before
        // its links run), but the state stays the one evaluation leaves.
        let marker: Arc<str> = Arc::from("");
        let matched_vars = std::mem::take(&mut self.matched_vars);
        self.matched_vars
            .push_shared(marker.clone(), Bytes::from(&b""[..]));
        let next = self.run_inside(phase, start, seg.end);
        let untouched = self
            .matched_vars
            .entries
            .first()
            .is_some_and(|(name, _)| Arc::ptr_eq(name, &marker));
        let run_vars = match untouched {
            true => {
                self.matched_vars = matched_vars;
                None
            }
            false => Some(self.matched_vars.clone()),
        };
        let run_severity = self.highest_severity;
        self.highest_severity = severity.min(run_severity);
        let run_var = self.matched_var.clone();
        if run_var.is_none() {
            self.matched_var = matched_var;
        }
        let resume = next?;
        if !self.keepable(seg, matched_from) {
            return Some(resume);
        }
        let writes = seg
            .keys
            .iter()
            .enumerate()
            .filter(|(at, _)| seg.written[*at])
            .filter_map(|(at, key)| {
                let now = self.tx.get_key(key);
                (!same(now, before[at].as_ref())).then(|| (at as u32, now.cloned()))
            })
            .collect();
        let ov = &self.ov;
        let outcome = Outcome {
            engine: ov.engine,
            removed: Removals {
                ids: ov.removed_ids.clone(),
                tags: ov.removed_tags.clone(),
                targets: ov.removed_targets.clone(),
            },
            before,
            writes,
            matched: self.matched[matched_from..].into(),
            highest_severity: run_severity,
            matched_var: run_var,
            matched_vars: run_vars,
            resume,
        };
        self.rules.segment_memos().set(id, outcome);
        Some(resume)
    }

    /// An evaluation may be reused when no rule with a disruptive action
    /// other than `pass` matched (it acts differently in another engine
    /// mode, and may have stopped the phase) and every written key has a
    /// slot in TX.
    fn keepable(&self, seg: &Segment, matched_from: usize) -> bool {
        let disrupts = self.matched[matched_from..]
            .iter()
            .any(|m| seg.disruptive.contains(&m.id));
        let slotted = seg
            .keys
            .iter()
            .zip(seg.written.iter())
            .all(|(key, written)| !written || self.tx.index().has_slot(key));
        !disrupts && slotted
    }
}

#[cfg(test)]
mod tests;
