//! The outcome of the first run of pure rules of phase 1 (CRS's
//! initialisation: ~75 literal `setvar`s and the `&TX:x "@eq 0"` defaults),
//! computed once at load and copied into each transaction that reaches the
//! run with an empty TX, instead of evaluating the rules again.
//!
//! Why the copy is exact. The rules of the run are pure (see
//! `compile::pure`): they read only TX, the rule definitions and the
//! transaction's `ctl` overrides (removed rules and targets, engine mode),
//! and write only TX, the list of matched rules, the highest severity,
//! `MATCHED_VAR(S)` and the flow of the phase. The snapshot is made by
//! running exactly these rules, with the real evaluator, on a new
//! transaction: empty TX, no overrides, the configured engine mode. A
//! transaction that reaches the run's first entry with an empty TX, no
//! `ctl` removals and the configured engine mode therefore evaluates every
//! rule of the run to the same result, in the same order, with the same
//! jumps: the state the run reads is identical at each step. What the run
//! writes is then applied: TX is replaced by the snapshot's (it was empty),
//! the matched rules are appended, the highest severity is the minimum of
//! both, `MATCHED_VAR` is the snapshot's when some rule of the run set it
//! (otherwise it is left as it was, as evaluation would), and
//! `MATCHED_VARS` is what the run's last evaluated rule left (each rule
//! clears it first). The phase resumes where the simulation stopped, which
//! may be past the run (a `skipAfter`). A run in which a rule with a
//! disruptive action other than `pass` matched is not snapshotted.
//! Otherwise (a non-empty TX, e.g. `set_tx_var` or a rule before the run
//! that wrote TX; a `ctl` that removed rules or targets or changed the
//! engine) the rules are evaluated as usual. With the shortcuts off
//! (`RuleSet::set_prefilter(false)`) the snapshot is not used, which the
//! equivalence tests compare against.

use std::sync::Arc;

use crate::compile::{Disruptive, Entry, RuleSet};
use crate::parser::Phase;

use super::data::{Bytes, Coll, Store};
use super::{MatchedRule, Transaction};

/// What the first pure run of phase 1 does to a transaction that reaches
/// it with an empty TX (see the module documentation).
pub(crate) struct InitRun {
    /// Index in the phase-1 program of the run's first rule.
    pub start: usize,
    /// Where the phase continues after the run.
    pub resume: usize,
    tx: Store,
    matched: Vec<MatchedRule>,
    highest_severity: u8,
    matched_var: Option<(Arc<str>, Bytes)>,
    matched_vars: Coll,
}

impl std::fmt::Debug for InitRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitRun")
            .field("start", &self.start)
            .field("resume", &self.resume)
            .field("tx_keys", &self.tx.len())
            .field("matched", &self.matched.len())
            .finish()
    }
}

/// Simulates the first pure run of phase 1 on a new transaction; `None`
/// when there is no such run or a rule of it disrupted or stopped the
/// phase.
pub(crate) fn build(rules: &RuleSet) -> Option<InitRun> {
    let program = rules.phase(Phase::RequestHeaders);
    let (start, end) = crate::compile::pure::first_pure_run(program, rules.rules())?;
    let mut tx = Transaction::new(rules);
    let resume = tx.simulate_run(program, start, end)?;
    Some(InitRun {
        start,
        resume,
        tx: tx.tx.clone(),
        matched: tx.matched.clone(),
        highest_severity: tx.highest_severity,
        matched_var: tx.matched_var.clone(),
        matched_vars: tx.matched_vars.clone(),
    })
}

impl<'r> Transaction<'r> {
    /// Evaluates the program from `start` while inside `[start, end)`, as
    /// `run_phase` does; the index where it left the run, or `None` when a
    /// rule stopped the phase or a rule with a disruptive action other
    /// than `pass` matched (it would act differently in another engine
    /// mode).
    fn simulate_run(&mut self, program: &[Entry], start: usize, end: usize) -> Option<usize> {
        let resume = self.run_entries(Phase::RequestHeaders, start, end)?;
        let rules = self.rules.rules();
        let disruptive = |id: u64| {
            program[start..end].iter().any(|e| match e {
                Entry::Rule(index) => {
                    let rule = &rules[*index];
                    rule.id == id && rule.disruptive != Disruptive::Pass
                }
                Entry::Marker(_) => false,
            })
        };
        if self.intervention.is_some() || self.matched.iter().any(|m| disruptive(m.id)) {
            return None;
        }
        Some(resume)
    }

    /// Applies the run's outcome when the transaction is in the state the
    /// snapshot was made from; the program index to continue at, or
    /// `None` to evaluate the run as usual.
    pub(super) fn apply_init_run(&mut self, run: &InitRun) -> Option<usize> {
        let ov = &self.ov;
        let same_state = self.tx.is_empty()
            && ov.removed_ids.is_empty()
            && ov.removed_tags.is_empty()
            && ov.removed_targets.is_empty()
            && ov.engine == self.rules.config().rule_engine;
        if !same_state {
            return None;
        }
        self.tx.copy_from(&run.tx);
        self.matched.extend(run.matched.iter().cloned());
        self.highest_severity = self.highest_severity.min(run.highest_severity);
        if let Some(var) = &run.matched_var {
            self.matched_var = Some(var.clone());
        }
        self.matched_vars.clone_from(&run.matched_vars);
        self.current = None;
        Some(run.resume)
    }
}
