//! Building the prefilter unions of `Transaction::link_rejected`: per
//! request-side variable, which bytes its values hold and the union of
//! their prefilter bits (the summary), and the union of their bits after a
//! transformation chain.
//!
//! A benign GET builds ~100 of them. The values of a collection variable
//! are read in place from the request's stored collections, as borrowed
//! [`ValueRef`]s: the cache clones a value only when it keeps it. Building
//! a `Value` per value (two reference counts up and down, and a vector)
//! just to OR its bits cost more than the ORing.
//!
//! The values visited are exactly those variable resolution produces for
//! the same target (`Transaction::target_values`: same collections, same
//! key test), so the unions are the same as when they were built from
//! resolved values; only the order in which values needing a
//! transformation are handled differs, which an OR does not see.

use crate::compile::prefilter::{slot_set, Prefilter};
use crate::compile::RuleSet;
use crate::parser::{Selector, Target, Variable};
use crate::transform::presence;

use super::super::cache::{TransformCache, ValueRef, RECORDED_LEN};
use super::super::data::{Coll, Request};
use super::super::vars::{is_collection, Value};
use super::super::Transaction;
use super::or_into;

/// Where the values of a request-side collection variable are stored: one
/// or two collections (`ARGS` is `ARGS_GET` then `ARGS_POST`), and whether
/// the values are the keys (`ARGS_NAMES`).
pub(super) struct Stored<'a> {
    first: &'a Coll,
    second: Option<&'a Coll>,
    names: bool,
}

/// The collections of `var`, for the collection variables whose values
/// only the request's setters and body processor change (see
/// `vars::request_fixed`); `None` for any other variable (scalars, and
/// variables left to the general path). Variable resolution
/// (`vars::members`) keeps its own match over the same variables: reading
/// them through this function there cost ~2.5 k instructions per GET
/// (callgrind, round 18); `unions/tests.rs` checks that both visit the
/// same values in the same order.
pub(super) fn stored(req: &Request, var: Variable) -> Option<Stored<'_>> {
    let (first, second, names) = match var {
        Variable::Args => (&req.args_get, Some(&req.args_post), false),
        Variable::ArgsGet => (&req.args_get, None, false),
        Variable::ArgsPost => (&req.args_post, None, false),
        Variable::ArgsNames => (&req.args_get, Some(&req.args_post), true),
        Variable::ArgsGetNames => (&req.args_get, None, true),
        Variable::ArgsPostNames => (&req.args_post, None, true),
        Variable::RequestHeaders => (&req.headers, None, false),
        Variable::RequestHeadersNames => (&req.headers, None, true),
        Variable::RequestCookies => (&req.cookies, None, false),
        Variable::RequestCookiesNames => (&req.cookies, None, true),
        _ => return None,
    };
    Some(Stored {
        first,
        second,
        names,
    })
}

impl<'a> Stored<'a> {
    /// Runs `f` on the values in collection order, those whose key equals
    /// `key` ignoring case when one is given (a `Selector::Key`, as
    /// variable resolution selects them), until `f` returns false.
    #[inline(always)]
    pub(super) fn each(&self, key: Option<&str>, mut f: impl FnMut(ValueRef<'a>) -> bool) {
        self.each_keyed(|k, value| {
            if key.is_some_and(|key| !key.eq_ignore_ascii_case(k)) {
                return true;
            }
            f(value)
        });
    }

    /// Runs `f` on every value with its key, in collection order, until
    /// `f` returns false. Plain loops: iterator adapters (chain, filter,
    /// map) cost more per value here than the work on the value.
    #[inline(always)]
    pub(super) fn each_keyed(&self, mut f: impl FnMut(&'a str, ValueRef<'a>) -> bool) {
        for coll in [Some(self.first), self.second].into_iter().flatten() {
            for (k, v) in &coll.entries {
                let value = if self.names {
                    ValueRef::Text(k)
                } else {
                    ValueRef::Bytes(v)
                };
                if !f(k, value) {
                    return;
                }
            }
        }
    }
}

/// Adds one value to a summary: its bytes to `present`, its raw prefilter
/// bits to `union`.
fn summarise_value(
    cache: &mut TransformCache,
    filter: &Prefilter,
    value: ValueRef<'_>,
    present: &mut [u64; 4],
    union: &mut Vec<u64>,
) {
    // A short value's bytes are remembered (its later chains and steps ask
    // for them again); a long one is scanned here.
    let known = if value.bytes().len() < RECORDED_LEN {
        cache.known(value)
    } else {
        None
    };
    match &known {
        Some(known) => or_into_4(present, &known.present),
        None => presence(value.bytes(), present),
    }
    or_into(union, cache.raw_bits(value, known.as_ref(), filter));
}

/// Runs `f` on the prefilter bits of `value` after the bits chain `chain`
/// when they need no transformation: the chain leaves the value as it is
/// (its record says so), or the value memo has them. False, without
/// calling `f`, otherwise (a long value, or one the chain changes): the
/// caller then takes the general path (`with_chain_bits`), which decides
/// the same way first.
fn chain_bits_at_hand(
    rules: &RuleSet,
    cache: &mut TransformCache,
    filter: &Prefilter,
    chain: u32,
    value: ValueRef<'_>,
    f: impl FnOnce(&[u64]),
) -> bool {
    if value.bytes().len() >= RECORDED_LEN {
        return false;
    }
    let Some(known) = cache.known(value) else {
        return false;
    };
    if rules.chain_keeps_all(chain, &known.present) {
        f(cache.raw_bits(value, Some(&known), filter));
        return true;
    }
    match cache.memo_chain_bits(&known, chain) {
        Some(bits) => {
            f(bits);
            true
        }
        None => false,
    }
}

impl<'r> Transaction<'r> {
    /// Records which bytes the values of `var` hold and the union of their
    /// raw prefilter bits (see `union_slot_set`); the bytes.
    pub(super) fn summarise(&mut self, filter: &Prefilter, var: Variable) -> [u64; 4] {
        let mut union = std::mem::take(&mut self.union_words);
        union.clear();
        let mut present = [0u64; 4];
        if let Some(stored) = stored(&self.req, var) {
            let cache = &mut self.cache;
            stored.each(None, |value| {
                summarise_value(cache, filter, value, &mut present, &mut union);
                true
            });
        } else if !is_collection(var) {
            // A scalar: its one value, if any (as `target_values`).
            if let Some(value) = self.scalar_shared(var) {
                summarise_value(
                    &mut self.cache,
                    filter,
                    (&value).into(),
                    &mut present,
                    &mut union,
                );
            }
        } else {
            let values = self.values_of(var);
            for value in &values {
                let value = (&value.value).into();
                summarise_value(&mut self.cache, filter, value, &mut present, &mut union);
            }
            self.give_back_values(values);
        }
        self.cache.insert_summary(var as usize, present, &union);
        self.union_words = union;
        present
    }

    /// The union of the prefilter bits of every value of `var` after the
    /// transformations of `chain`, in the `union_words` buffer (the caller
    /// hands it back).
    pub(super) fn transformed_union(
        &mut self,
        filter: &Prefilter,
        chain: u32,
        var: Variable,
    ) -> Vec<u64> {
        let mut union = std::mem::take(&mut self.union_words);
        union.clear();
        let rules = self.rules;
        // Values whose bits need a transformation: cloned, then handled
        // after the visit (the transformation path needs the whole
        // transaction, not just the cache).
        let mut pending = std::mem::take(&mut self.union_buf);
        pending.clear();
        match stored(&self.req, var) {
            Some(stored) => {
                let cache = &mut self.cache;
                stored.each(None, |value| {
                    let or = |bits: &[u64]| or_into(&mut union, bits);
                    if !chain_bits_at_hand(rules, cache, filter, chain, value, or) {
                        pending.push(Value::new(Some(var), value.to_shared()));
                    }
                    true
                });
            }
            // A scalar: its one value, if any (as `target_values`), read
            // the same way.
            None if !is_collection(var) => {
                if let Some(value) = self.scalar_shared(var) {
                    let or = |bits: &[u64]| or_into(&mut union, bits);
                    let at_hand = (&value).into();
                    if !chain_bits_at_hand(rules, &mut self.cache, filter, chain, at_hand, or) {
                        pending.push(Value::new(Some(var), value));
                    }
                }
            }
            None => self.target_values(&whole(var), &mut pending),
        }
        for value in &pending {
            self.with_chain_bits(filter, chain, &value.value, |bits| {
                or_into(&mut union, bits)
            });
        }
        self.give_back_values(pending);
        union
    }

    /// Whether some value `target` selects may match the prefilter slot
    /// `slot` after the bits chain `chain` (what `may_match` decides for
    /// each value when the link is evaluated: the same values, minus
    /// exclusions, reach it).
    pub(super) fn selected_may_match(
        &mut self,
        filter: &Prefilter,
        chain: u32,
        slot: u32,
        target: &Target,
    ) -> bool {
        let rules = self.rules;
        let mut pending = std::mem::take(&mut self.union_buf);
        pending.clear();
        let mut any = false;
        match (stored(&self.req, target.variable), &target.selector) {
            (Some(stored), Some(Selector::Key(key))) if !target.count => {
                let cache = &mut self.cache;
                stored.each(Some(key), |value| {
                    let mut set = false;
                    let test = |bits: &[u64]| set = slot_set(bits, slot);
                    if !chain_bits_at_hand(rules, cache, filter, chain, value, test) {
                        pending.push(Value::new(Some(target.variable), value.to_shared()));
                    }
                    any = set;
                    !any
                });
            }
            _ => self.target_values(target, &mut pending),
        }
        if !any {
            for value in &pending {
                if self.with_chain_bits(filter, chain, &value.value, |bits| slot_set(bits, slot)) {
                    any = true;
                    break;
                }
            }
        }
        self.give_back_values(pending);
        any
    }

    /// All values of `var`, in the transaction's reusable value buffer
    /// (hand it back with `give_back_values`).
    fn values_of(&mut self, var: Variable) -> Vec<Value> {
        let mut values = std::mem::take(&mut self.union_buf);
        values.clear();
        self.target_values(&whole(var), &mut values);
        values
    }

    fn give_back_values(&mut self, mut values: Vec<Value>) {
        values.clear();
        self.union_buf = values;
    }
}

/// A target for every value of `var`.
fn whole(var: Variable) -> Target {
    Target {
        variable: var,
        selector: None,
        count: false,
        exclude: false,
    }
}

/// ORs one set of 256 bits into another.
fn or_into_4(into: &mut [u64; 4], bits: &[u64; 4]) {
    for (i, b) in into.iter_mut().zip(bits) {
        *i |= b;
    }
}

#[cfg(test)]
mod tests;
