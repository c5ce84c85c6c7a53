//! Verdict bits: the links whose test of a value the value memo may
//! remember (see `eval::memo`).
//!
//! A link's test of one value (its transformations, then its operator,
//! on every intermediate form with `multiMatch`) finding nothing is a
//! pure function of the value's bytes when:
//!
//! * the operator reads nothing but the value and constants fixed at
//!   load: no macro in its argument (`@within %{tx.allowed_methods}`
//!   depends on TX), no pattern built per request;
//! * finding nothing has no side effect: true of every operator here
//!   (captures are written on a match only);
//! * the link is not negated: a negated link that "finds nothing" is one
//!   whose operator matched, and matching writes captures.
//!
//! Transformations are pure functions of their input. Each such link gets
//! a dense bit, the index into a memo entry's set of links known to find
//! nothing in its value.

use super::operator::{Arg, CompiledOp};
use super::rule::CompiledRule;

/// Gives every link whose test the memo may remember its verdict bit; the
/// number of bits given.
pub(super) fn assign(rules: &mut [CompiledRule]) -> u32 {
    let mut next = 0;
    for rule in rules {
        let mut link = Some(rule);
        while let Some(l) = link {
            if eligible(l) {
                l.verdict_bit = Some(next);
                next += 1;
            }
            link = l.chain.as_deref_mut();
        }
    }
    next
}

/// Whether finding nothing in a value is a pure function of the value's
/// bytes for `link` (see the module).
fn eligible(link: &CompiledRule) -> bool {
    !link.negated && !link.is_action_only() && pure(&link.operator)
}

/// Whether the operator's result depends on the value and load-time
/// constants alone.
fn pure(op: &CompiledOp) -> bool {
    let literal = |arg: &Arg| matches!(arg, Arg::Literal(_));
    match op {
        CompiledOp::Rx(_)
        | CompiledOp::Pm(_)
        | CompiledOp::IpMatch(_)
        | CompiledOp::ValidateByteRange(_)
        | CompiledOp::ValidateUrlEncoding
        | CompiledOp::ValidateUtf8Encoding
        | CompiledOp::DetectSqli
        | CompiledOp::DetectXss => true,
        CompiledOp::StrEq(a)
        | CompiledOp::Contains(a)
        | CompiledOp::ContainsWord(a)
        | CompiledOp::BeginsWith(a)
        | CompiledOp::EndsWith(a)
        | CompiledOp::Within(a)
        | CompiledOp::Compare(_, a) => literal(a),
        // Always matches, or never: nothing to remember.
        CompiledOp::RxWhole | CompiledOp::Unconditional | CompiledOp::NoMatch => false,
        CompiledOp::RxMacro(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::RuleSet;

    fn bits(text: &str) -> Vec<(u64, Option<u32>)> {
        let set = RuleSet::from_text(text).expect("loads");
        set.rules()
            .iter()
            .flat_map(|r| r.links())
            .map(|l| (l.id, l.verdict_bit))
            .collect()
    }

    /// Pure operators get consecutive bits (chained links too); macros,
    /// negation and operators that always match get none.
    #[test]
    fn only_pure_links_get_a_bit() {
        let got = bits(
            r#"
SecRule ARGS "@rx a" "id:1,phase:1,pass"
SecRule ARGS "@within %{tx.allowed}" "id:2,phase:1,pass"
SecRule ARGS "!@rx a" "id:3,phase:1,pass"
SecRule ARGS "@rx ^.*$" "id:4,phase:1,pass"
SecRule ARGS "@rx %{tx.x}" "id:5,phase:1,pass"
SecRule ARGS "@within abc" "id:6,phase:1,pass,chain"
    SecRule ARGS_NAMES "@detectSQLi" "t:none"
SecAction "id:7,phase:1,pass"
"#,
        );
        assert_eq!(
            got,
            vec![
                (1, Some(0)),
                (2, None),
                (3, None),
                (4, None),
                (5, None),
                (6, Some(1)),
                (6, Some(2)),
                (7, None),
            ]
        );
    }
}
