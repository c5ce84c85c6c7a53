//! Links ruled out by the value memo's verdicts before any value is
//! resolved: `Transaction::verdicts_reject`.
//!
//! The memo remembers, per value, the links whose test found nothing in
//! it (see `eval::memo`, `compile::verdicts`). Testing a link value by
//! value asks it once per value, after resolving the link's targets into
//! a list. Most values of real traffic repeat (the same client's headers,
//! argument names, the path), so for most links every value of every
//! target has the verdict already: per request-side variable, the
//! verdicts all its values share (the AND of their sets) are computed
//! once per change of the request's data, and a link whose bit is in the
//! shared set of each of its targets' variables finds nothing, without
//! resolving, transforming or testing anything.
//!
//! Why it is exact: a verdict is a fact about a value's bytes under the
//! rule set ("this link's test finds nothing in them"), computed by the
//! engine itself; a link's values are the values of its targets'
//! variables, narrowed by selectors and exclusions; a value with no memo
//! entry (too long, or its record slot taken) empties the shared set; a
//! variable with no value gives the link nothing to find. Values the link
//! never tests (under a key selector, the others; those its own
//! exclusions or a `ctl` removal take out) never get its verdict, so
//! they are left out of the check rather than let it fail.

use crate::compile::{CompiledRule, RuleSet, VerdictTarget};
use crate::parser::{Selector, Target, Variable};

use super::super::cache::{TransformCache, ValueRef, RECORDED_LEN};
use super::super::vars::{exclusion_removes, is_collection};
use super::super::Transaction;
use super::unions::{stored, Stored};

impl<'r> Transaction<'r> {
    /// True when the value memo says the link finds nothing in any value
    /// of its targets (see the module); false when it cannot tell. `head`
    /// is the chain's first link (whose `ctl` target removals apply).
    /// Not inlined: the rule loop stays small (inlined into it, a varied
    /// GET took ~2% more instructions and more instruction-cache misses).
    #[inline(never)]
    pub(super) fn verdicts_reject(&mut self, head: &CompiledRule, link: &CompiledRule) -> bool {
        let (Some(plan), Some(bit)) = (&link.verdict_plan, link.verdict_bit) else {
            return false;
        };
        // The usual answer, from the plan's first variable alone: its
        // values do not all have the verdict (a new argument value).
        if let Some(VerdictTarget::Values(var)) = plan.first() {
            let (word, mask) = (bit as usize / 64, 1u64 << (bit % 64));
            if self.cache.verdicts_have(*var as usize, word, mask) == Some(false)
                && !excludes_some(link, *var)
                && !self.removed_whole(head, *var)
            {
                return false;
            }
        }
        self.plan_rejects(head, link, plan, bit)
    }

    /// `verdicts_reject` for a link with a plan. The plan lists first the
    /// variables whose values change most often from one request to the
    /// next (`compile::verdicts`): a link that cannot be ruled out is
    /// usually told so by its first variable.
    #[inline(never)]
    fn plan_rejects(
        &mut self,
        head: &CompiledRule,
        link: &CompiledRule,
        plan: &[VerdictTarget],
        bit: u32,
    ) -> bool {
        if self.cache.memo.is_none() {
            return false;
        }
        let (word, mask) = (bit as usize / 64, 1u64 << (bit % 64));
        for target in plan {
            let (all, var) = match *target {
                VerdictTarget::Empty(var) => (self.empty(var), var),
                VerdictTarget::Values(var) => {
                    let all = self.all_values_have(var, word, mask)
                        || excludes_some(link, var) && self.kept_values_have(link, var, word, mask);
                    (all, var)
                }
                VerdictTarget::Keyed(var, index) => {
                    let target = &link.targets[index as usize];
                    (self.keyed_values_have(target, var, word, mask), var)
                }
            };
            // Values the link does not test have no verdict for it.
            let untested =
                || !matches!(target, VerdictTarget::Empty(_)) && self.removed_whole(head, var);
            if !all && !untested() {
                return false;
            }
        }
        #[cfg(test)]
        {
            self.verdict_rejections += 1;
        }
        true
    }

    /// Whether a `ctl:ruleRemoveTarget*` removed every value of `var` from
    /// `head`: the link tests none of them (so none has its verdict).
    fn removed_whole(&self, head: &CompiledRule, var: Variable) -> bool {
        self.rules.ctl_removable.get(var as usize) == Some(&true)
            && !self.ov.removed_targets.is_empty()
            && self
                .runtime_exclusions(head)
                .any(|t| t.variable == var && t.selector.is_none())
    }

    /// Whether every value of `var` has bit `mask` of word `word` among
    /// its verdicts (the shared set is computed once per change of the
    /// request's data). Inlined: a plan asks ~2 times per link, nearly
    /// always of a set already computed.
    #[inline(always)]
    pub(super) fn all_values_have(&mut self, var: Variable, word: usize, mask: u64) -> bool {
        match self.cache.verdicts_have(var as usize, word, mask) {
            Some(all) => all,
            None => self.shared_verdicts(var, word, mask),
        }
    }

    /// Whether every value of `var` that the link's own exclusions leave
    /// (`!REQUEST_HEADERS:Cookie`: 19 CRS rules never test the `Cookie`
    /// header, so it never has their verdicts) has the verdict bit.
    fn kept_values_have(
        &mut self,
        link: &CompiledRule,
        var: Variable,
        word: usize,
        mask: u64,
    ) -> bool {
        let Some(stored) = stored(&self.req, var) else {
            return false;
        };
        let rules = self.rules;
        let kept = |key: &str| !excluded(rules, link, var, key);
        picked_values_have(&stored, &mut self.cache, kept, word, mask)
    }

    /// Whether every value `target` (a plain key selector) selects has the
    /// verdict bit. A scalar ignores the selector (as variable resolution
    /// does).
    fn keyed_values_have(
        &mut self,
        target: &Target,
        var: Variable,
        word: usize,
        mask: u64,
    ) -> bool {
        let (Some(stored), Some(Selector::Key(key))) = (stored(&self.req, var), &target.selector)
        else {
            return self.all_values_have(var, word, mask);
        };
        let picked = |k: &str| key.eq_ignore_ascii_case(k);
        picked_values_have(&stored, &mut self.cache, picked, word, mask)
    }

    /// Computes and keeps the verdicts every value of `var` has; whether
    /// bit `mask` of word `word` is among them.
    fn shared_verdicts(&mut self, var: Variable, word: usize, mask: u64) -> bool {
        let Some(words) = self.cache.memo.as_ref().map(|m| m.verdict_words()) else {
            return false;
        };
        let mut shared = std::mem::take(&mut self.union_words);
        shared.clear();
        shared.resize(words, u64::MAX);
        if let Some(stored) = stored(&self.req, var) {
            let cache = &mut self.cache;
            stored.each(None, |value| and_verdicts(cache, value, &mut shared));
        } else if !is_collection(var) {
            if let Some(value) = self.scalar_shared(var) {
                and_verdicts(&mut self.cache, (&value).into(), &mut shared);
            }
        } else {
            // Not a variable a plan names (see `compile::verdicts`).
            shared.fill(0);
        }
        self.cache.insert_verdicts(var as usize, &shared);
        let all = shared.get(word).is_some_and(|w| w & mask != 0);
        self.union_words = shared;
        all
    }
}

/// Whether every value of `stored` whose key `picks` has bit `mask` of
/// word `word` among its verdicts: the few values a link tests of a
/// variable, looked at one by one.
fn picked_values_have(
    stored: &Stored<'_>,
    cache: &mut TransformCache,
    picks: impl Fn(&str) -> bool,
    word: usize,
    mask: u64,
) -> bool {
    let mut all = true;
    stored.each_keyed(|key, value| {
        if !picks(key) {
            return true;
        }
        all = value_has(cache, value, word, mask);
        all
    });
    all
}

/// Whether the link excludes some values of `var` itself (`!VAR:key`).
fn excludes_some(link: &CompiledRule, var: Variable) -> bool {
    link.exclusions.iter().any(|ex| ex.variable == var)
}

/// Whether the link's exclusions remove the value of `var` under `key`
/// (as variable resolution decides, `vars::selector_matches`).
fn excluded(rules: &RuleSet, link: &CompiledRule, var: Variable, key: &str) -> bool {
    link.exclusions
        .iter()
        .any(|ex| exclusion_removes(rules, ex, var, Some(key)))
}

/// The verdict bits of `value`, when the memo has an entry for it.
fn verdicts_of<'c>(cache: &'c mut TransformCache, value: ValueRef<'_>) -> Option<&'c [u64]> {
    if value.bytes().len() >= RECORDED_LEN {
        return None;
    }
    match cache.known(value) {
        Some(known) => cache.memo_rejected(&known),
        None => cache.memo_rejected_by_bytes(value),
    }
}

/// Whether `value` has bit `mask` of word `word` among its verdicts.
pub(super) fn value_has(
    cache: &mut TransformCache,
    value: ValueRef<'_>,
    word: usize,
    mask: u64,
) -> bool {
    verdicts_of(cache, value).is_some_and(|v| v.get(word).is_some_and(|w| w & mask != 0))
}

/// Keeps in `shared` only the verdicts `value` has; false (to stop the
/// visit) once none is left.
fn and_verdicts(cache: &mut TransformCache, value: ValueRef<'_>, shared: &mut [u64]) -> bool {
    let Some(rejected) = verdicts_of(cache, value) else {
        shared.fill(0);
        return false;
    };
    let mut any = 0;
    for (s, r) in shared.iter_mut().zip(rejected) {
        *s &= r;
        any |= *s;
    }
    any != 0
}

#[cfg(test)]
mod tests;
