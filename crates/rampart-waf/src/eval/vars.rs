//! Variable resolution: a rule's targets → the (name, value) pairs its
//! operator inspects, with selectors, `&` counting and `!` exclusions
//! (static ones and those added by `ctl:ruleRemoveTarget*`).

use crate::compile::CompiledRule;
use crate::parser::{Collection, Selector, Target, Variable};

use super::data::Coll;
use super::{TargetScope, Transaction};

/// One value a target produced.
#[derive(Clone, Debug)]
pub(super) struct Value {
    /// As logged: `ARGS:id`, `REQUEST_URI`.
    pub name: String,
    pub value: Vec<u8>,
    variable: Option<Variable>,
    key: Option<String>,
}

impl Value {
    pub fn new(name: String, value: Vec<u8>) -> Value {
        Value {
            name,
            value,
            variable: None,
            key: None,
        }
    }
}

/// A collection member before selection: the key and the value.
type Member = (String, Vec<u8>);

impl<'r> Transaction<'r> {
    /// All values of the link's targets, minus exclusions.
    pub(super) fn resolve_targets(&self, head: &CompiledRule, link: &CompiledRule) -> Vec<Value> {
        let runtime = self.runtime_exclusions(head);
        let mut out = Vec::new();
        for target in &link.targets {
            for value in self.target_values(target) {
                let excluded = link
                    .exclusions
                    .iter()
                    .chain(runtime.iter().copied())
                    .any(|ex| self.excludes(ex, &value));
                if !excluded {
                    out.push(value);
                }
            }
        }
        out
    }

    fn runtime_exclusions(&self, head: &CompiledRule) -> Vec<&Target> {
        self.ov
            .removed_targets
            .iter()
            .filter(|(scope, _)| match scope {
                TargetScope::Ids(ranges) => ranges.iter().any(|r| r.contains(head.id)),
                TargetScope::Tag(tag) => head.has_tag(tag),
            })
            .flat_map(|(_, targets)| targets.iter())
            .collect()
    }

    fn excludes(&self, ex: &Target, value: &Value) -> bool {
        if value.variable != Some(ex.variable) {
            return false;
        }
        match (&ex.selector, &value.key) {
            (None, _) => true,
            (Some(sel), Some(key)) => self.selector_matches(sel, key),
            (Some(_), None) => false,
        }
    }

    fn selector_matches(&self, selector: &Selector, key: &str) -> bool {
        match selector {
            Selector::Key(k) => k.eq_ignore_ascii_case(key),
            Selector::Regex(r) => self
                .rules
                .dynamic_regex(r, true)
                .is_some_and(|re| re.is_match(key.as_bytes())),
            Selector::XPath(_) => true,
        }
    }

    /// The values of one target (never excluded ones: see `resolve_targets`).
    pub(super) fn target_values(&self, target: &Target) -> Vec<Value> {
        let var = target.variable;
        let values: Vec<Value> = if var.is_collection() {
            let members = self.members(var, target.selector.as_ref());
            let members = members.into_iter().filter(|(k, _)| match &target.selector {
                Some(sel @ (Selector::Key(_) | Selector::Regex(_))) => {
                    self.selector_matches(sel, k)
                }
                _ => true,
            });
            members
                .map(|(key, value)| Value {
                    name: format!("{}:{key}", var.name()),
                    value,
                    variable: Some(var),
                    key: Some(key),
                })
                .collect()
        } else {
            self.scalar(var)
                .map(|value| Value {
                    name: var.name().to_string(),
                    value,
                    variable: Some(var),
                    key: None,
                })
                .into_iter()
                .collect()
        };
        if target.count {
            let name = var.name().to_string();
            return vec![Value::new(name, values.len().to_string().into_bytes())];
        }
        values
    }

    /// The members of a collection variable (selection happens later,
    /// except for XPath, which picks the member set itself).
    fn members(&self, var: Variable, selector: Option<&Selector>) -> Vec<Member> {
        let req = &self.req;
        match var {
            Variable::Args => chain(&req.args_get, &req.args_post),
            Variable::ArgsGet => entries(&req.args_get),
            Variable::ArgsPost => entries(&req.args_post),
            Variable::ArgsNames => names(chain(&req.args_get, &req.args_post)),
            Variable::ArgsGetNames => names(entries(&req.args_get)),
            Variable::ArgsPostNames => names(entries(&req.args_post)),
            Variable::RequestHeaders => entries(&req.headers),
            Variable::RequestHeadersNames => names(entries(&req.headers)),
            Variable::RequestCookies => entries(&req.cookies),
            Variable::RequestCookiesNames => names(entries(&req.cookies)),
            Variable::ResponseHeaders => entries(&self.res.headers),
            Variable::ResponseHeadersNames => names(entries(&self.res.headers)),
            Variable::Files => files(req, |f| f.filename.as_bytes().to_vec()),
            Variable::FilesNames => files(req, |f| f.field.as_bytes().to_vec()),
            Variable::FilesSizes => files(req, |f| f.size.to_string().into_bytes()),
            Variable::MultipartPartHeaders => entries(&req.multipart_part_headers),
            Variable::Tx => store(&self.tx.values),
            Variable::Env => store(&self.env.values),
            Variable::MatchedVars => entries(&self.matched_vars),
            Variable::MatchedVarsNames => names(entries(&self.matched_vars)),
            Variable::Rule => self.rule_members(),
            Variable::Xml => xml(req, selector),
            Variable::Ip => self.persistent(Collection::Ip),
            Variable::Global => self.persistent(Collection::Global),
            Variable::Session => self.persistent(Collection::Session),
            Variable::User => self.persistent(Collection::User),
            Variable::Resource => self.persistent(Collection::Resource),
            _ => Vec::new(),
        }
    }

    fn persistent(&self, c: Collection) -> Vec<Member> {
        self.collections
            .get(&c)
            .map(|s| store(&s.values))
            .unwrap_or_default()
    }

    fn rule_members(&self) -> Vec<Member> {
        let Some(rule) = self.current else {
            return Vec::new();
        };
        let mut out = vec![
            ("id".to_string(), rule.id.to_string().into_bytes()),
            (
                "phase".to_string(),
                rule.phase.number().to_string().into_bytes(),
            ),
            (
                "operator".to_string(),
                rule.operator_text.clone().into_bytes(),
            ),
        ];
        if let Some(msg) = &rule.meta.msg {
            out.push(("msg".into(), msg.raw().as_bytes().to_vec()));
        }
        if let Some(sev) = rule.meta.severity {
            out.push(("severity".into(), sev.number().to_string().into_bytes()));
        }
        if let Some(ver) = &rule.meta.ver {
            out.push(("ver".into(), ver.clone().into_bytes()));
        }
        out
    }

    /// The first value of `variable[:key]`, for macros (`%{tx.score}`).
    pub(super) fn lookup(&self, variable: Variable, key: Option<&str>) -> Option<Vec<u8>> {
        if !variable.is_collection() {
            return self.scalar(variable);
        }
        let target = Target {
            variable,
            selector: key.map(|k| Selector::Key(k.to_string())),
            count: false,
            exclude: false,
        };
        self.target_values(&target)
            .into_iter()
            .next()
            .map(|v| v.value)
    }
}

fn entries(c: &Coll) -> Vec<Member> {
    c.entries.clone()
}

fn chain(a: &Coll, b: &Coll) -> Vec<Member> {
    a.entries.iter().chain(&b.entries).cloned().collect()
}

/// `*_NAMES`: each key, as both key and value.
fn names(members: Vec<Member>) -> Vec<Member> {
    members
        .into_iter()
        .map(|(k, _)| (k.clone(), k.into_bytes()))
        .collect()
}

fn store(values: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<Member> {
    values.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn files(req: &super::data::Request, f: impl Fn(&super::data::FilePart) -> Vec<u8>) -> Vec<Member> {
    req.files.iter().map(|p| (p.field.clone(), f(p))).collect()
}

/// `XML:/*` (all text) and `XML://@*` (all attribute values): the two
/// XPath forms CRS uses. Other expressions select all text.
fn xml(req: &super::data::Request, selector: Option<&Selector>) -> Vec<Member> {
    let attrs = matches!(selector, Some(Selector::XPath(x)) if x.contains('@'));
    let source = if attrs { &req.xml_attrs } else { &req.xml_text };
    if req.processor != Some("XML") {
        return Vec::new();
    }
    if attrs {
        return source.iter().map(|v| (String::new(), v.clone())).collect();
    }
    // `/*` is the document's whole text content, one value.
    let joined: Vec<u8> = source.concat();
    vec![(String::new(), joined)]
}
