//! Evaluation tests: variables, operators, actions and flow on small rule sets.

use crate::{RuleSet, Transaction};

fn rules(text: &str) -> RuleSet {
    RuleSet::from_text(&format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\n{text}"
    ))
    .unwrap()
}

fn ids(tx: &Transaction<'_>) -> Vec<u64> {
    tx.matched_rules().iter().map(|m| m.id).collect()
}

fn get<'r>(set: &'r RuleSet, uri: &str) -> Transaction<'r> {
    let mut tx = Transaction::new(set);
    tx.set_request_line("GET", uri, "HTTP/1.1");
    tx.add_request_header("Host", b"localhost");
    tx.process_request_headers();
    tx
}

#[test]
fn args_and_transformations() {
    let set = rules("SecRule ARGS \"@rx select\" \"id:1,phase:1,pass,t:urlDecodeUni,t:lowercase\"");
    assert_eq!(ids(&get(&set, "/?q=%53ELECT")), [1]);
    assert!(ids(&get(&set, "/?q=nothing")).is_empty());
}

#[test]
fn deny_gives_an_intervention_and_stops() {
    let set = rules(
        "SecRule REQUEST_HEADERS:host \"@streq localhost\" \"id:1,phase:1,deny,status:406,msg:'m %{MATCHED_VAR}'\"\n\
         SecAction \"id:2,phase:1,pass\"",
    );
    let tx = get(&set, "/");
    let i = tx.intervention().unwrap();
    assert_eq!(
        (i.status, i.rule_id, i.msg.as_str()),
        (406, 1, "m localhost")
    );
    assert_eq!(ids(&tx), [1]);
}

#[test]
fn detection_only_never_intervenes() {
    let set =
        RuleSet::from_text("SecRuleEngine DetectionOnly\nSecAction \"id:1,phase:1,deny\"").unwrap();
    let tx = get(&set, "/");
    assert!(tx.intervention().is_none());
    assert_eq!(ids(&tx), [1]);
}

#[test]
fn setvar_arithmetic_and_macros() {
    let set = rules(
        "SecAction \"id:1,phase:1,pass,setvar:tx.a=5,setvar:tx.a=+3,setvar:tx.b=%{tx.a}x\"\n\
         SecAction \"id:2,phase:1,pass,setvar:tx.a=-10,setvar:!tx.b\"\n\
         SecRule TX:A \"@eq -2\" \"id:3,phase:1,pass\"\n\
         SecRule &TX:b \"@eq 0\" \"id:4,phase:1,pass\"",
    );
    let tx = get(&set, "/");
    assert_eq!(ids(&tx), [1, 2, 3, 4]);
    assert_eq!(tx.tx_var("a"), Some(&b"-2"[..]));
}

#[test]
fn chains_captures_and_skip_after() {
    let set = rules(
        "SecRule REQUEST_URI \"@rx /(a+)(b)\" \"id:1,phase:1,pass,capture,chain\"\n\
         SecRule TX:1 \"@streq aa\" \"setvar:tx.hit=%{tx.2}\"\n\
         SecRule TX:hit \"@streq b\" \"id:2,phase:1,pass,skipAfter:END\"\n\
         SecAction \"id:3,phase:1,pass\"\n\
         SecMarker END\n\
         SecAction \"id:4,phase:1,pass,skip:1\"\n\
         SecAction \"id:5,phase:1,pass\"\n\
         SecAction \"id:6,phase:1,pass\"",
    );
    assert_eq!(ids(&get(&set, "/aab")), [1, 2, 4, 6]);
    assert_eq!(ids(&get(&set, "/ab")), [3, 4, 6]);
}

/// `@rx` with `capture` decides the match by `find` / `captures` alone: a
/// value that does not match keeps the earlier captures and does not match,
/// a match without groups sets `TX:0`, and a later, longer match replaces it.
#[test]
fn capture_regexes_match_exactly_when_the_value_matches() {
    let set = rules(
        "SecAction \"id:1,phase:1,pass,setvar:tx.0=before\"\n\
         SecRule REQUEST_URI \"@rx zz+\" \"id:2,phase:1,pass,capture\"\n\
         SecRule REQUEST_URI \"@rx x(y)?q\" \"id:3,phase:1,pass,capture\"\n\
         SecRule TX:0 \"@streq before\" \"id:4,phase:1,pass\"\n\
         SecRule TX:0 \"@streq zzz\" \"id:5,phase:1,pass\"\n\
         SecRule TX:0 \"@streq xq\" \"id:6,phase:1,pass\"\n\
         SecRule &TX:1 \"@eq 0\" \"id:7,phase:1,pass\"",
    );
    assert_eq!(ids(&get(&set, "/nothing")), [1, 4, 7]);
    assert_eq!(ids(&get(&set, "/azzz")), [1, 2, 5, 7]);
    assert_eq!(ids(&get(&set, "/zzz/xq")), [1, 2, 3, 6, 7]);
}

#[test]
fn exclusions_counts_and_ctl() {
    let set = rules(
        "SecRule ARGS|!ARGS:safe \"@contains x\" \"id:1,phase:1,pass\"\n\
         SecRule &ARGS \"@eq 2\" \"id:2,phase:1,pass,ctl:ruleRemoveTargetById=3;ARGS:b\"\n\
         SecRule ARGS \"@contains y\" \"id:3,phase:1,pass\"\n\
         SecAction \"id:4,phase:1,pass,ctl:ruleRemoveById=5\"\n\
         SecAction \"id:5,phase:1,pass\"",
    );
    assert_eq!(ids(&get(&set, "/?safe=x&b=y")), [2, 4]);
    assert_eq!(ids(&get(&set, "/?q=x&b=y&c=y")), [1, 3, 4]);
}

#[test]
fn collection_counts_follow_selectors_and_duplicates() {
    // Each rule pins one `&` count of a request collection, including
    // repeated and case-varied keys and an exclusion next to a count.
    let set = rules(
        "SecRule &ARGS \"@eq 4\" \"id:1,phase:1,pass\"\n\
         SecRule &ARGS:a \"@eq 2\" \"id:2,phase:1,pass\"\n\
         SecRule &ARGS_NAMES:/^a/ \"@eq 3\" \"id:3,phase:1,pass\"\n\
         SecRule &ARGS_POST \"@eq 0\" \"id:4,phase:1,pass\"\n\
         SecRule &ARGS_GET_NAMES:/^b$/ \"@eq 1\" \"id:5,phase:1,pass\"\n\
         SecRule &REQUEST_HEADERS:HOST \"@eq 1\" \"id:6,phase:1,pass\"\n\
         SecRule &REQUEST_HEADERS \"@eq 2\" \"id:7,phase:1,pass\"\n\
         SecRule &REQUEST_COOKIES_NAMES:/^c/ \"@eq 1\" \"id:8,phase:1,pass\"\n\
         SecRule &REQUEST_COOKIES \"@eq 2\" \"id:9,phase:1,pass\"\n\
         SecRule &REQUEST_COOKIES:missing \"@eq 0\" \"id:10,phase:1,pass\"\n\
         SecRule &ARGS|!ARGS:a \"@eq 4\" \"id:11,phase:1,pass\"",
    );
    let mut tx = Transaction::new(&set);
    tx.set_request_line("GET", "/?a=1&A=2&ab=3&b=4", "HTTP/1.1");
    tx.add_request_header("Host", b"localhost");
    tx.add_request_header("Cookie", b"c1=x; d=y");
    tx.process_request_headers();
    assert_eq!(ids(&tx), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
}

#[test]
fn exclusions_keep_the_order_of_the_other_values() {
    // Exclusions in the middle and at the end: the remaining values are
    // inspected in request order (setvar runs once per matched value).
    let set = rules(
        "SecRule ARGS|!ARGS:b|!ARGS:d|!ARGS:f \"@rx .\" \"id:1,phase:1,pass,setvar:tx.seen=%{tx.seen}%{MATCHED_VAR}\"\n\
         SecRule TX:seen \"@rx ^(.*)$\" \"id:2,phase:1,pass,capture,logdata:'%{TX.1}'\"",
    );
    let tx = get(&set, "/?a=1&b=2&c=3&d=4&e=5&f=6");
    let logged: Vec<_> = tx
        .matched_rules()
        .iter()
        .map(|m| m.logdata.clone())
        .collect();
    assert_eq!(logged.last().map(String::as_str), Some("135"));
}

#[test]
fn request_bodies() {
    let set = rules(
        "SecRule REQUEST_HEADERS:Content-Type \"application/json\" \"id:10,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRule ARGS_POST:json.a.0 \"@streq evil\" \"id:1,phase:2,pass\"\n\
         SecRule ARGS_POST:user \"@streq bob\" \"id:2,phase:2,pass\"\n\
         SecRule FILES \"@endsWith .php\" \"id:3,phase:2,pass\"\n\
         SecRule REQBODY_ERROR \"!@eq 0\" \"id:4,phase:2,pass\"",
    );
    let run = |ctype: &str, body: &[u8]| {
        let mut tx = Transaction::new(&set);
        tx.set_request_line("POST", "/", "HTTP/1.1");
        tx.add_request_header("Content-Type", ctype.as_bytes());
        tx.process_request_headers();
        tx.append_request_body(body);
        tx.process_request_body();
        ids(&tx)
    };
    assert_eq!(run("application/json", br#"{"a":["evil"]}"#), [10, 1]);
    assert_eq!(run("application/json", b"{bad"), [10, 4]);
    assert_eq!(run("application/x-www-form-urlencoded", b"user=bob"), [2]);
    let mp = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.php\"\r\n\r\nx\r\n--B--\r\n";
    assert_eq!(run("multipart/form-data; boundary=B", mp), [3]);
}

#[test]
fn response_phases() {
    let set = RuleSet::from_text(
        "SecRuleEngine On\nSecResponseBodyAccess On\n\
         SecRule RESPONSE_STATUS \"@eq 500\" \"id:1,phase:3,pass\"\n\
         SecRule RESPONSE_BODY \"@contains secret\" \"id:2,phase:4,deny\"",
    )
    .unwrap();
    let mut tx = get(&set, "/");
    tx.set_response_status(500, "HTTP/1.1");
    tx.add_response_header("Content-Type", b"text/html; charset=utf-8");
    tx.process_response_headers();
    tx.append_response_body(b"the secret");
    tx.process_response_body();
    tx.process_logging();
    assert_eq!(ids(&tx), [1, 2]);
    assert_eq!(tx.intervention().unwrap().rule_id, 2);
}

/// Links that miss the empty value (`compile::empty`) are skipped only
/// while every value of their targets is empty: a body, a header with a
/// value, or a header of another case still reach the operator; absent
/// or empty ones do not, and a negated link (no shortcut) still matches
/// the empty body. Rule 4 has a reject plan: with a body, its union
/// still decides. Same outcomes with the shortcuts off.
#[test]
fn empty_response_values() {
    let text = "SecRuleEngine On\nSecResponseBodyAccess On\n\
         SecRule RESPONSE_HEADERS:Content-Encoding|RESPONSE_BODY \"@pm gzip\" \"id:1,phase:4,pass\"\n\
         SecRule RESPONSE_BODY \"!@pm gzip\" \"id:2,phase:4,pass\"\n\
         SecRule RESPONSE_BODY \"@rx ^$\" \"id:3,phase:4,pass\"\n\
         SecRule RESPONSE_BODY \"@rx gzip body\" \"id:4,phase:4,pass\"";
    let run = |shortcuts: bool, header: Option<&[u8]>, body: &[u8]| {
        let mut set = RuleSet::from_text(text).unwrap();
        set.set_prefilter(shortcuts);
        let mut tx = get(&set, "/");
        tx.set_response_status(200, "HTTP/1.1");
        tx.add_response_header("Content-Type", b"text/html");
        if let Some(value) = header {
            tx.add_response_header("content-ENCODING", value);
        }
        tx.process_response_headers();
        tx.append_response_body(body);
        tx.process_response_body();
        ids(&tx)
    };
    for shortcuts in [true, false] {
        assert_eq!(run(shortcuts, None, b""), [2, 3]);
        assert_eq!(run(shortcuts, Some(b""), b""), [2, 3]);
        assert_eq!(run(shortcuts, Some(b"gzip"), b""), [1, 2, 3]);
        assert_eq!(run(shortcuts, None, b"a gzip body"), [1, 4]);
        assert_eq!(run(shortcuts, Some(b"br"), b"text"), [2]);
    }
}

#[test]
fn pm_and_libinjection() {
    let set = rules(
        "SecRule ARGS \"@pm evil WORSE\" \"id:1,phase:1,pass,capture,setvar:tx.w=%{tx.0}\"\n\
         SecRule ARGS \"@detectSQLi\" \"id:2,phase:1,pass\"\n\
         SecRule ARGS \"@detectXSS\" \"id:3,phase:1,pass\"",
    );
    let tx = get(&set, "/?a=very+worse");
    assert_eq!(ids(&tx), [1]);
    assert_eq!(tx.tx_var("w"), Some(&b"worse"[..]));
    assert_eq!(ids(&get(&set, "/?a=1'+or+'1'='1")), [2]);
    assert_eq!(ids(&get(&set, "/?a=<script>alert(1)</script>")), [3]);
}

/// `[&]TX:key "@cmp N"` links take a shortcut; what they do must not change.
#[test]
fn tx_comparisons_match_like_any_rule() {
    let set = rules(
        "SecAction \"id:1,phase:1,pass,nolog,setvar:tx.level=2\"\n\
         SecRule TX:LEVEL \"@lt 1\" \"id:2,phase:1,pass,skipAfter:END\"\n\
         SecRule TX:LEVEL \"@lt 3\" \"id:3,phase:1,pass,msg:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}',skipAfter:END\"\n\
         SecAction \"id:4,phase:1,pass\"\n\
         SecMarker END\n\
         SecRule &TX:missing \"@eq 0\" \"id:5,phase:1,pass,msg:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'\"\n\
         SecRule TX:missing \"!@eq 1\" \"id:6,phase:1,pass\"\n\
         SecRule TX:level \"!@gt 5\" \"id:7,phase:1,pass,setvar:tx.seen=1\"\n\
         SecRule TX:seen \"@eq 1\" \"id:8,phase:1,pass\"",
    );
    let tx = get(&set, "/");
    // A missing TX value gives the operator nothing, negated or not (6).
    assert_eq!(ids(&tx), [1, 3, 5, 7, 8]);
    let msgs: Vec<&str> = tx.matched_rules().iter().map(|m| m.msg.as_str()).collect();
    assert_eq!(msgs[1], "TX:level=2");
    assert_eq!(msgs[2], "TX=0");
}

/// A run-time target exclusion of TX still applies to a planned link.
#[test]
fn tx_comparison_honours_run_time_exclusions() {
    let set = rules(
        "SecAction \"id:1,phase:1,pass,nolog,setvar:tx.level=2,ctl:ruleRemoveTargetById=2;TX:level\"\n\
         SecRule TX:level \"@eq 2\" \"id:2,phase:1,pass\"\n\
         SecRule TX:level \"@eq 2\" \"id:3,phase:1,pass\"",
    );
    assert_eq!(ids(&get(&set, "/")), [1, 3]);
}

/// `multiMatch` tests every intermediate form, through the step cache.
#[test]
fn multi_match_sees_intermediate_values() {
    let set = rules(
        "SecRule ARGS \"@streq %41\" \"id:1,phase:1,pass,multiMatch,t:urlDecode,t:lowercase\"\n\
         SecRule ARGS \"@streq A\" \"id:2,phase:1,pass,multiMatch,t:urlDecode,t:lowercase\"\n\
         SecRule ARGS \"@streq a\" \"id:3,phase:1,pass,multiMatch,t:urlDecode,t:lowercase\"",
    );
    // The argument is "%41" once the query string is parsed.
    assert_eq!(ids(&get(&set, "/?q=%2541")), [1, 2, 3]);
    assert_eq!(ids(&get(&set, "/?q=%41")), [2, 3]);
}

/// A transaction's scratch (TX store, caches, matched list) goes back to
/// the rule set's pool when it ends; the next transaction starts clean.
#[test]
fn pooled_scratch_starts_empty() {
    let set = rules(
        "SecRule ARGS:q \"@rx ^a\" \"id:1,phase:1,pass,t:lowercase,setvar:tx.seen=%{MATCHED_VAR}\"\n\
         SecRule &TX:seen \"@eq 1\" \"id:2,phase:1,pass\"",
    );
    for _ in 0..3 {
        let first = get(&set, "/?q=Abc");
        assert_eq!(ids(&first), [1, 2]);
        assert_eq!(first.tx_var("seen"), Some(&b"abc"[..]));
        drop(first);
        let second = get(&set, "/?q=zzz");
        assert!(ids(&second).is_empty());
        assert_eq!(second.tx_var("seen"), None);
    }
}

#[test]
fn pooled_lists_and_scalars_start_empty() {
    let set = rules(
        "SecRule REQUEST_URI \"@streq /a?x=a\" \"id:1,phase:1,pass\"\n\
         SecRule ARGS \"@streq a\" \"id:2,phase:1,pass\"\n\
         SecRule ARGS \"@streq a\" \"id:3,phase:1,pass\"",
    );
    assert!(set.rule(2).unwrap().value_list.is_some());
    for _ in 0..3 {
        assert_eq!(ids(&get(&set, "/a?x=a")), [1, 2, 3]);
        assert!(ids(&get(&set, "/b?x=b")).is_empty());
    }
}

/// Rule sets are shared between threads; transactions move between them.
#[test]
fn rule_sets_are_shareable() {
    fn shareable<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shareable::<RuleSet>();
    movable::<Transaction<'static>>();
}

#[test]
fn whole_value_pattern_captures_each_value() {
    let set = rules(
        "SecRule REQUEST_HEADERS_NAMES \"@rx ^.*$\" \
         \"id:1,phase:1,pass,capture,t:lowercase,setvar:'tx.seen_%{tx.0}=%{tx.0}'\"",
    );
    let mut tx = Transaction::new(&set);
    tx.set_request_line("GET", "/", "HTTP/1.1");
    tx.add_request_header("Host", b"localhost");
    tx.add_request_header("X-Odd\nName", b"v");
    tx.process_request_headers();
    assert_eq!(tx.tx_var("seen_host"), Some(&b"host"[..]));
    assert_eq!(tx.tx_var("seen_x-odd\nname"), Some(&b"x-odd\nname"[..]));
    assert_eq!(tx.tx_var("0"), Some(&b"x-odd\nname"[..]));
}

#[test]
fn prefix_selectors_see_tx_keys_with_line_breaks() {
    // `^` is multi-line: `x\nheader_name_a` is selected by
    // `TX:/^header_name_/`. The store's plain-prefix shortcut applies only
    // while no key has a line break; this fails if that count is wrong.
    let set = rules(
        "SecRule TX:/^header_name_/ \"@rx .\" \"id:1,phase:1,pass\"\n\
         SecRule TX:/^HEADER_name_/ \"@streq v\" \"id:2,phase:1,pass\"",
    );
    let mut tx = Transaction::new(&set);
    tx.set_tx_var("x\nheader_name_a", b"v");
    tx.set_request_line("GET", "/", "HTTP/1.1");
    tx.process_request_headers();
    assert_eq!(ids(&tx), [1, 2]);
    // Single-line keys: only those that start with the prefix.
    let mut tx = Transaction::new(&set);
    tx.set_tx_var("x_header_name_a", b"v");
    tx.set_tx_var("Header_Name_B", b"v");
    tx.set_request_line("GET", "/", "HTTP/1.1");
    tx.process_request_headers();
    assert_eq!(ids(&tx), [1, 2]);
    let mut tx = Transaction::new(&set);
    tx.set_tx_var("x_header_name_a", b"v");
    tx.set_request_line("GET", "/", "HTTP/1.1");
    tx.process_request_headers();
    assert!(ids(&tx).is_empty());
}

/// The union ids of a rule's reject plan (the rule must have one).
fn union_ids(set: &RuleSet, id: u64) -> Vec<u32> {
    let plan = set.rule(id).and_then(|r| r.reject_plan.as_ref());
    let plan = plan.expect("the rule has a reject plan");
    plan.targets
        .iter()
        .filter_map(|t| match *t {
            crate::compile::RejectTarget::Union { id, .. } => Some(id),
            crate::compile::RejectTarget::Empty(_) => None,
        })
        .collect()
}

/// Removing targets mid-phase (CRS 941010 on almost every request) keeps
/// the unions built before it: they are over whole variables, and the
/// removal is still applied when a rule the union lets through is
/// evaluated value by value.
#[test]
fn unions_outlive_target_removals() {
    let set = rules(
        "SecRule ARGS \"@rx zzz\" \"id:1,phase:1,pass\"\n\
         SecRule ARGS \"@rx attack\" \"id:3,phase:1,pass\"\n\
         SecAction \"id:2,phase:1,pass,ctl:ruleRemoveTargetById=4;ARGS:a\"\n\
         SecRule ARGS \"@rx attack\" \"id:4,phase:2,pass\"",
    );
    let union = union_ids(&set, 1);
    assert_eq!(union, union_ids(&set, 4));
    let mut tx = get(&set, "/?a=attack&b=x");
    assert_eq!(ids(&tx), [3, 2]);
    assert!(tx.cache.union(union[0]).is_some(), "kept across the ctl");
    tx.process_request_body();
    assert_eq!(ids(&tx), [3, 2], "ARGS:a is still removed from 4");
    // Without the removal the same request matches 4 as well.
    let set = rules(
        "SecRule ARGS \"@rx zzz\" \"id:1,phase:1,pass\"\n\
         SecRule ARGS \"@rx attack\" \"id:4,phase:2,pass\"",
    );
    let mut tx = get(&set, "/?a=attack&b=x");
    tx.process_request_body();
    assert_eq!(ids(&tx), [4]);
}

/// A `ctl` that makes the body visible drops the unions: one built while
/// `REQUEST_BODY` was hidden (empty) must not rule out a later rule.
#[test]
fn unions_are_rebuilt_when_the_body_becomes_visible() {
    let set = rules(
        "SecRule REQUEST_HEADERS:Content-Type \"^application/json\" \
           \"id:10,phase:1,pass,ctl:requestBodyProcessor=JSON\"\n\
         SecRule REQUEST_BODY \"@rx attack\" \"id:1,phase:2,pass\"\n\
         SecAction \"id:2,phase:2,pass,ctl:forceRequestBodyVariable=On\"\n\
         SecRule REQUEST_BODY \"@rx attack\" \"id:3,phase:2,pass\"",
    );
    assert_eq!(union_ids(&set, 1), union_ids(&set, 3));
    let mut tx = Transaction::new(&set);
    tx.set_request_line("POST", "/", "HTTP/1.1");
    tx.add_request_header("Content-Type", b"application/json");
    tx.append_request_body(br#"{"q":"attack"}"#);
    tx.process_request_body();
    assert_eq!(ids(&tx), [10, 2, 3]);
}

/// The union of a chain that changes none of a variable's values is the
/// variable's summary, shared; it is forgotten with the summary, at the
/// next phase for the phase-dependent bodies and at any change of the
/// request otherwise.
#[test]
fn shared_unions_follow_their_summary() {
    let set = rules(
        "SecRule ARGS \"@rx zzz\" \"id:1,phase:1,pass,t:lowercase\"\n\
         SecRule ARGS \"@rx attack\" \"id:2,phase:1,pass,t:lowercase\"\n\
         SecRule ARGS \"@rx zzz\" \"id:3,phase:2,pass,t:lowercase\"",
    );
    let union = union_ids(&set, 1)[0];
    let mut tx = Transaction::new(&set);
    tx.set_request_line("GET", "/?q=attack", "HTTP/1.1");
    tx.process_request_headers();
    assert_eq!(ids(&tx), [2]);
    let var = crate::parser::Variable::Args as usize;
    let (_, summary) = tx.cache.summary(var).expect("ARGS summarised");
    let summary = summary.as_ptr();
    assert_eq!(tx.cache.union(union).map(<[u64]>::as_ptr), Some(summary));
    tx.add_request_header("Host", b"x");
    assert!(tx.cache.union(union).is_none() && tx.cache.summary(var).is_none());
}

/// A value's record answers for the raw value only: a chain that changes
/// the value is transformed and its own bits used, and each step sees the
/// bytes the step before it produced (`%41bc` holds no upper-case letter,
/// its URL-decoded form `Abc` does, so `t:lowercase` must still act). Rule
/// 10 scans the raw values first, so later links find their bits in the
/// records. Asserted with the shortcuts on, and the same with them off.
#[test]
fn records_answer_for_unchanged_values_only() {
    let mut set = rules(
        "SecRule ARGS \"@rx ^zzz$\" \"id:10,phase:1,pass\"\n\
         SecRule ARGS \"@rx ^abc$\" \"id:1,phase:1,pass,t:urlDecodeUni,t:lowercase\"\n\
         SecRule ARGS \"@rx ^abc$\" \"id:2,phase:1,pass,multiMatch,t:urlDecodeUni,t:lowercase\"\n\
         SecRule ARGS \"!@rx ^abc$\" \"id:3,phase:1,pass,t:urlDecodeUni,t:lowercase\"\n\
         SecRule ARGS \"@rx ^a+$\" \"id:4,phase:1,pass,t:lowercase\"",
    );
    let long = "A".repeat(300);
    let cases = [
        ("/?a=%2541bc".to_string(), vec![1, 2]),
        ("/?a=abc".to_string(), vec![1, 2]),
        ("/?a=zzz&b=%2541bc".to_string(), vec![10, 1, 2, 3]),
        (format!("/?a={long}"), vec![3, 4]),
        (format!("/?a={long}&b=%2541BC"), vec![1, 2, 3, 4]),
    ];
    for on in [true, false] {
        set.set_prefilter(on);
        for (uri, want) in &cases {
            assert_eq!(&ids(&get(&set, uri)), want, "{uri} (shortcuts {on})");
        }
    }
}

/// A quiet TX comparison (see `TxCompare::quiet`) skips only the
/// `MATCHED_VARS` entry nobody can read: a chained link still reads it,
/// and `MATCHED_VAR` is still set for the rules after it.
#[test]
fn quiet_tx_comparisons_keep_what_can_be_read() {
    let set = rules(
        "SecAction \"id:1,phase:1,pass,nolog,setvar:tx.level=2\"\n\
         SecRule TX:level \"@eq 2\" \"id:2,phase:1,pass,chain\"\n\
         SecRule MATCHED_VARS \"@streq 2\" \"setvar:tx.chained=1\"\n\
         SecRule TX:level \"@eq 2\" \"id:3,phase:1,pass,nolog\"\n\
         SecRule MATCHED_VAR \"@streq 2\" \"id:4,phase:1,pass\"\n\
         SecRule MATCHED_VARS \"@streq 2\" \"id:5,phase:1,pass\"\n\
         SecRule TX:chained \"@eq 1\" \"id:6,phase:1,pass\"",
    );
    assert!(set.rule(3).unwrap().tx_compare.as_ref().unwrap().quiet);
    assert!(!set.rule(2).unwrap().tx_compare.as_ref().unwrap().quiet);
    // 5: a rule's MATCHED_VARS starts empty, whatever matched before it.
    assert_eq!(ids(&get(&set, "/")), [1, 2, 3, 4, 6]);
}

/// The remembered number of a TX value follows the value: a gate after a
/// write to TX compares the new value.
#[test]
fn tx_comparisons_compare_the_current_number() {
    let set = rules(
        "SecAction \"id:1,phase:1,pass,nolog,setvar:tx.level=5\"\n\
         SecRule TX:level \"@gt 3\" \"id:2,phase:1,pass\"\n\
         SecAction \"id:3,phase:1,pass,nolog,setvar:tx.level=1\"\n\
         SecRule TX:level \"@gt 3\" \"id:4,phase:1,pass\"\n\
         SecRule TX:level \"@lt 3\" \"id:5,phase:1,pass\"",
    );
    assert_eq!(ids(&get(&set, "/")), [1, 2, 3, 5]);
}

/// `@rx ^.*$` with `capture` keeps the (transformed) value as `TX:0`,
/// also when negated (the operator matched, so the rule does not).
#[test]
fn whole_value_capture_sets_tx_0() {
    let set = rules(
        "SecRule REQUEST_HEADERS_NAMES \"@rx ^.*$\" \"id:1,phase:1,pass,capture,t:lowercase,setvar:'tx.seen_%{tx.0}=/%{tx.0}/'\"\n\
         SecRule TX:seen_host \"@streq /host/\" \"id:2,phase:1,pass\"\n\
         SecRule ARGS \"!@rx ^.*$\" \"id:3,phase:1,pass,capture,t:uppercase\"",
    );
    let tx = get(&set, "/?a=xyz");
    assert_eq!(ids(&tx), [1, 2]);
    assert_eq!(tx.tx_var("0"), Some(&b"XYZ"[..]));
}

/// `UNIQUE_ID` is made when first read (not in `Transaction::new`): the
/// same on every read of one transaction, even after its inputs changed,
/// and another one in the next transaction.
#[test]
fn unique_id_is_stable_within_a_transaction_and_differs_between_them() {
    let rules = RuleSet::from_text(
        "SecRuleEngine On\n\
         SecAction \"id:1,phase:1,pass,setvar:tx.a=%{UNIQUE_ID}\"\n\
         SecAction \"id:2,phase:2,pass,setvar:tx.b=%{UNIQUE_ID}\"",
    )
    .unwrap();
    let run = || {
        let mut tx = Transaction::new(&rules);
        tx.process_request_headers();
        tx.append_request_body(b"x=1");
        tx.process_request_body();
        let var = |k: &str| tx.tx_var(k).map(<[u8]>::to_vec);
        (var("a"), var("b"))
    };
    let (a1, b1) = run();
    let (a2, _) = run();
    assert!(a1.as_ref().is_some_and(|a| !a.is_empty()));
    assert_eq!(a1, b1);
    assert_ne!(a1, a2);
}

/// Response data set after the request phases is seen by the response
/// phases even when a request-phase rule already read (then empty) the
/// same variables: what the shortcuts remember about them is dropped.
#[test]
fn response_data_set_after_request_phases_is_seen() {
    let text = "SecRule REQUEST_HEADERS|RESPONSE_HEADERS|RESPONSE_STATUS \"@rx secret|^503$\" \"id:1,phase:1,pass\"\n\
         SecRule REQUEST_HEADERS|RESPONSE_HEADERS \"@rx secret\" \"id:4,phase:2,pass,t:lowercase\"\n\
         SecRule RESPONSE_HEADERS \"@rx secret\" \"id:2,phase:3,pass\"\n\
         SecRule RESPONSE_STATUS \"@rx ^503$\" \"id:3,phase:3,pass\"";
    for shortcuts in [true, false] {
        let mut set = rules(text);
        set.set_prefilter(shortcuts);
        let mut tx = get(&set, "/");
        tx.process_request_body();
        tx.set_response_status(503, "HTTP/1.1");
        tx.add_response_header("X-Note", b"a secret");
        tx.process_response_headers();
        assert_eq!(ids(&tx), [2, 3], "shortcuts {shortcuts}");
    }
}
