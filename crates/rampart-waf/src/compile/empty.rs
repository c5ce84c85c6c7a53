//! Links decided by empty response values: which links cannot match when
//! every value of their targets is empty, worked out once at load.
//!
//! A response whose body is not inspected (`SecResponseBodyAccess Off`, a
//! gateway's usual setup) gives `RESPONSE_BODY` one empty value in phases
//! 4 and 5 (none before), and most responses carry no
//! `Content-Encoding`. CRS tests about 45 links on those values per
//! exchange; each used to resolve its targets, then look the empty value
//! up in the value memo or the prefilter unions to find nothing.
//!
//! Why the shortcut is exact: a link whose every value is the empty byte
//! string tests that same value once per value. When its transformations
//! and operator are pure functions of the value (literal arguments only,
//! as `verdicts` requires for the value memo) and not negated, the test
//! of the empty value has one outcome, computed here by running them; a
//! link with no value at all matches nothing either, negated or not.
//! Finding nothing has no side effect (captures are written on a match
//! only). Target exclusions, static or by `ctl`, only remove values. So
//! when the test finds nothing and, at run time, all values of the
//! targets are empty (`Transaction::empty_misses`), the link finds
//! nothing: what resolving and testing them would give.

use std::borrow::Cow;

use crate::parser::{Selector, Variable};

use super::operator::{Arg, CompiledOp};
use super::rule::CompiledRule;

/// A target whose values are known to be empty (or absent) by a cheap
/// run-time look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmptyTarget {
    /// `RESPONSE_BODY` (with or without a selector, which a scalar
    /// ignores): empty exactly when the buffered body is.
    Body,
    /// `RESPONSE_HEADERS:name`: empty when no header of that name
    /// (ignoring ASCII case) has a non-empty value.
    Header(Box<str>),
}

/// Gives every qualifying link its targets (see the module).
pub(super) fn assign(rules: &mut [CompiledRule]) {
    for rule in rules {
        let mut link = Some(rule);
        while let Some(l) = link {
            l.empty_miss = plan(l);
            link = l.chain.as_deref_mut();
        }
    }
}

/// The link's targets when it qualifies: every target is one of
/// [`EmptyTarget`], and its test of the empty value finds nothing.
fn plan(link: &CompiledRule) -> Option<Box<[EmptyTarget]>> {
    if link.negated || link.is_action_only() || link.tx_compare.is_some() {
        return None;
    }
    let targets = link
        .targets
        .iter()
        .map(|t| match (t.variable, &t.selector, t.count) {
            (_, _, true) => None,
            (Variable::ResponseBody, _, false) => Some(EmptyTarget::Body),
            (Variable::ResponseHeaders, Some(Selector::Key(k)), false) => {
                Some(EmptyTarget::Header(k.as_str().into()))
            }
            _ => None,
        })
        .collect::<Option<Box<[_]>>>()?;
    (!finds_in_empty(link)?).then_some(targets)
}

/// Whether the link's test of the empty value matches (`multiMatch`:
/// any intermediate form); `None` when the operator is not one run here.
fn finds_in_empty(link: &CompiledRule) -> Option<bool> {
    let mut value: Cow<'_, [u8]> = Cow::Borrowed(b"");
    if link.multi_match && matches(&link.operator, &value)? {
        return Some(true);
    }
    for t in &link.transforms {
        value = Cow::Owned(t.apply(&value).into_owned());
        if link.multi_match && matches(&link.operator, &value)? {
            return Some(true);
        }
    }
    matches(&link.operator, &value)
}

/// The operator on `value`, as `Transaction::run_operator` runs it (not
/// negated), for the operators whose result depends on the value and
/// literal arguments alone.
fn matches(op: &CompiledOp, value: &[u8]) -> Option<bool> {
    let literal = |arg: &Arg| match arg {
        Arg::Literal(bytes) => Some(bytes.to_vec()),
        Arg::Macro(_) => None,
    };
    Some(match op {
        CompiledOp::Rx(re) => re.is_match(value),
        CompiledOp::Pm(pm) => pm.automaton.find(value).is_some(),
        CompiledOp::Contains(a) => memchr::memmem::find(value, &literal(a)?).is_some(),
        CompiledOp::StrEq(a) => value == literal(a)?,
        CompiledOp::BeginsWith(a) => value.starts_with(&literal(a)?),
        CompiledOp::EndsWith(a) => value.ends_with(&literal(a)?),
        CompiledOp::NoMatch => false,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::EmptyTarget;
    use crate::compile::RuleSet;

    fn plans(text: &str) -> Vec<(u64, Option<Vec<EmptyTarget>>)> {
        let set = RuleSet::from_text(text).expect("loads");
        set.rules()
            .iter()
            .flat_map(|r| r.links())
            .map(|l| (l.id, l.empty_miss.as_ref().map(|t| t.to_vec())))
            .collect()
    }

    /// Links over response bodies and keyed response headers qualify when
    /// their test of the empty value finds nothing; negation, counts,
    /// other variables, operators matching the empty value (directly, or
    /// on a transformed form such as `t:length`'s "0") and macros do not.
    #[test]
    fn only_links_missing_the_empty_value_qualify() {
        let got = plans(
            r#"
SecRule RESPONSE_BODY "@rx a" "id:1,phase:4,pass"
SecRule RESPONSE_HEADERS:Content-Encoding|RESPONSE_BODY "@pm gzip br" "id:2,phase:4,pass"
SecRule RESPONSE_BODY "!@pm x" "id:3,phase:4,pass"
SecRule RESPONSE_BODY "@rx ^$" "id:4,phase:4,pass"
SecRule RESPONSE_BODY "@rx 0" "id:5,phase:4,pass,t:length"
SecRule RESPONSE_BODY "@rx 0" "id:6,phase:4,pass,t:none"
SecRule &RESPONSE_BODY "@rx a" "id:7,phase:4,pass"
SecRule RESPONSE_BODY|ARGS "@rx a" "id:8,phase:4,pass"
SecRule RESPONSE_HEADERS "@rx a" "id:9,phase:4,pass"
SecRule RESPONSE_BODY "@contains %{tx.x}" "id:10,phase:4,pass"
SecRule RESPONSE_BODY "@rx 0" "id:11,phase:4,pass,t:length,t:lowercase,multiMatch"
SecRule RESPONSE_BODY "@contains x" "id:12,phase:4,pass,chain"
    SecRule RESPONSE_BODY "@beginsWith y" "t:none"
"#,
        );
        let body = || Some(vec![EmptyTarget::Body]);
        assert_eq!(
            got,
            vec![
                (1, body()),
                (
                    2,
                    Some(vec![
                        EmptyTarget::Header("Content-Encoding".into()),
                        EmptyTarget::Body
                    ])
                ),
                (3, None),
                (4, None),
                (5, None),
                (6, body()),
                (7, None),
                (8, None),
                (9, None),
                (10, None),
                (11, None),
                (12, body()),
                (12, body()),
            ]
        );
    }
}
