//! The phase loop: runs each phase's program (rules and markers), follows
//! `skip` / `skipAfter`, evaluates chains link by link, runs actions and
//! turns disruptive actions into an [`Intervention`].
//!
//! Non-disruptive actions (`setvar`, `ctl` …) run once per matched value,
//! as soon as that value matched — before later chain links are evaluated,
//! because CRS chains read what earlier links wrote (`tx.header_name_*`).

use std::borrow::Cow;

use crate::compile::empty::EmptyTarget;
use crate::compile::fast::{compare, to_int, TxCompare};
use crate::compile::prefilter::{slot_set, Prefilter};
use crate::compile::{CompiledRule, Disruptive, Effect, Entry, RejectTarget};
use crate::parser::{Action, AllowScope, BodyProcessor, EngineMode, Phase, Variable};
use crate::transform::Transformation;

use super::cache::Known;
use super::data::Bytes;
use super::vars::{Shared, Value};
use super::{Intervention, MatchedRule, Transaction};

mod stretches;
#[cfg(test)]
mod test_support;
mod unions;
mod verdicts;

/// Values shorter than this are not remembered by the transformation step
/// cache when a step leaves them unchanged.
const SHORT_VALUE: usize = 256;

/// `compile::PHASE_DEPENDENT` as indices (the keys of the summaries).
const PHASE_DEPENDENT_VARS: [usize; 2] = [
    crate::compile::PHASE_DEPENDENT[0] as usize,
    crate::compile::PHASE_DEPENDENT[1] as usize,
];

/// Entries of [`TxMemo`].
const TX_MEMO_SLOTS: usize = 4;

/// Values of TX keys read by plans, each with the store generation it was
/// read at (see `Transaction::tx_planned`): (key address, generation,
/// value, the value as a number). A direct-mapped table: a collision only
/// means a lookup.
#[derive(Default)]
pub(super) struct TxMemo {
    entries: [(usize, u64, Option<Bytes>, i64); TX_MEMO_SLOTS],
}

/// How a rule's evaluation changes the flow of its phase.
enum Flow {
    Next,
    Skip(u32),
    /// Jump past the rule's `skipAfter` marker.
    SkipAfter,
    /// Stop the phase (a disruptive action or `allow:phase`).
    Stop,
}

impl<'r> Transaction<'r> {
    /// Runs every phase after the last one run, up to and including `last`.
    pub(super) fn run_up_to(&mut self, last: Phase) {
        if self.phase_done >= last.number() {
            return;
        }
        // This thread's value memo, for this call only: another
        // transaction on the thread may run before the next one.
        self.cache.memo = self.rules.take_memo();
        for n in (self.phase_done + 1)..=last.number() {
            self.phase_done = n;
            // Which values are visible depends on the phase for the bodies
            // alone (`scalar_shared`); every other request-side variable
            // changes only through a setter or the body processor, which
            // clear all unions (`invalidate_scalars`).
            self.cache
                .forget_unions_of(&PHASE_DEPENDENT_VARS, self.rules.phase_unions());
            let phase = phase_of(n);
            // An uninspected body is dropped; when there is none (the
            // usual case) nothing changes, and the stable scalars, unions
            // and value lists are kept rather than rebuilt for phases 4-5.
            if phase == Phase::ResponseBody
                && !self.res.body.is_empty()
                && !self.response_body_inspected()
            {
                self.res.body.clear();
                self.invalidate_scalars();
            }
            self.run_phase(phase);
        }
        if let Some(memo) = self.cache.memo.take() {
            self.rules.give_memo(memo);
        }
    }

    fn run_phase(&mut self, phase: Phase) {
        if self.ov.engine == EngineMode::Off {
            return;
        }
        let blocked = self.intervention.is_some();
        let allowed = phase.number() <= self.allowed_through;
        if phase != Phase::Logging && (blocked || allowed) {
            return;
        }
        let program_len = self.rules.phase(phase).len();
        // The first pure run of phase 1 (see `snapshot`): the entries
        // before it are evaluated, then its outcome is applied when the
        // transaction is in the state it was computed from.
        let init_run = match phase {
            Phase::RequestHeaders => self.rules.init_run(),
            _ => None,
        };
        let Some(run) = init_run else {
            self.run_entries(phase, 0, program_len);
            return;
        };
        let Some(mut i) = self.run_entries(phase, 0, run.start) else {
            return;
        };
        if i == run.start {
            if let Some(resume) = self.apply_init_run(run) {
                i = resume;
            }
        }
        self.run_entries(phase, i, program_len);
    }

    /// Runs the phase's program from entry `i` until an entry at or past
    /// `until` is reached (its index) or the phase stops (`None`: a
    /// disruptive action, `allow`, or the engine turned off). Not inlined:
    /// one copy of the rule loop, with the rule and link evaluation
    /// inlined into it.
    #[inline(never)]
    pub(super) fn run_entries(
        &mut self,
        phase: Phase,
        mut i: usize,
        until: usize,
    ) -> Option<usize> {
        let program = self.rules.phase(phase);
        // Segments of pure rules (see `segments`); never
        // within the evaluation of one, nor in a partial run of a phase.
        let segments = match self.in_segment || until != program.len() {
            true => &[][..],
            false => self.rules.segment_starts(phase),
        };
        let stretches = self.rules.stretch_starts(phase);
        // The stretch evaluated from its start, with the count of matched
        // links then: unchanged at its end, it matched nothing.
        let mut pending: Option<(usize, u64)> = None;
        while i < until {
            if pending.is_some_and(|(id, _)| i >= self.rules.stretches().list[id].end) {
                self.end_stretch(pending.take(), i);
            }
            if let Some(&id) = stretches.get(i).filter(|id| **id != u32::MAX) {
                let stretch = &self.rules.stretches().list[id as usize];
                if stretch.end <= until {
                    match self.look_at_stretch(id as usize, stretch) {
                        stretches::Look::RuledOut => {
                            i = stretch.end;
                            continue;
                        }
                        stretches::Look::Missed => {
                            pending = Some((id as usize, self.links_matched))
                        }
                        stretches::Look::Unchecked => {}
                    }
                }
            }
            if let Some(&id) = segments.get(i).filter(|id| **id != u32::MAX) {
                match self.run_segment(phase, i, id as usize) {
                    Some(next) => {
                        i = next;
                        continue;
                    }
                    None => return None,
                }
            }
            let Entry::Rule(index) = &program[i] else {
                i += 1;
                continue;
            };
            let rule = &self.rules.rules()[*index];
            i += 1;
            if self.is_removed(rule) {
                continue;
            }
            match self.eval_rule(rule) {
                Flow::Next => {}
                Flow::Stop => return None,
                Flow::Skip(n) => i = skip_rules(program, i, n),
                Flow::SkipAfter => i = self.rules.skip_after_target(phase, i - 1),
            }
            if self.ov.engine == EngineMode::Off {
                return None;
            }
        }
        self.end_stretch(pending, i);
        Some(i)
    }

    /// Notes the bits of the stretch evaluated from its start (`pending`:
    /// its id and the count of matched links then) when the loop reached
    /// its end with no link matched on the way.
    fn end_stretch(&mut self, pending: Option<(usize, u64)>, i: usize) {
        let Some((id, matched)) = pending else {
            return;
        };
        let stretch = &self.rules.stretches().list[id];
        if i == stretch.end && matched == self.links_matched {
            self.note_stretch(stretch);
        }
    }

    fn is_removed(&self, rule: &CompiledRule) -> bool {
        self.ov.removed_ids.iter().any(|r| r.contains(rule.id))
            || self.ov.removed_tags.iter().any(|t| t.applies(rule))
    }

    /// Evaluates a rule and its chain; runs its actions on a full match.
    /// Inlined into the phase loop: it runs for every rule, and the call
    /// costs ~2 % of a benign GET's instructions (callgrind).
    #[inline(always)]
    fn eval_rule(&mut self, rule: &'r CompiledRule) -> Flow {
        self.current = Some(rule);
        // Cleared, not replaced: keeps the buffer for the next rule. Most
        // rules matched nothing before, and `clear` on an empty vector still
        // calls the out-of-line slice drop (~15 instructions per rule).
        if !self.matched_vars.entries.is_empty() {
            self.matched_vars.entries.clear();
        }
        for link in rule.links() {
            if !self.eval_link(rule, link) {
                self.current = None;
                return Flow::Next;
            }
            self.links_matched += 1;
        }
        let flow = self.full_match(rule);
        self.current = None;
        flow
    }

    /// Evaluates one link; true when some value matched. Inlined into the
    /// phase loop with `eval_rule` (left to the compiler it was outlined,
    /// and a benign GET ran ~1 % more instructions).
    #[inline(always)]
    fn eval_link(&mut self, head: &'r CompiledRule, link: &'r CompiledRule) -> bool {
        if link.is_action_only() {
            let hit = self.operator_matches(link, &[]);
            if hit {
                self.run_effects(link);
            }
            return hit;
        }
        if let Some(plan) = &link.tx_compare {
            // Unless a run-time target exclusion could name this TX key.
            if !self.excludes_at_run_time(head, Variable::Tx) {
                return self.eval_tx_compare(link, plan);
            }
        }
        if self.empty_misses(link) || self.link_rejected(link) || self.verdicts_reject(head, link) {
            return false;
        }
        let taken = self.take_values(head, link);
        let mut any = false;
        for value in taken.values() {
            if let Some(matched) = self.test_value(link, &value.value) {
                any = true;
                self.record_match(value, matched);
                self.run_effects(link);
            }
        }
        self.put_values(taken);
        any
    }

    /// A `[&]TX:key "@cmp N"` link without building a value list: what the
    /// general path does for that shape, with the key and number prepared.
    fn eval_tx_compare(&mut self, link: &CompiledRule, plan: &TxCompare) -> bool {
        let (stored, number) = self.tx_planned(&plan.key);
        let value: Bytes = match (plan.count, stored) {
            (true, found) => {
                let n = i64::from(found.is_some());
                if compare(plan.cmp, n, plan.rhs) == link.negated {
                    return false;
                }
                Bytes::from(if found.is_some() {
                    &b"1"[..]
                } else {
                    &b"0"[..]
                })
            }
            // No value: nothing for the operator to inspect, negated or not.
            (false, None) => return false,
            (false, Some(v)) => {
                if compare(plan.cmp, number, plan.rhs) == link.negated {
                    return false;
                }
                v.clone()
            }
        };
        // A quiet plan's rule reads nothing after this match, and the next
        // rule clears `MATCHED_VARS` before reading it: the entry could
        // never be seen (see `TxCompare::quiet`). `MATCHED_VAR` outlives
        // the rule, so it is always set.
        if !plan.quiet {
            self.matched_vars
                .push_shared(plan.name.clone(), value.clone());
        }
        self.matched_var = Some((plan.name.clone(), value));
        self.run_effects(link);
        true
    }

    /// The TX value under the (lower-case, interned) key of a plan. Paranoia
    /// gates read the same key again and again while TX rarely changes in
    /// between: the value is remembered with the store's generation, and
    /// is looked up again only after a write to TX.
    /// The number (`to_int`) is remembered with it: the gates compare the
    /// same value again and again.
    fn tx_planned(&mut self, key: &super::StoreKey) -> (Option<&Bytes>, i64) {
        let id = std::sync::Arc::as_ptr(key.name()) as *const u8 as usize;
        let generation = self.tx.generation();
        let slot = &mut self.tx_memo.entries[(id >> 4) % TX_MEMO_SLOTS];
        if slot.0 != id || slot.1 != generation {
            let value = self.tx.get_key(key).cloned();
            let number = value.as_deref().map_or(0, to_int);
            *slot = (id, generation, value, number);
        }
        (slot.2.as_ref(), slot.3)
    }

    /// Transforms `raw` and runs the operator; the matched (transformed)
    /// value on success. With `multiMatch` every intermediate form is tried.
    fn test_value(&mut self, link: &CompiledRule, raw: &Shared) -> Option<Shared> {
        // One look at a short value's record answers most links: whether
        // their chains change the value, and its bits once it is scanned.
        // (The general path below asks the same record the same questions,
        // one lookup and one clone of the value per question.)
        let asks = link.prefilter.is_some()
            || !link.transforms.is_empty()
            || link.multi_match
            || link.verdict_bit.is_some();
        let known = if asks && raw.len() < SHORT_VALUE {
            self.cache.known(raw)
        } else {
            None
        };
        let (Some(bit), Some(known)) = (link.verdict_bit, known) else {
            return self.test_known(link, raw, known);
        };
        // The value memo: this link found nothing in these bytes before
        // (in this transaction or an earlier one, see `eval::memo`).
        if self.cache.memo_rejects(&known, bit) {
            return None;
        }
        // Or it matched them: without `capture`, a match writes nothing,
        // and without `multiMatch` what matched is the transformed value.
        let remembers_matches = !link.capture && !link.multi_match;
        if remembers_matches && self.cache.memo_matches(&known, bit) {
            return Some(self.transformed(link, raw));
        }
        let found = self.test_known(link, raw, Some(known));
        match found {
            None => self.cache.memo_note_rejected(&known, bit),
            Some(_) if remembers_matches => self.cache.memo_note_matched(&known, bit),
            Some(_) => {}
        }
        found
    }

    /// `test_value` once the value's record is read (`None`: the link
    /// needs none, the value is long or its slot is taken).
    #[inline(always)]
    fn test_known(
        &mut self,
        link: &CompiledRule,
        raw: &Shared,
        known: Option<Known>,
    ) -> Option<Shared> {
        if link.multi_match {
            return self.test_every_form(link, raw, known);
        }
        if let Some(slot) = link.prefilter {
            let recorded = known.and_then(|known| self.recorded_slot(link, &known, slot));
            let may = match recorded {
                Some(set) => set,
                None => self.may_match(link, slot, raw),
            };
            if !may {
                return link.negated.then(|| self.transformed(link, raw));
            }
        }
        let unchanged = link.transforms.is_empty()
            || known
                .is_some_and(|known| self.rules.chain_keeps_all(link.chain_key, &known.present));
        if unchanged {
            return self.operator_matches_shared(link, raw).then(|| raw.clone());
        }
        let value = self.transformed(link, raw);
        self.operator_matches_shared(link, &value).then_some(value)
    }

    /// What `may_match` answers, from the value's record alone: `None`
    /// unless the link has a prefilter, its bits chain changes none of the
    /// bytes in `known` (so its value is the raw value itself) and the
    /// raw value was scanned (its bits are those in the record).
    fn recorded_slot(&self, link: &CompiledRule, known: &Known, slot: u32) -> Option<bool> {
        let rules = self.rules;
        rules.chain_filter(link.chain_key)?;
        if !rules.chain_keeps_all(rules.bits_chain(link.chain_key), &known.present) {
            return None;
        }
        self.cache
            .known_bits(known)
            .map(|bits| slot_set(bits, slot))
    }

    /// `test_value` for a `multiMatch` link: the raw value, then every
    /// form of it the chain produces, until one matches.
    #[inline(never)]
    fn test_every_form(
        &mut self,
        link: &CompiledRule,
        raw: &Shared,
        known: Option<Known>,
    ) -> Option<Shared> {
        let recorded = known.and_then(|known| self.recorded_match_slot(link, &known));
        let first = match recorded {
            Some(set) => self.decide_match(link, raw, Some(set)),
            None => self.scanned_match(link, raw),
        };
        if first {
            return Some(raw.clone());
        }
        // Every intermediate form is `raw` itself: nothing else to try.
        let keeps = match known {
            Some(known) => self.rules.chain_keeps_all(link.chain_key, &known.present),
            None if raw.len() < SHORT_VALUE => self.chain_keeps(link.chain_key, raw),
            None => self.rules.chain_keeps(link.chain_key, raw),
        };
        if keeps {
            return None;
        }
        let mut current = raw.clone();
        let mut present = known.map(|known| known.present);
        for t in &link.transforms {
            let Some(next) = self.step_changes(t, &current, &mut present) else {
                continue;
            };
            present = None;
            if next[..] != current[..] && self.scanned_match(link, &next) {
                return Some(next);
            }
            current = next;
        }
        None
    }

    /// The operator's result on an intermediate value of `multiMatch`,
    /// using the prefilter bits only when `value` was scanned already:
    /// scanning a value that nothing else needs costs more than most of
    /// the regexes it would save. Otherwise the link's own literal check
    /// (the same literals, searched alone) may rule the value out. Either
    /// way a value without any of the slot's literals cannot match the
    /// operator (see `compile::prefilter`), so the result is `negated`.
    fn scanned_match(&mut self, link: &CompiledRule, value: &Shared) -> bool {
        let known = match (link.prefilter, self.rules.chain_filter(link.chain_key)) {
            (Some(slot), Some(_)) => self.cache.bits(value).map(|bits| slot_set(bits, slot)),
            _ => None,
        };
        self.decide_match(link, value, known)
    }

    /// What `scanned_match` finds for bits in a record: `None` unless
    /// the link has a prefilter and the record's value was scanned.
    fn recorded_match_slot(&self, link: &CompiledRule, known: &Known) -> Option<bool> {
        let slot = link.prefilter?;
        self.rules.chain_filter(link.chain_key)?;
        self.cache
            .known_bits(known)
            .map(|bits| slot_set(bits, slot))
    }

    /// `scanned_match` once the value's prefilter slot is known (`None`:
    /// the value was not scanned).
    fn decide_match(&mut self, link: &CompiledRule, value: &Shared, known: Option<bool>) -> bool {
        match known {
            Some(false) => link.negated,
            None if self.rules.literals_reject(link, value) => link.negated,
            _ => self.operator_matches(link, value),
        }
    }

    /// True when no value of the link's targets can match: a plain `@rx`
    /// (or small `@pm`) link over request-side variables whose prefilter
    /// slot is set for none of their values (the union of the values' bits
    /// is computed once per bits chain and variable). Target selectors and
    /// exclusions only narrow the values, so the union over the whole
    /// variable is enough to rule the link out without resolving its
    /// targets, transforming its values or running its operator. Which
    /// links qualify, and their union ids, is decided at load
    /// (`RejectPlan`).
    fn link_rejected(&mut self, link: &CompiledRule) -> bool {
        let Some(plan) = &link.reject_plan else {
            return false;
        };
        let rules = self.rules;
        let Some(filter) = rules.active_prefilter() else {
            return false;
        };
        let (slot, chain) = (plan.slot, plan.bits_chain);
        // `slot_set`'s word and bit, once for all targets.
        let (word, mask) = (slot as usize / 64, 1u64 << (slot % 64));
        for target in plan.targets.iter() {
            let (var, id, keyed, index) = match *target {
                RejectTarget::Empty(var) if self.empty(var) => continue,
                RejectTarget::Empty(_) => return false,
                RejectTarget::Union {
                    var,
                    id,
                    keyed,
                    index,
                } => (var, id, keyed, index),
            };
            let set = match self.cache.union_has(id, word, mask) {
                Some(set) => set,
                // `REQUEST_HEADERS:User-Agent`: without the variable's union
                // at hand, the few selected values are checked one by one
                // rather than transforming every value of the variable for
                // a union.
                None if keyed => {
                    let target = &link.targets[index as usize];
                    self.selected_may_match(filter, chain, slot, target)
                }
                None => self.union_slot_set(filter, chain, var, id, slot),
            };
            if set {
                return false;
            }
        }
        true
    }

    /// True when the link's targets are response values that are all
    /// empty (or absent) now, and its test of the empty value finds
    /// nothing (decided at load, see `compile::empty`): then it finds
    /// nothing in any of them, so nothing is resolved or tested.
    fn empty_misses(&self, link: &CompiledRule) -> bool {
        let Some(targets) = &link.empty_miss else {
            return false;
        };
        // Off with the other shortcuts: `prefilter_equivalence` then
        // compares against plain evaluation.
        if !self.rules.shortcuts_on() {
            return false;
        }
        let res = &self.res;
        targets.iter().all(|target| match target {
            EmptyTarget::Body => res.body.is_empty(),
            EmptyTarget::Header(name) => res
                .headers
                .entries
                .iter()
                .all(|(key, value)| value.is_empty() || !name.eq_ignore_ascii_case(key)),
        })
    }

    /// Body-processor variables with no values at all (only the body
    /// processor fills them): a target over them produces nothing.
    fn empty(&self, var: Variable) -> bool {
        let req = &self.req;
        match var {
            Variable::Xml => req.processor != Some(BodyProcessor::Xml),
            Variable::Files | Variable::FilesNames | Variable::FilesSizes => req.files.is_empty(),
            Variable::MultipartPartHeaders => req.multipart_part_headers.is_empty(),
            _ => false,
        }
    }

    /// Computes and remembers union `id`: the prefilter bits of every value
    /// of `var` after the transformations of `chain` (a bits chain); whether
    /// `slot` is set in it.
    fn union_slot_set(
        &mut self,
        filter: &Prefilter,
        chain: u32,
        var: Variable,
        id: u32,
        slot: u32,
    ) -> bool {
        // When the chain changes none of the variable's values (no value
        // holds a byte it acts on), the union is that of the raw values:
        // the summary's bits, shared rather than copied (most unions of a
        // request are such).
        let present = match self.cache.summary(var as usize) {
            Some((present, _)) => present,
            None => self.summarise(filter, var),
        };
        if self.rules.chain_keeps_all(chain, &present) {
            // `None` only when the summary could not be kept (the arena is
            // full): the union is then built from the values.
            if let Some(bits) = self.cache.alias_union(id, var as usize) {
                return slot_set(bits, slot);
            }
        }
        let bits = self.transformed_union(filter, chain, var);
        let set = slot_set(&bits, slot);
        self.cache.insert_union(id, &bits);
        self.union_words = bits;
        set
    }

    /// Runs `f` on the prefilter bits of `value` (one scan per value,
    /// cached).
    fn with_bits<T>(
        &mut self,
        filter: &Prefilter,
        value: &Shared,
        f: impl FnOnce(&[u64]) -> T,
    ) -> T {
        if let Some(bits) = self.cache.bits(value) {
            return f(bits);
        }
        f(self.cache.scan_bits(value, filter))
    }

    /// Whether the link's prefilter lets the raw value `raw` through: its
    /// bits after the link's bits chain (one scan per value, cached).
    fn may_match(&mut self, link: &CompiledRule, slot: u32, raw: &Shared) -> bool {
        let rules = self.rules;
        let Some(filter) = rules.chain_filter(link.chain_key) else {
            return true;
        };
        self.with_chain_bits(filter, rules.bits_chain(link.chain_key), raw, |bits| {
            slot_set(bits, slot)
        })
    }

    /// Runs `f` on the prefilter bits of `raw` after the bits chain
    /// `chain`. A short value the chain leaves as it is has them in its
    /// record once scanned: one lookup, where the general path (transform,
    /// then bits) looks the value up twice and clones it.
    fn with_chain_bits<T>(
        &mut self,
        filter: &Prefilter,
        chain: u32,
        raw: &Shared,
        f: impl FnOnce(&[u64]) -> T,
    ) -> T {
        let known = if raw.len() < SHORT_VALUE {
            self.cache.known(raw)
        } else {
            None
        };
        let Some(known) = known else {
            let value = self.transformed_by(chain, raw);
            return self.with_bits(filter, &value, f);
        };
        if self.rules.chain_keeps_all(chain, &known.present) {
            // The chain's value is `raw` itself.
            if let Some(bits) = self.cache.known_bits(&known) {
                return f(bits);
            }
            return self.with_bits(filter, raw, f);
        }
        // The value memo: the same bytes after the same chain before (no
        // transformation, no scan).
        if let Some(bits) = self.cache.memo_chain_bits(&known, chain) {
            return f(bits);
        }
        let value = self.transformed_by(chain, raw);
        let found = self.with_bits(filter, &value, f);
        self.cache.memo_note_chain_bits(&known, chain, &value);
        found
    }

    /// Applies the link's transformation chain, with a per-transaction cache
    /// keyed on the chain and the (shared) input.
    fn transformed(&mut self, link: &CompiledRule, raw: &Shared) -> Shared {
        if link.transforms.is_empty() {
            return raw.clone();
        }
        self.transformed_by(link.chain_key, raw)
    }

    fn transformed_by(&mut self, chain: u32, raw: &Shared) -> Shared {
        let rules = self.rules;
        if rules.transform_chain(chain).is_empty() {
            return raw.clone();
        }
        // A short value without any byte the chain acts on: its bytes are
        // known (one scan per value), no cache lookup.
        let short = raw.len() < SHORT_VALUE;
        let known = if short { self.cache.known(raw) } else { None };
        let mut present = known.map(|known| known.present);
        let keeps = match &present {
            Some(present) => rules.chain_keeps_all(chain, present),
            None => short && rules.chain_keeps(chain, raw),
        };
        if keeps {
            return raw.clone();
        }
        if let Some(hit) = self.cache.get(chain, raw) {
            return hit.clone();
        }
        // A value the memo knows: what the chain made of it before (the
        // same bytes give the same output).
        if let Some(out) = known.and_then(|k| self.cache.memo_chain_output(&k, chain)) {
            let out = out.clone();
            self.cache.insert(chain, raw, out.clone());
            return out;
        }
        // A long one is remembered, so that it is scanned once.
        if !short && rules.chain_keeps(chain, raw) {
            self.cache.insert(chain, raw, raw.clone());
            return raw.clone();
        }
        let mut value = raw.clone();
        for t in rules.transform_chain(chain) {
            if let Some(next) = self.step_changes(t, &value, &mut present) {
                value = next;
                present = None;
            }
        }
        if let Some(known) = known {
            self.cache.memo_note_chain_output(&known, chain, &value);
        }
        self.cache.insert(chain, raw, value.clone());
        value
    }

    /// `RuleSet::chain_keeps` on the remembered bytes of `value` (same
    /// answer: the chain's triggers meet none of the value's bytes).
    fn chain_keeps(&mut self, chain: u32, value: &Shared) -> bool {
        match self.cache.presence(value) {
            Some(present) => self.rules.chain_keeps_all(chain, &present),
            None => self.rules.chain_keeps(chain, value),
        }
    }

    /// One transformation of a chain on `input`, cached per transformation
    /// and input (see `TransformCache::step`): the changed value, or `None`
    /// when the step leaves `input` as it is. `present` holds the bytes of
    /// `input` once known (looked up here for a short value; the caller
    /// resets it to `None` when the value changes), so that a chain asks
    /// the record of each value it passes through once, not once per step.
    fn step_changes(
        &mut self,
        t: &'static Transformation,
        input: &Shared,
        present: &mut Option<[u64; 4]>,
    ) -> Option<Shared> {
        if input.len() < SHORT_VALUE {
            if present.is_none() {
                *present = self.cache.presence(input);
            }
            let keeps = match present {
                Some(present) => self.rules.step_keeps_all(t, present),
                None => self.rules.step_keeps(t, input),
            };
            if keeps {
                return None;
            }
        }
        let key = t as *const Transformation as usize;
        if let Some(hit) = self.cache.step(key, input) {
            // A long value left as it is was remembered as itself.
            return (hit.identity() != input.identity()).then(|| hit.clone());
        }
        let out = match t.apply(input) {
            Cow::Borrowed(same) if same.len() == input.len() => None,
            Cow::Borrowed(part) => Some(Shared::from(part.to_vec())),
            Cow::Owned(v) if v[..] == input[..] => None,
            Cow::Owned(v) => Some(Shared::from(v)),
        };
        match out {
            Some(changed) => {
                self.cache.insert_step(key, input, changed.clone());
                Some(changed)
            }
            // Finding a short value unchanged again is cheaper than
            // remembering it (a request with thousands of arguments would
            // otherwise fill the cache with identities).
            None if input.len() < SHORT_VALUE => None,
            None => {
                self.cache.insert_step(key, input, input.clone());
                None
            }
        }
    }

    fn record_match(&mut self, value: &Value, matched: Shared) {
        let name = value.name();
        let bytes: Bytes = match matched {
            Shared::Bytes(b) => b,
            Shared::Text(t) => Bytes::from(t.as_bytes()),
        };
        self.matched_vars.push_shared(name.clone(), bytes.clone());
        self.matched_var = Some((name, bytes));
    }

    /// Runs `setvar`, `ctl` and the other per-match actions of a link.
    /// Inlined: most matching links (the paranoia gates, negated checks)
    /// have none, and the call cost more than the empty loop.
    #[inline(always)]
    fn run_effects(&mut self, link: &CompiledRule) {
        for effect in &link.effects {
            self.effect(effect);
        }
    }

    #[inline(never)]
    fn effect(&mut self, effect: &Effect) {
        match &effect.action {
            Action::SetVar(sv) => self.setvar(sv, effect),
            Action::Ctl(ctl) => self.ctl(ctl),
            Action::ExpireVar { .. } => {}
            Action::InitCol { collection, .. } => {
                self.collections.entry(*collection).or_default();
            }
            Action::SetEnv { name, value } => {
                let value = self.expand(value);
                self.env.set(name, value);
            }
            _ => {}
        }
    }

    /// The chain matched: log, then act on the disruptive action and flow.
    fn full_match(&mut self, rule: &'r CompiledRule) -> Flow {
        let msg = rule
            .meta
            .msg
            .as_ref()
            .map(|m| self.expand_str(m))
            .unwrap_or_default();
        let logdata = rule
            .meta
            .logdata
            .as_ref()
            .map(|m| self.expand_str(m))
            .unwrap_or_default();
        if let Some(sev) = rule.meta.severity {
            self.highest_severity = self.highest_severity.min(sev.number());
        }
        self.matched.push(MatchedRule {
            id: rule.id,
            phase: rule.phase,
            msg,
            logdata,
            logged: rule.log,
        });
        if let Some(flow) = self.disrupt(rule) {
            return flow;
        }
        if rule.skip_after.is_some() {
            return Flow::SkipAfter;
        }
        if rule.skip > 0 {
            return Flow::Skip(rule.skip);
        }
        Flow::Next
    }

    /// Applies the disruptive action when the engine is `On`; the
    /// intervention carries the `msg` just recorded for `rule`.
    fn disrupt(&mut self, rule: &CompiledRule) -> Option<Flow> {
        if self.ov.engine != EngineMode::On {
            return None;
        }
        let status = rule.status.unwrap_or(403);
        let (url, drop) = match &rule.disruptive {
            Disruptive::Pass => return None,
            Disruptive::Allow(scope) => {
                self.allowed_through = match scope {
                    AllowScope::All => Phase::ResponseBody.number(),
                    AllowScope::Request => Phase::RequestBody.number(),
                    AllowScope::Phase => rule.phase.number(),
                };
                return Some(Flow::Stop);
            }
            Disruptive::Deny => (None, false),
            Disruptive::Drop => (None, true),
            Disruptive::Redirect(t) | Disruptive::Proxy(t) => {
                let url = String::from_utf8_lossy(&self.expand(t)).into_owned();
                (Some(url), false)
            }
        };
        let status = match (&rule.disruptive, rule.status) {
            (Disruptive::Redirect(_), None) => 302,
            _ => status,
        };
        // Copied only here: most matched rules do not disrupt.
        let msg = self
            .matched
            .last()
            .map(|m| m.msg.clone())
            .unwrap_or_default();
        self.intervention = Some(Intervention {
            status,
            rule_id: rule.id,
            msg,
            url,
            drop,
        });
        Some(Flow::Stop)
    }
}

fn phase_of(n: u8) -> Phase {
    match n {
        1 => Phase::RequestHeaders,
        2 => Phase::RequestBody,
        3 => Phase::ResponseHeaders,
        4 => Phase::ResponseBody,
        _ => Phase::Logging,
    }
}

/// ORs `bits` into `union`, growing it as needed.
pub(super) fn or_into(union: &mut Vec<u64>, bits: &[u64]) {
    if union.len() < bits.len() {
        union.resize(bits.len(), 0);
    }
    for (u, b) in union.iter_mut().zip(bits) {
        *u |= *b;
    }
}

/// Index after skipping `n` rules (markers do not count).
fn skip_rules(program: &[Entry], mut i: usize, mut n: u32) -> usize {
    while i < program.len() && n > 0 {
        if matches!(program[i], Entry::Rule(_)) {
            n -= 1;
        }
        i += 1;
    }
    i
}
