//! Value lists resolved once per transaction and shared by the links with
//! the same targets (see `compile::lists`).
//!
//! Soundness: a link gets a list id only when all its targets and
//! exclusions read variables that change only through the request setters
//! and the body processor, and not with the phase; every one of those
//! changes calls `Transaction::invalidate_scalars`, which empties the
//! lists. A list is only used (and only filled) for a rule without
//! run-time exclusions (`ctl:ruleRemoveTarget*`), so it holds exactly what
//! `resolve_targets` returns for each link with that id, in the same
//! order, and the same shared values (the transformation cache, keyed on
//! their allocation, finds them again).
//!
//! A rule with run-time exclusions uses a *derived* list instead, keyed on
//! the list id and the targets those exclusions remove from it, in order
//! (`Derived`): `resolve_targets` reads nothing else of the head, so two
//! links with the same key resolve the same values (CRS 941010's
//! `ctl:ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME` gives
//! 941160/941170 and 941210/941220 one such list per pair). Lists are used only while the
//! shortcuts are on, so the prefilter equivalence tests compare them with
//! a fresh resolution for every link.

use super::vars::Value;
use super::Transaction;
use crate::compile::CompiledRule;
use crate::parser::Target;

/// Values held in all lists at most: a request with thousands of
/// arguments resolves its lists afresh rather than keeping copies.
const MAX_HELD: usize = 4096;

/// The lists of one transaction (pooled with its scratch).
#[derive(Default)]
pub(crate) struct ValueLists {
    /// Per list id: whether the list is resolved, and its values.
    lists: Vec<(bool, Vec<Value>)>,
    /// Ids resolved since the last `clear`.
    filled: Vec<u32>,
    /// Values held by the resolved lists.
    held: usize,
    /// Changes at every `clear`: a list resolved before it is not kept.
    generation: u64,
    /// Lists for heads with run-time exclusions (few: one per distinct
    /// list id and removed targets), with their buffers kept across
    /// `clear`s.
    derived: Vec<Derived>,
}

/// A list resolved with run-time exclusions applied.
#[derive(Default)]
struct Derived {
    state: State,
    /// The list id.
    id: u32,
    /// The targets the run-time exclusions of the head that resolved the
    /// list removed, in `removed_targets` order.
    removed: Vec<Target>,
    values: Vec<Value>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No list: the buffers are free for any key.
    #[default]
    Free,
    /// Resolved, for its key, since the last `clear`.
    Live,
    /// Taken out by `take_derived`, until `put`.
    Taken,
}

impl ValueLists {
    /// Forgets every list, keeping the allocations.
    pub fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        for id in self.filled.drain(..) {
            if let Some((resolved, values)) = self.lists.get_mut(id as usize) {
                *resolved = false;
                values.clear();
            }
        }
        for d in &mut self.derived {
            // A taken list is freed by its `put` (its generation is old).
            if d.state == State::Live {
                d.state = State::Free;
                d.values.clear();
            }
        }
        self.held = 0;
    }

    /// The largest list or table capacity (see `pool::Scratch`).
    pub fn capacity(&self) -> usize {
        let lists = self.lists.iter().map(|(_, v)| v.capacity()).max();
        let derived = self.derived.iter().map(|d| d.values.capacity()).max();
        let tables = self.lists.capacity().max(self.derived.capacity());
        lists.unwrap_or(0).max(derived.unwrap_or(0)).max(tables)
    }

    /// List `id` taken out (hand it back with `put`): whether it is
    /// resolved, and its values, or else its empty buffer. The slot reads
    /// as unresolved until `put`: whoever would need the list meanwhile
    /// resolves it afresh rather than seeing it empty.
    fn take(&mut self, id: u32, count: usize) -> (bool, Vec<Value>) {
        if self.lists.len() < count {
            self.lists.resize_with(count, Default::default);
        }
        match self.lists.get_mut(id as usize) {
            Some((resolved, values)) => (std::mem::take(resolved), std::mem::take(values)),
            None => (false, Vec::new()),
        }
    }

    /// Whether `len` values handed back, taken at `generation`, are kept:
    /// no `clear` came in between and, for a new list, they fit under
    /// `MAX_HELD`.
    fn keeps(&self, len: usize, was_resolved: bool, generation: u64) -> bool {
        generation == self.generation && (was_resolved || self.held + len <= MAX_HELD)
    }

    /// Hands back the values of list `id` taken at `generation` (resolved
    /// before, `was_resolved`, or just now). They are kept as the resolved
    /// list when no `clear` came in between and, for a new list, they fit
    /// under `MAX_HELD`; otherwise they come back emptied, for the caller to
    /// reuse, and the list's slot is left without a buffer (so a request
    /// whose lists are too large to hold grows one buffer, not one per
    /// list).
    fn put(
        &mut self,
        id: u32,
        mut values: Vec<Value>,
        was_resolved: bool,
        generation: u64,
    ) -> Option<Vec<Value>> {
        let keep = self.keeps(values.len(), was_resolved, generation);
        let Some(slot) = self.lists.get_mut(id as usize).filter(|_| keep) else {
            values.clear();
            return Some(values);
        };
        if !was_resolved {
            self.held += values.len();
            self.filled.push(id);
        }
        *slot = (true, values);
        None
    }

    /// Hands back derived list `index` (see `put`). A list that is not
    /// kept frees its slot.
    fn put_derived(
        &mut self,
        index: u32,
        mut values: Vec<Value>,
        was_resolved: bool,
        generation: u64,
    ) -> Option<Vec<Value>> {
        let keep = self.keeps(values.len(), was_resolved, generation);
        let Some(d) = self.derived.get_mut(index as usize) else {
            values.clear();
            return Some(values);
        };
        if d.state != State::Taken {
            values.clear();
            return Some(values);
        }
        if keep {
            if !was_resolved {
                self.held += values.len();
            }
            d.values = values;
            d.state = State::Live;
            return None;
        }
        d.state = State::Free;
        values.clear();
        Some(values)
    }
}

/// Where the values of a link being evaluated came from.
pub(super) struct Taken {
    values: Vec<Value>,
    /// (list id, whether it was resolved before, generation) for a list.
    list: Option<(u32, bool, u64)>,
    /// Whether `list` names a derived list (by its index).
    derived: bool,
}

impl Taken {
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

impl<'r> Transaction<'r> {
    /// The values of the link's targets, minus exclusions: the link's
    /// shared list when it has one and no run-time exclusion applies to
    /// `head` (resolved now if it is not yet), otherwise resolved into the
    /// transaction's buffer. Hand them back with `put_values`.
    pub(super) fn take_values(&mut self, head: &CompiledRule, link: &CompiledRule) -> Taken {
        let runtime = self.has_runtime_exclusions(head);
        if let Some(id) = link.value_list {
            if self.rules.shortcuts_on() && !runtime {
                let generation = self.lists.generation;
                let count = self.rules.value_list_count();
                let (resolved, mut values) = self.lists.take(id, count);
                if !resolved {
                    // The list's own buffer (pooled from earlier requests)
                    // or, when it has none, the shared one.
                    if values.capacity() == 0 {
                        values = std::mem::take(&mut self.values_buf);
                        values.clear();
                    }
                    self.resolve_targets(head, link, runtime, &mut values);
                }
                return Taken {
                    values,
                    list: Some((id, resolved, generation)),
                    derived: false,
                };
            }
            if self.rules.shortcuts_on() {
                return self.take_derived(head, link, id);
            }
        }
        let mut values = std::mem::take(&mut self.values_buf);
        values.clear();
        self.resolve_targets(head, link, runtime, &mut values);
        Taken {
            values,
            list: None,
            derived: false,
        }
    }

    /// `take_values` for a link with list `id` whose head has run-time
    /// exclusions: the derived list for `id` and the targets they remove,
    /// resolved now if there is none. Out of line: a few links per request
    /// come here, and the rule loop that inlines `take_values` stays small.
    #[inline(never)]
    fn take_derived(&mut self, head: &CompiledRule, link: &CompiledRule, id: u32) -> Taken {
        let generation = self.lists.generation;
        let found = self.lists.derived.iter().position(|d| {
            d.state == State::Live && d.id == id && self.runtime_exclusions(head).eq(&d.removed)
        });
        if let Some(index) = found {
            let d = &mut self.lists.derived[index];
            d.state = State::Taken;
            return Taken {
                values: std::mem::take(&mut d.values),
                list: Some((index as u32, true, generation)),
                derived: true,
            };
        }
        let index = match self
            .lists
            .derived
            .iter()
            .position(|d| d.state == State::Free)
        {
            Some(index) => index,
            None => {
                self.lists.derived.push(Derived::default());
                self.lists.derived.len() - 1
            }
        };
        let mut removed = std::mem::take(&mut self.lists.derived[index].removed);
        removed.clear();
        removed.extend(self.runtime_exclusions(head).cloned());
        let d = &mut self.lists.derived[index];
        d.removed = removed;
        d.id = id;
        d.state = State::Taken;
        let mut values = std::mem::take(&mut d.values);
        if values.capacity() == 0 {
            values = std::mem::take(&mut self.values_buf);
        }
        values.clear();
        self.resolve_targets(head, link, true, &mut values);
        Taken {
            values,
            list: Some((index as u32, false, generation)),
            derived: true,
        }
    }

    /// Hands back values from `take_values`.
    pub(super) fn put_values(&mut self, taken: Taken) {
        let Taken {
            values,
            list,
            derived,
        } = taken;
        let spare = match list {
            Some((index, resolved, generation)) if derived => {
                self.lists.put_derived(index, values, resolved, generation)
            }
            Some((id, resolved, generation)) => self.lists.put(id, values, resolved, generation),
            None => Some(values),
        };
        // The larger buffer is kept as the shared one.
        if let Some(mut spare) = spare {
            if spare.capacity() >= self.values_buf.capacity() {
                spare.clear();
                self.values_buf = spare;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{RuleSet, Transaction};

    fn ids(tx: &Transaction<'_>) -> Vec<u64> {
        tx.matched_rules().iter().map(|m| m.id).collect()
    }

    fn same_list(set: &RuleSet, a: u64, b: u64) -> bool {
        let list = |id| set.rule(id).and_then(|r| r.value_list);
        list(a).is_some() && list(a) == list(b)
    }

    #[test]
    fn a_list_resolved_before_the_body_processor_is_not_reused_after() {
        let set = RuleSet::from_text(
            "SecRuleEngine On\nSecRequestBodyAccess On\n\
             SecRule ARGS|ARGS_NAMES \"@streq evil\" \"id:1,phase:1,pass\"\n\
             SecRule ARGS|ARGS_NAMES \"@streq evil\" \"id:2,phase:2,pass\"",
        )
        .unwrap();
        assert!(same_list(&set, 1, 2));
        let mut tx = Transaction::new(&set);
        tx.set_request_line("POST", "/?a=1", "HTTP/1.1");
        tx.add_request_header("Content-Type", b"application/x-www-form-urlencoded");
        tx.process_request_headers();
        tx.append_request_body(b"q=evil");
        tx.process_request_body();
        assert_eq!(ids(&tx), [2]);
    }

    #[test]
    fn run_time_exclusions_neither_use_nor_fill_a_list() {
        let set = RuleSet::from_text(
            "SecRuleEngine On\n\
             SecAction \"id:1,phase:1,pass,ctl:ruleRemoveTargetById=2;ARGS:a\"\n\
             SecRule ARGS \"@rx x\" \"id:2,phase:1,pass\"\n\
             SecRule ARGS \"@rx x\" \"id:3,phase:1,pass\"\n\
             SecAction \"id:4,phase:1,pass,ctl:ruleRemoveTargetById=5;ARGS:a\"\n\
             SecRule ARGS \"@rx x\" \"id:5,phase:1,pass\"",
        )
        .unwrap();
        assert!(same_list(&set, 2, 3) && same_list(&set, 3, 5));
        let mut tx = Transaction::new(&set);
        tx.set_request_line("GET", "/?a=x&b=y", "HTTP/1.1");
        tx.process_request_headers();
        // 2 and 5 do not see `a`; 3 resolves the list after 2 and sees it,
        // and 5 does not take it from the list 3 filled.
        assert_eq!(ids(&tx), [1, 3, 4]);
    }

    #[test]
    fn derived_lists_are_shared_only_by_the_same_removed_targets() {
        // 2 and 3 lose `a` by tag, 4 loses `b` by id, 5 keeps everything:
        // all four share list ids, but only 2 and 3 may share a derived list.
        let set = RuleSet::from_text(
            "SecRuleEngine On\n\
             SecAction \"id:1,phase:1,pass,ctl:ruleRemoveTargetByTag=t;ARGS:a,\
             ctl:ruleRemoveTargetById=4;ARGS:b\"\n\
             SecRule ARGS \"@rx x\" \"id:2,phase:1,pass,tag:t\"\n\
             SecRule ARGS \"@rx x\" \"id:3,phase:1,pass,tag:t\"\n\
             SecRule ARGS \"@rx x\" \"id:4,phase:1,pass\"\n\
             SecRule ARGS \"@rx x\" \"id:5,phase:1,pass\"",
        )
        .unwrap();
        assert!(same_list(&set, 2, 3) && same_list(&set, 3, 4) && same_list(&set, 4, 5));
        let mut tx = Transaction::new(&set);
        tx.set_request_line("GET", "/?a=x&b=y", "HTTP/1.1");
        tx.process_request_headers();
        // `a=x` matches for 4 and 5 only: 2 and 3 do not see it.
        assert_eq!(ids(&tx), [1, 4, 5]);
        assert_eq!(tx.lists.derived.len(), 2, "one derived list per key");
        let live = |tx: &Transaction<'_>| {
            let live = tx
                .lists
                .derived
                .iter()
                .filter(|d| d.state == super::State::Live);
            live.map(|d| d.values.len()).collect::<Vec<_>>()
        };
        assert_eq!(live(&tx), [1, 1], "ARGS without `a`, ARGS without `b`");
        let mut tx = Transaction::new(&set);
        tx.set_request_line("GET", "/?a=y&b=x", "HTTP/1.1");
        tx.process_request_headers();
        // `b=x` matches for all but 4.
        assert_eq!(ids(&tx), [1, 2, 3, 5]);
    }

    #[test]
    fn lists_are_held_up_to_a_bound() {
        let set = RuleSet::from_text(
            "SecRuleEngine On\n\
             SecRule ARGS \"@rx ^v7$\" \"id:1,phase:1,pass\"\n\
             SecRule ARGS \"@rx ^v4999$\" \"id:2,phase:1,pass\"",
        )
        .unwrap();
        let query: Vec<String> = (0..5000).map(|i| format!("k{i}=v{i}")).collect();
        let mut tx = Transaction::new(&set);
        tx.set_request_line("GET", &format!("/?{}", query.join("&")), "HTTP/1.1");
        tx.process_request_headers();
        assert_eq!(ids(&tx), [1, 2]);
        assert_eq!(tx.lists.held, 0, "more values than MAX_HELD");
        // Lists too large to hold leave no buffer behind: one shared
        // buffer serves them all.
        assert!(tx.lists.lists.iter().all(|(_, v)| v.capacity() == 0));
        assert!(tx.values_buf.capacity() >= 5000);
    }
}
