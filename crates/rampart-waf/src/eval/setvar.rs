//! Data actions: `setvar` (set, `+=`, `-=`, delete) on TX and the
//! persistent collections, regex captures into `TX:0`–`TX:9`, and the
//! per-transaction `ctl:` switches.

use crate::parser::{
    BodyProcessor, Collection, Ctl, RuleSelector, SetVar, SetVarOp, Template, TemplatePart,
};

use super::data::{Bytes, Store, StoreKey};
use super::store::capture_keys;
use super::vars::{count_value, Shared, SHARED_COUNTS};
use super::{TargetScope, Transaction};
use crate::compile::Effect;

pub(super) use crate::compile::fast::to_int;

/// The key of a `setvar`: known at load (hashed then), or built from
/// request data.
#[derive(Clone, Copy)]
enum KeyRef<'a> {
    Known(&'a StoreKey),
    Text(&'a str),
}

impl KeyRef<'_> {
    fn is_empty(self) -> bool {
        match self {
            KeyRef::Known(key) => key.name().is_empty(),
            KeyRef::Text(key) => key.is_empty(),
        }
    }
}

impl<'r> Transaction<'r> {
    fn store_mut(&mut self, c: Collection) -> &mut Store {
        match c {
            Collection::Tx => &mut self.tx,
            other => self.collections.entry(other).or_default(),
        }
    }

    /// `setvar`; `prepared` holds what was prepared at load (the literal
    /// key in lower case and hashed, a literal value).
    pub(super) fn setvar(&mut self, sv: &SetVar, prepared: &Effect) {
        match (&prepared.key, sv.var.key.parts()) {
            (Some(key), _) => self.setvar_at(sv, prepared, KeyRef::Known(key)),
            (None, []) => {}
            (None, _) => {
                // Keys built from request data (`tx.header_name_920450_%{tx.0}`,
                // once per header) are expanded into a buffer kept for the
                // transaction: one allocation fewer per such setvar. The
                // text is the same as `expand_str`'s (lossy only for
                // non-UTF-8 bytes).
                let mut buf = std::mem::take(&mut self.setvar_key_buf);
                buf.clear();
                buf.reserve(sv.var.key.raw().len() + 16);
                self.expand_into(&sv.var.key, &mut buf);
                let key = match std::str::from_utf8(&buf) {
                    Ok(text) => std::borrow::Cow::Borrowed(text),
                    Err(_) => String::from_utf8_lossy(&buf),
                };
                self.setvar_at(sv, prepared, KeyRef::Text(&key));
                drop(key);
                self.setvar_key_buf = buf;
            }
        }
    }

    /// `setvar` under the resolved `key`.
    fn setvar_at(&mut self, sv: &SetVar, prepared: &Effect, key: KeyRef<'_>) {
        if key.is_empty() {
            return;
        }
        let collection = sv.var.collection;
        let new: Bytes = match (&prepared.value, &sv.op) {
            (_, SetVarOp::Delete) => {
                let store = self.store_mut(collection);
                match key {
                    KeyRef::Known(key) => store.remove_key(key),
                    KeyRef::Text(key) => store.remove(key),
                }
                return;
            }
            (Some(value), _) => value.clone(),
            (None, SetVarOp::SetToOne) => Bytes::from(&b"1"[..]),
            (None, SetVarOp::Set(t)) => self.setvar_value(t),
            (None, SetVarOp::Add(t) | SetVarOp::Sub(t)) => {
                let delta = self.template_int(t);
                let store = self.store_mut(collection);
                let current = match key {
                    KeyRef::Known(key) => store.get_key(key).map(|v| to_int(v)),
                    KeyRef::Text(key) => store.get(key).map(to_int),
                };
                let current = current.unwrap_or(0);
                let sum = match sv.op {
                    SetVarOp::Add(_) => current.saturating_add(delta),
                    _ => current.saturating_sub(delta),
                };
                number_value(sum)
            }
        };
        let store = self.store_mut(collection);
        match key {
            KeyRef::Known(key) => store.set_key(key, new),
            KeyRef::Text(key) => store.set_shared(key, new),
        }
    }

    /// The value of `setvar:k=template` (not a literal: see `Effect`).
    fn setvar_value(&mut self, t: &Template) -> Bytes {
        if let [TemplatePart::Macro(m)] = t.parts() {
            return match self.lookup_macro(m) {
                // The variable's own bytes, shared rather than copied.
                Some(Shared::Bytes(bytes)) => bytes,
                Some(Shared::Text(text)) => Bytes::from(text.as_bytes()),
                None => Bytes::from(&b""[..]),
            };
        }
        // Text and macros (`/%{tx.0}/` in 920450, once per header): built
        // in a buffer kept for the transaction, so that the value is one
        // allocation, not a vector and then its copy.
        let mut buf = std::mem::take(&mut self.setvar_value_buf);
        buf.clear();
        self.expand_into(t, &mut buf);
        let value = Bytes::from(&buf[..]);
        self.setvar_value_buf = buf;
        value
    }

    /// A template read as a number, without building its text when it is a
    /// literal or a single macro (`%{tx.critical_anomaly_score}`).
    fn template_int(&self, t: &Template) -> i64 {
        match t.parts() {
            [] => 0,
            [TemplatePart::Literal(text)] => to_int(text.as_bytes()),
            [TemplatePart::Macro(m)] => self.lookup_macro(m).map_or(0, |v| to_int(&v)),
            _ => to_int(&self.expand(t)),
        }
    }

    /// Stores regex groups as `TX:0`..`TX:9` (group 0 is the whole match).
    pub(super) fn set_captures(&mut self, groups: &[Option<&[u8]>]) {
        // The ten keys, made once per process (before any rule set froze
        // its index, so they have slots).
        for (g, name) in groups.iter().zip(capture_keys()) {
            match g {
                Some(v) => self.tx.set_key(name, Bytes::from(*v)),
                None => self.tx.remove_key(name),
            }
        }
    }

    pub(super) fn ctl(&mut self, ctl: &Ctl) {
        if ctl_may_change_values(ctl) {
            self.cache.clear_unions();
        }
        let ov = &mut self.ov;
        match ctl {
            Ctl::RuleEngine(mode) => ov.engine = *mode,
            Ctl::RequestBodyAccess(on) => ov.request_body_access = *on,
            Ctl::ResponseBodyAccess(on) => ov.response_body_access = *on,
            Ctl::ForceRequestBodyVariable(on) => ov.force_body_variable = *on,
            Ctl::RequestBodyProcessor(p) => ov.processor = Some(*p),
            Ctl::RuleRemove(RuleSelector::Ids(ranges)) => ov.removed_ids.extend(ranges),
            Ctl::RuleRemove(RuleSelector::Tag(tag)) => {
                ov.removed_tags.push(self.rules.ctl_tag(tag))
            }
            Ctl::RuleRemove(RuleSelector::Msg(_)) => {}
            Ctl::RuleRemoveTarget { selector, targets } => {
                let scope = match selector {
                    RuleSelector::Ids(r) => TargetScope::Ids(r.clone()),
                    RuleSelector::Tag(t) => TargetScope::Tag(self.rules.ctl_tag(t)),
                    RuleSelector::Msg(_) => return,
                };
                ov.removed_targets.push((scope, targets.clone()));
            }
            _ => {}
        }
    }

    /// The body processor to use: a `ctl:` choice, else by content type.
    pub(super) fn body_processor(&self) -> Option<BodyProcessor> {
        if self.ov.processor.is_some() {
            return self.ov.processor;
        }
        let ctype = self.req.headers.get("content-type").unwrap_or_default();
        let ctype = String::from_utf8_lossy(ctype).to_ascii_lowercase();
        if ctype.starts_with("application/x-www-form-urlencoded") {
            Some(BodyProcessor::UrlEncoded)
        } else if ctype.starts_with("multipart/form-data") {
            Some(BodyProcessor::Multipart)
        } else {
            None
        }
    }
}

/// Whether a `ctl` may change the values of request-side variables and so
/// the prefilter unions and summaries computed from them (body visibility:
/// `forceRequestBodyVariable`, the body processor and body access; the
/// engine mode and the other options conservatively too). Removing rules
/// or targets (CRS 941010 does on almost every request) only narrows which
/// rules and which values are evaluated, and the audit options change
/// nothing evaluated: a union over a variable's values stays exact, and
/// keeping them spares rebuilding every union of the request mid-phase.
fn ctl_may_change_values(ctl: &Ctl) -> bool {
    !matches!(
        ctl,
        Ctl::RuleRemove(_)
            | Ctl::RuleRemoveTarget { .. }
            | Ctl::AuditEngine(_)
            | Ctl::AuditLogParts(_)
            | Ctl::DebugLogLevel(_)
    )
}

/// A `setvar` sum as a value. CRS's sums (anomaly scores per paranoia
/// level, added up in 949/959 on every request) are mostly small: those
/// from 0 to `SHARED_COUNTS` are clones of values built once, as `&VAR`
/// counts are (no allocation, and no free of the value they replace being
/// the only cost left). Larger and negative sums are formatted without
/// the formatting machinery (~300 instructions fewer).
fn number_value(n: i64) -> Bytes {
    match usize::try_from(n) {
        Ok(small) if small <= SHARED_COUNTS => count_value(small),
        _ => Bytes::from(itoa::Buffer::new().format(n).as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::{number_value, to_int};

    #[test]
    fn sums_are_decimal_whether_shared_or_built() {
        for n in [0, 1, 5, 64, 65, 1000, -1, -64, i64::MAX, i64::MIN] {
            assert_eq!(&*number_value(n), n.to_string().as_bytes(), "{n}");
        }
        // Small sums share one value: no allocation per `setvar`.
        assert!(std::sync::Arc::ptr_eq(&number_value(5), &number_value(5)));
    }

    #[test]
    fn atoi_semantics() {
        assert_eq!(to_int(b"42"), 42);
        assert_eq!(to_int(b"-7x"), -7);
        assert_eq!(to_int(b""), 0);
        assert_eq!(to_int(b"abc"), 0);
        assert_eq!(to_int(b" 5"), 5);
    }
}
