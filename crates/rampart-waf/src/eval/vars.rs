//! Variable resolution: a rule's targets → the values its operator
//! inspects, with selectors, `&` counting and `!` exclusions (static ones
//! and those added by `ctl:ruleRemoveTarget*`).
//!
//! Values are shared ([`Shared`]): resolving a target clones reference
//! counts, never bytes, and the logged name (`ARGS:id`) is only built when
//! a value matched.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::compile::{CompiledRule, KeyMatcher, RuleSet};
use crate::parser::{BodyProcessor, Collection, Selector, Target, Variable};

use super::data::{Bytes, Coll, Store};
use super::{TargetScope, Transaction};

/// `var.name()` as a shared string, without the parser's linear table
/// scan; the name of every matched keyless value is a clone of it (one
/// reference count instead of an allocation per match).
fn variable_name(var: Variable) -> &'static Arc<str> {
    static NAMES: OnceLock<Vec<Arc<str>>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut names: Vec<Arc<str>> = Vec::new();
        for v in Variable::all() {
            let i = v as usize;
            if names.len() <= i {
                names.resize(i + 1, Arc::from(""));
            }
            names[i] = Arc::from(v.name());
        }
        names
    });
    // Every variant is in `Variable::all()`, so the index is always there.
    &names[var as usize]
}

/// `&VAR` counts from 0 to this are shared values built once.
pub(super) const SHARED_COUNTS: usize = 64;

/// A `&` count as a value: counts up to `SHARED_COUNTS` are clones of
/// values built once (a reference count instead of two allocations per
/// counted target; a value is immutable, so sharing it across transactions
/// cannot change what any of them sees).
pub(super) fn count_value(n: usize) -> Bytes {
    static COUNTS: OnceLock<Vec<Bytes>> = OnceLock::new();
    let counts = COUNTS.get_or_init(|| {
        (0..=SHARED_COUNTS)
            .map(|i| Bytes::from(i.to_string().as_bytes()))
            .collect()
    });
    match counts.get(n) {
        Some(shared) => shared.clone(),
        None => n.to_string().into_bytes().into(),
    }
}

/// `var.is_collection()` without the parser's linear table scan (it runs
/// once per target of every rule evaluated).
pub(crate) fn is_collection(var: Variable) -> bool {
    static KINDS: OnceLock<Vec<bool>> = OnceLock::new();
    let kinds = KINDS.get_or_init(|| {
        let mut kinds = Vec::new();
        for v in Variable::all() {
            let i = v as usize;
            if kinds.len() <= i {
                kinds.resize(i + 1, false);
            }
            kinds[i] = v.is_collection();
        }
        kinds
    });
    kinds.get(var as usize).copied().unwrap_or(false)
}

/// Variables whose values only change through the setters and the body
/// processor, which all call `Transaction::invalidate_scalars`: the union
/// of their prefilter bits can be kept until then (see
/// `Transaction::link_rejected`).
pub(crate) fn request_fixed(var: Variable) -> bool {
    matches!(
        var,
        Variable::Args
            | Variable::ArgsGet
            | Variable::ArgsPost
            | Variable::ArgsNames
            | Variable::ArgsGetNames
            | Variable::ArgsPostNames
            | Variable::RequestHeaders
            | Variable::RequestHeadersNames
            | Variable::RequestCookies
            | Variable::RequestCookiesNames
            | Variable::RequestFilename
            | Variable::RequestBasename
            | Variable::RequestMethod
            | Variable::RequestProtocol
            | Variable::RequestUri
            | Variable::RequestUriRaw
            | Variable::QueryString
            | Variable::RequestLine
            | Variable::RequestBody
            | Variable::ResponseBody
    )
}

/// Bytes shared with the transaction's data (or computed once).
#[derive(Clone, Debug)]
pub(crate) enum Shared {
    Bytes(Bytes),
    /// A collection key used as a value (`ARGS_NAMES`).
    Text(Arc<str>),
}

impl Shared {
    /// Identity of the shared allocation (with the length), the key of the
    /// transformation cache: the cache keeps a clone, so it stays unique.
    pub fn identity(&self) -> (usize, usize) {
        (self.as_ptr() as usize, self.len())
    }
}

impl Deref for Shared {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Shared::Bytes(b) => b,
            Shared::Text(t) => t.as_bytes(),
        }
    }
}

impl From<Vec<u8>> for Shared {
    fn from(v: Vec<u8>) -> Shared {
        Shared::Bytes(v.into())
    }
}

/// One value a target produced.
#[derive(Clone, Debug)]
pub(super) struct Value {
    pub value: Shared,
    variable: Option<Variable>,
    key: Option<Arc<str>>,
}

impl Value {
    pub fn new(variable: Option<Variable>, value: Shared) -> Value {
        Value {
            value,
            variable,
            key: None,
        }
    }

    /// As logged: `ARGS:id`, `REQUEST_URI`. Built for every matched value,
    /// so in one allocation (the usual short name is joined on the stack).
    pub fn name(&self) -> Arc<str> {
        let Some(var) = self.variable else {
            return Arc::from("");
        };
        let shared_name = variable_name(var);
        let Some(key) = &self.key else {
            // A keyless value's name is the variable's: shared, not built.
            return shared_name.clone();
        };
        let (var_name, key_text) = (&**shared_name, &**key);
        let (var, key) = (var_name.as_bytes(), key_text.as_bytes());
        let mut joined = [0u8; 96];
        let len = var.len() + 1 + key.len();
        if let Some(buf) = joined.get_mut(..len) {
            buf[..var.len()].copy_from_slice(var);
            buf[var.len()] = b':';
            buf[var.len() + 1..].copy_from_slice(key);
            // Two strings and a `:`: always UTF-8.
            if let Ok(name) = std::str::from_utf8(buf) {
                return Arc::from(name);
            }
        }
        Arc::from(format!("{var_name}:{key_text}"))
    }
}

impl<'r> Transaction<'r> {
    /// All values of the link's targets, minus exclusions, into `out`.
    /// `runtime` is `has_runtime_exclusions(head)`, which the caller has
    /// already asked (it scans the ctl scopes: asked once per resolution).
    pub(super) fn resolve_targets(
        &self,
        head: &CompiledRule,
        link: &CompiledRule,
        runtime: bool,
        out: &mut Vec<Value>,
    ) {
        debug_assert_eq!(runtime, self.has_runtime_exclusions(head));
        // With some `ctl:ruleRemoveTarget*` naming `head` (CRS 941010
        // adds one on almost every request), the targets it removes are
        // read in place for each value, not collected into a new vector at
        // every resolution.
        for target in &link.targets {
            let start = out.len();
            self.target_values(target, out);
            // Every value a target gives is of the target's variable (see
            // `target_values`), and an exclusion only removes values of
            // the variable it names: when none names this one, no value
            // can be removed, and none is tested.
            let var = target.variable;
            let names_var = |ex: &Target| ex.variable == var;
            let named = link.exclusions.iter().any(names_var)
                || (runtime && self.runtime_exclusions(head).any(names_var));
            if !named {
                continue;
            }
            // Kept values slide down in place, in one pass: the survivors
            // and their order are exactly those of a `remove` per excluded
            // value (each value is still tested once, against the same
            // exclusions), without shifting the tail for every removal.
            // Values are only moved once one was excluded.
            let mut kept = start;
            for i in start..out.len() {
                let excluded = link
                    .exclusions
                    .iter()
                    .chain(self.runtime_exclusions(head))
                    .any(|ex| self.excludes(ex, &out[i]));
                if excluded {
                    continue;
                }
                if kept != i {
                    out.swap(kept, i);
                }
                kept += 1;
            }
            out.truncate(kept);
        }
    }

    /// True when some `ctl:ruleRemoveTarget*` for `head` names `var`.
    pub(super) fn excludes_at_run_time(&self, head: &CompiledRule, var: Variable) -> bool {
        self.ov.removed_targets.iter().any(|(scope, targets)| {
            targets.iter().any(|t| t.variable == var) && scope_applies(scope, head)
        })
    }

    /// True when some `ctl:ruleRemoveTarget*` applies to `head`.
    pub(super) fn has_runtime_exclusions(&self, head: &CompiledRule) -> bool {
        self.ov
            .removed_targets
            .iter()
            .any(|(scope, _)| scope_applies(scope, head))
    }

    /// The targets `ctl:ruleRemoveTarget*` removed from `head`.
    pub(super) fn runtime_exclusions<'a>(
        &'a self,
        head: &'a CompiledRule,
    ) -> impl Iterator<Item = &'a Target> + 'a {
        removals_for(&self.ov.removed_targets, head)
    }

    fn excludes(&self, ex: &Target, value: &Value) -> bool {
        value
            .variable
            .is_some_and(|var| exclusion_removes(self.rules, ex, var, value.key.as_deref()))
    }

    fn selector_matches(&self, selector: &Selector, key: &str) -> bool {
        selector_matches(self.rules, selector, key)
    }

    /// Appends the values of one target to `out` (never excluded ones:
    /// see `resolve_targets`). Every value is of `target.variable`
    /// (`resolve_targets` relies on it).
    pub(super) fn target_values(&self, target: &Target, out: &mut Vec<Value>) {
        let var = target.variable;
        let start = out.len();
        if is_collection(var) {
            self.members(var, target.selector.as_ref(), out);
        } else if let Some(value) = self.scalar_shared(var) {
            out.push(Value::new(Some(var), value));
        }
        if target.count {
            let n = out.len() - start;
            out.truncate(start);
            out.push(Value::new(Some(var), Shared::Bytes(count_value(n))));
        }
    }

    /// The selected members of a collection variable.
    fn members(&self, var: Variable, selector: Option<&Selector>, out: &mut Vec<Value>) {
        let req = &self.req;
        let mut coll = |c: &Coll, names: bool| self.push_coll(var, c, names, selector, out);
        match var {
            Variable::Args => {
                coll(&req.args_get, false);
                coll(&req.args_post, false);
            }
            Variable::ArgsGet => coll(&req.args_get, false),
            Variable::ArgsPost => coll(&req.args_post, false),
            Variable::ArgsNames => {
                coll(&req.args_get, true);
                coll(&req.args_post, true);
            }
            Variable::ArgsGetNames => coll(&req.args_get, true),
            Variable::ArgsPostNames => coll(&req.args_post, true),
            Variable::RequestHeaders => coll(&req.headers, false),
            Variable::RequestHeadersNames => coll(&req.headers, true),
            Variable::RequestCookies => coll(&req.cookies, false),
            Variable::RequestCookiesNames => coll(&req.cookies, true),
            Variable::ResponseHeaders => coll(&self.res.headers, false),
            Variable::ResponseHeadersNames => coll(&self.res.headers, true),
            Variable::MultipartPartHeaders => coll(&req.multipart_part_headers, false),
            Variable::MatchedVars => coll(&self.matched_vars, false),
            Variable::MatchedVarsNames => coll(&self.matched_vars, true),
            Variable::Files => self.files(var, selector, out, |f| f.filename.as_bytes().to_vec()),
            Variable::FilesNames => self.files(var, selector, out, |f| f.field.as_bytes().to_vec()),
            Variable::FilesSizes => {
                self.files(var, selector, out, |f| f.size.to_string().into_bytes())
            }
            Variable::Tx => self.push_store(var, &self.tx, selector, out),
            Variable::Env => self.push_store(var, &self.env, selector, out),
            Variable::Rule => self.rule_members(selector, out),
            Variable::Xml => xml(req, selector, out),
            Variable::Ip => self.persistent(var, Collection::Ip, selector, out),
            Variable::Global => self.persistent(var, Collection::Global, selector, out),
            Variable::Session => self.persistent(var, Collection::Session, selector, out),
            Variable::User => self.persistent(var, Collection::User, selector, out),
            Variable::Resource => self.persistent(var, Collection::Resource, selector, out),
            _ => {}
        }
    }

    fn selected(&self, selector: Option<&Selector>, key: &str) -> bool {
        match selector {
            Some(sel @ (Selector::Key(_) | Selector::Regex(_))) => self.selector_matches(sel, key),
            _ => true,
        }
    }

    /// `selected` with the selector resolved once, for all the keys of a
    /// collection.
    fn key_filter<'s>(&'s self, selector: Option<&'s Selector>) -> KeyFilter<'s> {
        match selector {
            Some(Selector::Key(k)) => KeyFilter::Key(k),
            Some(Selector::Regex(r)) => KeyFilter::Regex(self.rules.key_matcher(r)),
            _ => KeyFilter::All,
        }
    }

    fn push_coll(
        &self,
        var: Variable,
        c: &Coll,
        names: bool,
        selector: Option<&Selector>,
        out: &mut Vec<Value>,
    ) {
        if c.entries.is_empty() {
            // Nothing to select: skip resolving the selector.
            return;
        }
        let filter = self.key_filter(selector);
        for (key, value) in &c.entries {
            if !filter.picks(key) {
                continue;
            }
            let value = if names {
                Shared::Text(key.clone())
            } else {
                Shared::Bytes(value.clone())
            };
            out.push(Value {
                value,
                variable: Some(var),
                key: Some(key.clone()),
            });
        }
    }

    /// TX, ENV and the persistent collections: keys are stored lower-case,
    /// so a plain key selector is one lookup.
    fn push_store(
        &self,
        var: Variable,
        store: &Store,
        selector: Option<&Selector>,
        out: &mut Vec<Value>,
    ) {
        if let Some(Selector::Key(k)) = selector {
            // A `TX:key` target's key was made at load (its slot, no
            // hashing); any other key is looked up by its text.
            let found = match (var, self.rules.tx_key(k)) {
                (Variable::Tx, Some(known)) => store.entry_key(known),
                _ => store.entry(k),
            };
            if let Some((key, value)) = found {
                out.push(Value {
                    value: Shared::Bytes(value.clone()),
                    variable: Some(var),
                    key: Some(key.clone()),
                });
            }
            return;
        }
        let start = out.len();
        let filter = self.key_filter(selector);
        // Store keys are in ASCII lower case; with none holding a line
        // break, a `^prefix` selector is a plain comparison (see
        // `KeyMatcher::matches_lower_single_line`), not a line search.
        let single_line = store.keys_single_line();
        let picks = |key: &str| match &filter {
            KeyFilter::Regex(m) if single_line => m.matches_lower_single_line(key),
            _ => filter.picks(key),
        };
        let mut push = |key: &Arc<str>, value: &Bytes| {
            out.push(Value {
                value: Shared::Bytes(value.clone()),
                variable: Some(var),
                key: Some(key.clone()),
            })
        };
        // The keys with a slot: when the selector's picks among them were
        // worked out at load, only the slots it picks are visited, and
        // need no test.
        match &filter {
            KeyFilter::Regex(m) => match m.slot_mask(store.index()) {
                Some(mask) => store.iter_slots(Some(mask)).for_each(|(k, v)| push(k, v)),
                None => store
                    .iter_slots(None)
                    .filter(|(k, _)| picks(k))
                    .for_each(|(k, v)| push(k, v)),
            },
            _ => store
                .iter_slots(None)
                .filter(|(k, _)| picks(k))
                .for_each(|(k, v)| push(k, v)),
        }
        store
            .iter_table()
            .filter(|(k, _)| picks(k))
            .for_each(|(k, v)| push(k, v));
        // In key order (the store is a hash map; see `Store`).
        out[start..].sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }

    fn persistent(
        &self,
        var: Variable,
        c: Collection,
        selector: Option<&Selector>,
        out: &mut Vec<Value>,
    ) {
        if let Some(store) = self.collections.get(&c) {
            self.push_store(var, store, selector, out);
        }
    }

    fn files(
        &self,
        var: Variable,
        selector: Option<&Selector>,
        out: &mut Vec<Value>,
        f: impl Fn(&super::data::FilePart) -> Vec<u8>,
    ) {
        for part in &self.req.files {
            if self.selected(selector, &part.field) {
                out.push(Value {
                    value: f(part).into(),
                    variable: Some(var),
                    key: Some(part.field.as_str().into()),
                });
            }
        }
    }

    fn rule_members(&self, selector: Option<&Selector>, out: &mut Vec<Value>) {
        let Some(rule) = self.current else {
            return;
        };
        let mut members = vec![
            ("id", rule.id.to_string().into_bytes()),
            ("phase", rule.phase.number().to_string().into_bytes()),
            ("operator", rule.operator_text.clone().into_bytes()),
        ];
        if let Some(msg) = &rule.meta.msg {
            members.push(("msg", msg.raw().as_bytes().to_vec()));
        }
        if let Some(sev) = rule.meta.severity {
            members.push(("severity", sev.number().to_string().into_bytes()));
        }
        if let Some(ver) = &rule.meta.ver {
            members.push(("ver", ver.clone().into_bytes()));
        }
        for (key, value) in members {
            if self.selected(selector, key) {
                out.push(Value {
                    value: value.into(),
                    variable: Some(Variable::Rule),
                    key: Some(key.into()),
                });
            }
        }
    }

    /// The first value of `variable[:key]`, for macros (`%{tx.score}`).
    pub(super) fn lookup(&self, variable: Variable, key: Option<&str>) -> Option<Shared> {
        if !is_collection(variable) {
            return self.scalar_shared(variable);
        }
        if let (Variable::Tx, Some(key)) = (variable, key) {
            return self.tx.get_shared(key).cloned().map(Shared::Bytes);
        }
        let target = Target {
            variable,
            selector: key.map(|k| Selector::Key(k.to_string())),
            count: false,
            exclude: false,
        };
        let mut out = Vec::new();
        self.target_values(&target, &mut out);
        out.into_iter().next().map(|v| v.value)
    }
}

/// Whether a `ctl:ruleRemoveTarget*` scope names the rule `head`.
/// Whether an exclusion's `selector` picks the value under `key`.
/// Whether the exclusion `ex` removes the value of `var` under `key`
/// (`None`: a scalar's value, which only an exclusion of the whole
/// variable removes).
pub(super) fn exclusion_removes(
    rules: &RuleSet,
    ex: &Target,
    var: Variable,
    key: Option<&str>,
) -> bool {
    ex.variable == var
        && match (&ex.selector, key) {
            (None, _) => true,
            (Some(sel), Some(key)) => selector_matches(rules, sel, key),
            (Some(_), None) => false,
        }
}

/// The targets the `ctl:ruleRemoveTarget*` removals `removed` take out of
/// `head`.
pub(super) fn removals_for<'a>(
    removed: &'a [(TargetScope, Vec<Target>)],
    head: &'a CompiledRule,
) -> impl Iterator<Item = &'a Target> + 'a {
    removed
        .iter()
        .filter(move |(scope, _)| scope_applies(scope, head))
        .flat_map(|(_, targets)| targets.iter())
}

pub(super) fn selector_matches(rules: &RuleSet, selector: &Selector, key: &str) -> bool {
    match selector {
        Selector::Key(k) => k.eq_ignore_ascii_case(key),
        Selector::Regex(r) => rules.selector_matches(r, key),
        Selector::XPath(_) => true,
    }
}

pub(super) fn scope_applies(scope: &TargetScope, head: &CompiledRule) -> bool {
    match scope {
        TargetScope::Ids(ranges) => ranges.iter().any(|r| r.contains(head.id)),
        TargetScope::Tag(tag) => tag.applies(head),
    }
}

/// A target's selector, resolved for testing many keys.
enum KeyFilter<'s> {
    All,
    /// A plain key, compared ignoring case.
    Key(&'s str),
    Regex(KeyMatcher<'s>),
}

impl KeyFilter<'_> {
    fn picks(&self, key: &str) -> bool {
        match self {
            KeyFilter::All => true,
            KeyFilter::Key(k) => k.eq_ignore_ascii_case(key),
            KeyFilter::Regex(m) => m.matches(key),
        }
    }
}

/// `XML:/*` (all text) and `XML://@*` (all attribute values): the two
/// XPath forms CRS uses. Other expressions select all text.
fn xml(req: &super::data::Request, selector: Option<&Selector>, out: &mut Vec<Value>) {
    let attrs = matches!(selector, Some(Selector::XPath(x)) if x.contains('@'));
    if req.processor != Some(BodyProcessor::Xml) {
        return;
    }
    let source = if attrs { &req.xml_attrs } else { &req.xml_text };
    let key: Arc<str> = Arc::from("");
    let mut push = |value: Vec<u8>| {
        out.push(Value {
            value: value.into(),
            variable: Some(Variable::Xml),
            key: Some(key.clone()),
        })
    };
    if attrs {
        source.iter().for_each(|v| push(v.clone()));
    } else {
        // `/*` is the document's whole text content, one value.
        push(source.concat());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(variable: Option<Variable>, key: &str) -> Value {
        Value {
            value: Shared::Text(Arc::from("v")),
            variable,
            key: Some(Arc::from(key)),
        }
    }

    #[test]
    fn value_names_join_variable_and_key() {
        let args = keyed(Some(Variable::Args), "id");
        assert_eq!(&*args.name(), "ARGS:id");
        let scalar = Value::new(Some(Variable::RequestUri), Shared::Text(Arc::from("/")));
        assert_eq!(&*scalar.name(), "REQUEST_URI");
        assert_eq!(&*keyed(None, "id").name(), "");
    }

    #[test]
    fn long_and_non_ascii_keys_are_named_in_full() {
        let long = "k".repeat(300);
        let name = keyed(Some(Variable::RequestHeaders), &long).name();
        assert_eq!(&*name, format!("REQUEST_HEADERS:{long}"));
        let accented = keyed(Some(Variable::Args), "café");
        assert_eq!(&*accented.name(), "ARGS:café");
    }

    #[test]
    fn shared_variable_names_are_the_parser_names() {
        for var in Variable::all() {
            assert_eq!(&**variable_name(var), var.name(), "{var:?}");
            let value = Value::new(Some(var), Shared::Text(Arc::from("v")));
            assert_eq!(&*value.name(), var.name(), "{var:?}");
        }
    }

    fn matched(set: &crate::RuleSet, uri: &str, headers: &[(&str, &[u8])]) -> Vec<u64> {
        let mut tx = Transaction::new(set);
        tx.set_request_line("GET", uri, "HTTP/1.1");
        for (name, value) in headers {
            tx.add_request_header(name, value);
        }
        tx.process_request_headers();
        tx.matched_rules().iter().map(|m| m.id).collect()
    }

    #[test]
    fn exclusions_remove_values_of_the_variables_they_name_only() {
        // Rule 1 excludes `ARGS:a` statically; 3 removes `REQUEST_HEADERS:x-a`
        // from rule 2 at run time. Targets no exclusion names keep all
        // their values, those named lose exactly the excluded ones.
        let set = crate::RuleSet::from_text(
            "SecRuleEngine On\n\
             SecRule ARGS|!ARGS:a|REQUEST_HEADERS:X-A|ARGS_NAMES \"@rx evil\" \"id:1,phase:1,pass\"\n\
             SecAction \"id:3,phase:1,pass,ctl:ruleRemoveTargetById=2;REQUEST_HEADERS:x-a\"\n\
             SecRule REQUEST_HEADERS|ARGS \"@rx evil\" \"id:2,phase:1,pass\"",
        )
        .unwrap();
        assert_eq!(matched(&set, "/?a=evil&b=ok", &[]), [3, 2]);
        assert_eq!(matched(&set, "/?a=ok&b=evil", &[]), [1, 3, 2]);
        assert_eq!(matched(&set, "/?evil=1", &[]), [1, 3]);
        assert_eq!(matched(&set, "/", &[("X-A", b"evil")]), [1, 3]);
        assert_eq!(matched(&set, "/", &[("X-B", b"evil")]), [3, 2]);
    }

    #[test]
    fn counts_are_decimal_in_and_beyond_the_shared_range() {
        for n in [0, 1, 9, 10, SHARED_COUNTS, SHARED_COUNTS + 1, 1000] {
            assert_eq!(&*count_value(n), n.to_string().as_bytes(), "{n}");
        }
    }
}
