//! Rules whose whole effect on a transaction is a function of its TX
//! collection: the initialisation `SecAction`s and `&TX:x "@eq 0"` defaults
//! of CRS (REQUEST-901) and of its setup file. A run of such rules at the
//! start of phase 1 does the same thing on every request that reaches it
//! with an empty TX, so its outcome can be computed once at load (see
//! `eval::snapshot`).
//!
//! "Pure" here is decided on the compiled rule alone, conservatively: every
//! link reads nothing but TX (targets, macros in operator arguments, `msg`,
//! `logdata` and `setvar`s) and writes nothing but TX (`setvar` on TX,
//! `capture`); no `ctl`, `initcol`, `setenv`, `setuid`/`setsid` or
//! `expirevar`. Operators and transformations are deterministic functions
//! of their input (the compiled operators have no clock, network or file
//! access at run time).

use crate::parser::{Action, Collection, SetVarOp, Template, TemplatePart, Variable};

use super::operator::{Arg, CompiledOp};
use super::{CompiledRule, Entry};

/// True when every macro of `t` reads TX.
fn template_pure(t: &Template) -> bool {
    t.parts().iter().all(|p| match p {
        TemplatePart::Literal(_) => true,
        TemplatePart::Macro(m) => m.variable == Variable::Tx,
    })
}

fn arg_pure(arg: &Arg) -> bool {
    match arg {
        Arg::Literal(_) => true,
        Arg::Macro(t) => template_pure(t),
    }
}

/// The operator reads nothing but its input and TX (through macros).
fn operator_pure(op: &CompiledOp) -> bool {
    match op {
        CompiledOp::RxMacro(t) => template_pure(t),
        CompiledOp::StrEq(a)
        | CompiledOp::Contains(a)
        | CompiledOp::ContainsWord(a)
        | CompiledOp::BeginsWith(a)
        | CompiledOp::EndsWith(a)
        | CompiledOp::Within(a)
        | CompiledOp::Compare(_, a) => arg_pure(a),
        CompiledOp::Rx(_)
        | CompiledOp::RxWhole
        | CompiledOp::Pm(_)
        | CompiledOp::IpMatch(_)
        | CompiledOp::ValidateByteRange(_)
        | CompiledOp::ValidateUrlEncoding
        | CompiledOp::ValidateUtf8Encoding
        | CompiledOp::DetectSqli
        | CompiledOp::DetectXss
        | CompiledOp::Unconditional
        | CompiledOp::NoMatch => true,
    }
}

/// A `setvar` on TX whose key and value read only TX; any other per-match
/// action is not pure.
fn action_pure(action: &Action) -> bool {
    let Action::SetVar(sv) = action else {
        return false;
    };
    let value_pure = match &sv.op {
        SetVarOp::Set(t) | SetVarOp::Add(t) | SetVarOp::Sub(t) => template_pure(t),
        SetVarOp::SetToOne | SetVarOp::Delete => true,
    };
    sv.var.collection == Collection::Tx && template_pure(&sv.var.key) && value_pure
}

fn link_pure(link: &CompiledRule) -> bool {
    let meta = &link.meta;
    link.targets.iter().all(|t| t.variable == Variable::Tx)
        && operator_pure(&link.operator)
        && link.effects.iter().all(|e| action_pure(&e.action))
        && meta.msg.as_ref().is_none_or(template_pure)
        && meta.logdata.as_ref().is_none_or(template_pure)
}

/// True when the rule (every link of its chain) is pure (see the module
/// documentation).
pub(crate) fn rule_pure(rule: &CompiledRule) -> bool {
    rule.links().all(link_pure)
}

/// The first run of pure rules in `program` (markers inside it included):
/// the index of its first rule and the index just after it.
pub(crate) fn first_pure_run(program: &[Entry], rules: &[CompiledRule]) -> Option<(usize, usize)> {
    let pure_at = |i: usize| match &program[i] {
        Entry::Rule(index) => rules.get(*index).is_some_and(rule_pure),
        Entry::Marker(_) => true,
    };
    let start = (0..program.len()).find(|&i| matches!(program[i], Entry::Rule(_)) && pure_at(i))?;
    let end = (start..program.len())
        .find(|&i| !pure_at(i))
        .unwrap_or(program.len());
    Some((start, end))
}
