//! Stretches of rules ruled out all at once by the value memo (see
//! `compile::stretches`): `Transaction::look_at_stretch` before a
//! stretch, `Transaction::note_stretch` after one was evaluated without
//! any link matching.
//!
//! Why skipping is exact. A rule of a stretch tests, with its first link,
//! values of its plan's variables (narrowed by selectors and exclusions,
//! static or by `ctl`), and finding nothing in each is a pure function of
//! the value's bytes (`compile::verdicts`). A group's bit is noted on a
//! value only when every reader of the group tested that value and found
//! nothing, so a value of the group with the bit is one in which no
//! reader finds anything, under any key. When every value of every group
//! either has the bit or is tested by no reader, and every body-processor
//! variable of the stretch is empty, no rule of it can match: evaluating
//! it would run no action and move the loop to its end. The only trace
//! such an evaluation leaves is an empty `MATCHED_VARS` (each rule clears
//! it first), which skipping leaves too.

use crate::compile::stretches::{Group, Stretch};
use crate::compile::{CompiledRule, RuleSet};
use crate::parser::{Target, Variable};

use super::super::cache::{TransformCache, ValueRef, RECORDED_LEN};
use super::super::vars::{exclusion_removes, is_collection, removals_for, selector_matches};
use super::super::{TargetScope, Transaction};
use super::unions::stored;

/// What a look at a stretch's bits found (or that there was none).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// No rule of the stretch can match: the loop goes to its end.
    RuledOut,
    /// Some value lacks a bit: the stretch is evaluated, and its bits
    /// noted if nothing matched.
    Missed,
    /// Not looked at (no memo, or the stretch backs off): evaluated as
    /// usual.
    Unchecked,
}

impl<'r> Transaction<'r> {
    /// Whether the memo's bits say that no rule of stretch `id` can match
    /// this request (see the module); clears `MATCHED_VARS` as its rules
    /// would when they do.
    #[inline(never)]
    pub(super) fn look_at_stretch(&mut self, id: usize, stretch: &Stretch) -> Look {
        let backoff = self.rules.stretch_backoff();
        let Some(memo) = self.cache.memo.as_deref_mut() else {
            return Look::Unchecked;
        };
        if backoff && !memo.stretch_looks(id) {
            return Look::Unchecked;
        }
        let nothing = stretch.groups.iter().all(|group| match group.bit {
            None => self.empty(group.var),
            Some(bit) => self.group_has(group, bit),
        });
        if let Some(memo) = self.cache.memo.as_deref_mut() {
            memo.stretch_looked(id, nothing);
        }
        if !nothing {
            return Look::Missed;
        }
        // As its rules would leave it (each clears it first). No rule
        // reads it before clearing it itself; kept exact for the state the
        // segments and the first-run snapshot copy.
        if !self.matched_vars.entries.is_empty() && self.evaluates_some(stretch) {
            self.matched_vars.entries.clear();
        }
        #[cfg(test)]
        {
            self.stretch_skips += 1;
        }
        Look::RuledOut
    }

    /// Whether every value of `group` that some reader tests has `bit`.
    fn group_has(&mut self, group: &Group, bit: u32) -> bool {
        let (word, mask) = (bit as usize / 64, 1u64 << (bit % 64));
        let all = match &group.key {
            None => self.all_values_have(group.var, word, mask),
            Some(key) => self.keyed_have(group.var, key, word, mask),
        };
        if all {
            return true;
        }
        // Some value lacks the bit: it may be one no reader tests (a key
        // a reader excludes, a variable a `ctl` removed). When every
        // reader tests every value, it is not.
        if group.plain && !self.removes_targets_of(group.var) {
            return false;
        }
        let mut lacking_untested = true;
        self.each_group_value(group, |cache, readers, key, value| {
            if super::verdicts::value_has(cache, value, word, mask) {
                return true;
            }
            lacking_untested = !readers.some_tests(group, key);
            lacking_untested
        });
        lacking_untested
    }

    /// Whether every value of `var` under `key` has bit `mask` of word
    /// `word`.
    fn keyed_have(&mut self, var: Variable, key: &str, word: usize, mask: u64) -> bool {
        let Some(stored) = stored(&self.req, var) else {
            return self.all_values_have(var, word, mask);
        };
        let cache = &mut self.cache;
        let mut all = true;
        stored.each(Some(key), |value| {
            all = super::verdicts::value_has(cache, value, word, mask);
            all
        });
        all
    }

    /// Notes the bits of `stretch`'s groups on the values every reader
    /// tested, after the stretch was evaluated and no link of it matched.
    #[inline(never)]
    pub(super) fn note_stretch(&mut self, stretch: &Stretch) {
        if self.cache.memo.is_none() || self.removes_some(stretch) {
            return;
        }
        for group in stretch.groups.iter() {
            let Some(bit) = group.bit else { continue };
            let (word, mask) = (bit as usize / 64, 1u64 << (bit % 64));
            let known_all = self.cache.verdicts_have(group.var as usize, word, mask);
            if group.key.is_none() && known_all == Some(true) {
                continue;
            }
            let check_keys = !group.plain || self.removes_targets_of(group.var);
            self.each_group_value(group, |cache, readers, key, value| {
                if !check_keys || readers.all_test(group, key) {
                    note_bit(cache, value, bit);
                }
                true
            });
        }
    }

    /// Runs `f` on each value of the group (with its key; `None` for a
    /// scalar) until it returns false.
    fn each_group_value(
        &mut self,
        group: &Group,
        mut f: impl FnMut(&mut TransformCache, Readers<'_>, Option<&str>, ValueRef<'_>) -> bool,
    ) {
        let values = stored(&self.req, group.var);
        let scalar = match values.is_some() || is_collection(group.var) {
            true => None,
            false => self.scalar_shared(group.var),
        };
        let readers = Readers {
            rules: self.rules,
            removed: &self.ov.removed_targets,
        };
        let cache = &mut self.cache;
        if let Some(stored) = values {
            stored.each_keyed(|key, value| {
                let picked = group
                    .key
                    .as_deref()
                    .is_none_or(|k| k.eq_ignore_ascii_case(key));
                !picked || f(cache, readers, Some(key), value)
            });
        } else if let Some(value) = scalar {
            f(cache, readers, None, (&value).into());
        }
    }

    /// Whether a `ctl` of this transaction removed some target of `var`
    /// from some rules.
    fn removes_targets_of(&self, var: Variable) -> bool {
        let names =
            |(_, targets): &(TargetScope, Vec<Target>)| targets.iter().any(|t| t.variable == var);
        self.ov.removed_targets.iter().any(names)
    }

    /// Whether a `ctl` removed some rule of `stretch` from this
    /// transaction (its values were then not all tested).
    fn removes_some(&self, stretch: &Stretch) -> bool {
        if self.ov.removed_ids.is_empty() && self.ov.removed_tags.is_empty() {
            return false;
        }
        let rules = self.rules.rules();
        stretch.rules.iter().any(|r| self.is_removed(&rules[*r]))
    }

    /// Whether some rule of `stretch` would be evaluated (not removed by
    /// a `ctl`), and so clear `MATCHED_VARS`.
    fn evaluates_some(&self, stretch: &Stretch) -> bool {
        let rules = self.rules.rules();
        stretch.rules.iter().any(|r| !self.is_removed(&rules[*r]))
    }
}

/// The rule set and the transaction's `ctl` target removals: whether a
/// reader of a group tests a value, as variable resolution decides.
#[derive(Clone, Copy)]
struct Readers<'a> {
    rules: &'a RuleSet,
    removed: &'a [(TargetScope, Vec<Target>)],
}

impl Readers<'_> {
    fn some_tests(&self, group: &Group, key: Option<&str>) -> bool {
        let rules = self.rules.rules();
        group
            .readers
            .iter()
            .any(|r| self.tests(&rules[*r], group.var, key))
    }

    fn all_test(&self, group: &Group, key: Option<&str>) -> bool {
        let rules = self.rules.rules();
        group
            .readers
            .iter()
            .all(|r| self.tests(&rules[*r], group.var, key))
    }

    /// Whether the first link of `rule` tests the value of `var` under
    /// `key` (`None`: a scalar, which selectors do not narrow).
    fn tests(&self, rule: &CompiledRule, var: Variable, key: Option<&str>) -> bool {
        let rules = self.rules;
        let picks = |t: &Target| {
            t.variable == var
                && match (&t.selector, key) {
                    (Some(sel), Some(key)) => selector_matches(rules, sel, key),
                    _ => true,
                }
        };
        let removes = |ex: &Target| exclusion_removes(rules, ex, var, key);
        rule.targets.iter().any(picks)
            && !rule.exclusions.iter().any(removes)
            && !removals_for(self.removed, rule).any(removes)
    }
}

/// Notes verdict bit `bit` on `value`'s memo entry (none for a long
/// value).
fn note_bit(cache: &mut TransformCache, value: ValueRef<'_>, bit: u32) {
    if value.bytes().len() >= RECORDED_LEN {
        return;
    }
    match cache.known(value) {
        Some(known) => cache.memo_note_rejected(&known, bit),
        None => cache.memo_note_rejected_by_bytes(value, bit),
    }
}

#[cfg(test)]
mod tests;
