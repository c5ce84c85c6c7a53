//! Plans for the simplest rule links, decided at load so that evaluation
//! can skip the general machinery (target lists, value buffers, the
//! transformation cache, operator dispatch).
//!
//! CRS evaluates ~175 paranoia gates per request, all of one shape:
//! `SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 2" "...,skipAfter:END-..."`, and
//! its initialisation checks `&TX:x "@eq 0"` before setting defaults. Such a
//! link reads one TX value and compares two integers; [`TxCompare`] is that
//! comparison with the key lower-cased and the right-hand side parsed once.
//! The result is the one the general path computes, value for value: same
//! match, same `MATCHED_VAR` / `MATCHED_VAR_NAME`, same effects.

use std::sync::Arc;

use super::operator::{Arg, Cmp, CompiledOp};
use crate::eval::StoreKey;
use crate::parser::{Selector, Target, Variable};
use crate::transform::Transformation;

/// `[&]TX:key "@cmp N"` with a literal key and number, no transformation,
/// no exclusion and no `multiMatch`.
#[derive(Clone, Debug)]
pub struct TxCompare {
    /// The TX key, lower-cased as TX stores its keys and hashed; one
    /// allocation per distinct key in a rule set (see [`intern_keys`]), so
    /// that its address identifies it.
    pub key: StoreKey,
    /// `&TX:key`: compare the number of values (0 or 1).
    pub count: bool,
    /// `MATCHED_VAR_NAME` on a match: `TX:key`, or `TX` when counting.
    pub name: Arc<str>,
    pub cmp: Cmp,
    pub rhs: i64,
    /// Nothing can read the `MATCHED_VARS` entry of a match: the plan is
    /// the whole rule (no chain after it), without per-match actions,
    /// `msg`, `logdata` or a disruptive action that expands a macro (set
    /// by [`mark_quiet`]). The paranoia-level gates have this shape.
    pub quiet: bool,
}

/// Sets [`TxCompare::quiet`] on a rule's head link when the rule has the
/// shape it names. Why that is enough: `MATCHED_VARS` is only read while
/// a rule is evaluated (its targets and macros), every rule clears it
/// before its first link, and such a rule reads no macro after its only
/// link matched.
pub(crate) fn mark_quiet(head: &mut super::CompiledRule) {
    let expands_disruptive = matches!(
        head.disruptive,
        super::Disruptive::Redirect(_) | super::Disruptive::Proxy(_)
    );
    let reads_nothing = head.chain.is_none()
        && head.effects.is_empty()
        && head.meta.msg.is_none()
        && head.meta.logdata.is_none()
        && !expands_disruptive;
    if let Some(plan) = head.tx_compare.as_mut() {
        plan.quiet = reads_nothing;
    }
}

/// The plan of a link, when it has the shape of [`TxCompare`].
pub(crate) fn tx_compare(
    targets: &[Target],
    exclusions: &[Target],
    transforms: &[&'static Transformation],
    multi_match: bool,
    op: &CompiledOp,
) -> Option<TxCompare> {
    let [target] = targets else {
        return None;
    };
    if !exclusions.is_empty() || !transforms.is_empty() || multi_match {
        return None;
    }
    let (CompiledOp::Compare(cmp, Arg::Literal(rhs)), Variable::Tx) = (op, target.variable) else {
        return None;
    };
    let Some(Selector::Key(key)) = &target.selector else {
        return None;
    };
    let key = key.to_ascii_lowercase();
    let name: Arc<str> = if target.count {
        Variable::Tx.name().into()
    } else {
        format!("{}:{key}", Variable::Tx.name()).into()
    };
    Some(TxCompare {
        key: StoreKey::new(&key),
        count: target.count,
        name,
        cmp: *cmp,
        rhs: to_int(rhs),
        quiet: false,
    })
}

/// Makes the plans that read the same TX key share one allocation of it
/// (CRS's ~175 paranoia gates all read `detection_paranoia_level`): the
/// evaluation remembers a key's value by the key's address.
pub(crate) fn intern_keys<'a>(plans: impl Iterator<Item = &'a mut TxCompare>) {
    let mut seen: std::collections::HashMap<StoreKey, ()> = std::collections::HashMap::new();
    for plan in plans {
        match seen.get_key_value(&plan.key) {
            Some((shared, _)) => plan.key = shared.clone(),
            None => {
                seen.insert(plan.key.clone(), ());
            }
        }
    }
}

/// ModSecurity reads numbers like `atoi`: leading whitespace, an optional
/// sign, then digits up to the first non-digit; no digits at all is 0.
/// Saturates instead of overflowing.
pub fn to_int(bytes: &[u8]) -> i64 {
    let mut rest = bytes;
    while let [b, tail @ ..] = rest {
        if !b.is_ascii_whitespace() && *b != 0x0b {
            break;
        }
        rest = tail;
    }
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    for &b in rest.iter().take_while(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        n = match n.checked_mul(10).and_then(|n| n.checked_add(digit)) {
            Some(n) => n,
            // Too many digits for an i64.
            None => return 0,
        };
    }
    if negative {
        -n
    } else {
        n
    }
}

/// The comparison itself.
pub fn compare(cmp: Cmp, a: i64, b: i64) -> bool {
    match cmp {
        Cmp::Eq => a == b,
        Cmp::Ge => a >= b,
        Cmp::Gt => a > b,
        Cmp::Le => a <= b,
        Cmp::Lt => a < b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleSet;

    #[test]
    fn atoi_semantics() {
        assert_eq!(to_int(b"42"), 42);
        assert_eq!(to_int(b" \t-7x"), -7);
        assert_eq!(to_int(b"+3"), 3);
        assert_eq!(to_int(b""), 0);
        assert_eq!(to_int(b"-"), 0);
        assert_eq!(to_int(b"abc"), 0);
        assert_eq!(to_int(b"99999999999999999999"), 0);
        assert_eq!(to_int(&[0xff, b'1']), 0);
    }

    #[test]
    fn plans_only_the_plain_shape() {
        let set = RuleSet::from_text(
            "SecRule TX:Paranoia_Level \"@lt 2\" \"id:1,phase:1,pass,nolog\"\n\
             SecRule &TX:x \"@eq 0\" \"id:2,phase:1,pass\"\n\
             SecRule TX:a \"@lt 2\" \"id:3,phase:1,pass,t:length\"\n\
             SecRule TX:a \"@lt %{tx.b}\" \"id:4,phase:1,pass\"\n\
             SecRule TX:/a/ \"@lt 2\" \"id:5,phase:1,pass\"\n\
             SecRule TX:a|TX:b \"@lt 2\" \"id:6,phase:1,pass\"",
        )
        .unwrap();
        let plan = |id| set.rule(id).unwrap().tx_compare.clone();
        let gate = plan(1).expect("a gate is planned");
        assert_eq!(
            (&**gate.key.name(), &*gate.name, gate.rhs),
            ("paranoia_level", "TX:paranoia_level", 2)
        );
        let count = plan(2).expect("a count is planned");
        assert!(count.count);
        assert_eq!(&*count.name, "TX");
        for id in 3..=6 {
            assert!(plan(id).is_none(), "rule {id}");
        }
    }
}
