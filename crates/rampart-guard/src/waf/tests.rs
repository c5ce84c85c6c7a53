//! WAF filter tests with the built-in rule set: verdicts, body handling,
//! limits, exclusions, masking.

use super::*;
use crate::testutil::{ctx, head, now};
use rampart_config::{Bytes as Size, FilterMode, WafTargetExclusion};

fn policy() -> WafPolicy {
    toml::from_str("").unwrap()
}

fn filter(p: &WafPolicy) -> WafFilter {
    WafFilter::new(p, Arc::new(compile(p).expect("built-in rules compile")))
}

fn verdict(f: &WafFilter, uri: &str) -> Decision {
    let mut c = ctx("192.0.2.10");
    let mut h = head(
        uri,
        &[
            ("host", "api.test"),
            ("user-agent", "curl/8"),
            ("accept", "*/*"),
        ],
    );
    now(f.request_headers(&mut c, &mut h))
}

fn body_verdicts(f: &WafFilter, chunks: &[&[u8]]) -> Vec<Decision> {
    typed_body_verdicts(f, "application/json", chunks)
}

fn typed_body_verdicts(f: &WafFilter, content_type: &str, chunks: &[&[u8]]) -> Vec<Decision> {
    let mut c = ctx("192.0.2.10");
    c.has_request_body = true;
    let mut h = head(
        "/api/items",
        &[
            ("host", "api.test"),
            ("content-type", content_type),
            ("user-agent", "curl/8"),
        ],
    );
    h.method = http::Method::POST;
    let mut out = vec![now(f.request_headers(&mut c, &mut h))];
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(f.request_body(
            &mut c,
            &Bytes::copy_from_slice(chunk),
            i + 1 == chunks.len(),
        ));
    }
    out
}

#[test]
fn sqli_in_a_query_arg_is_blocked_with_rule_ids() {
    let f = filter(&policy());
    match verdict(&f, "/api/users?id=1'%20OR%20'1'='1") {
        Decision::Deny(d) => {
            assert_eq!(d.status, StatusCode::FORBIDDEN);
            assert_eq!(d.reason, WAF_BLOCKED);
            assert!(!d.rule_ids.is_empty());
        }
        other => panic!("not blocked: {other:?}"),
    }
}

#[test]
fn benign_api_requests_pass() {
    let f = filter(&policy());
    for uri in [
        "/api/users?id=42",
        "/api/search?q=O%27Reilly%20books",
        "/api/orders?from=2024-01-01&limit=50",
    ] {
        assert_eq!(verdict(&f, uri), Decision::Continue, "{uri}");
    }
}

#[test]
fn json_body_attack_is_judged_when_the_body_ends() {
    let f = filter(&policy());
    let v = body_verdicts(
        &f,
        &[br#"{"name":"x","q":"<script>alert(1)"#, br#"</script>"}"#],
    );
    assert_eq!(v[0], Decision::Continue, "the head alone is not judged");
    assert_eq!(v[1], Decision::Continue, "nor the first chunk");
    assert_eq!(v[2].reason(), Some(WAF_BLOCKED));
    let ok = body_verdicts(&f, &[br#"{"name":"Alice","note":"ships on Monday"}"#]);
    assert_eq!(ok.last().unwrap(), &Decision::Continue);
}

#[test]
fn bodies_over_the_limit_are_rejected_or_partly_inspected() {
    let mut p = policy();
    p.body_limit = Size(32);
    let f = filter(&p);
    let v = body_verdicts(&f, &[&[b'a'; 20], &[b'b'; 20]]);
    assert_eq!(v[2].reason(), Some(WAF_BODY_TOO_LARGE));
    assert_eq!(f.body_interest().hold_request, 32);

    p.on_body_limit = OnBodyLimit::Partial;
    let f = filter(&p);
    // The attack sits inside the inspected first 32 bytes of a form body
    // (which still parses when cut; a cut JSON body does not): blocked.
    let form = "application/x-www-form-urlencoded";
    let v = typed_body_verdicts(&f, form, &[b"q=1'%20UNION%20SELECT%20pass&x=", &[b'a'; 40]]);
    assert_eq!(v[2].reason(), Some(WAF_BLOCKED));
    // A cut JSON body is not counted as a parse failure.
    let v = body_verdicts(&f, &[br#"{"note":"a perfectly benign"#, &[b' '; 40]]);
    assert!(v.iter().all(|d| d.reason() != Some(WAF_BLOCKED)), "{v:?}");
    // Past the limit nothing is inspected (that is what partial means).
    let v = body_verdicts(&f, &[&[b' '; 40], br#"1' UNION SELECT pass FROM users"#]);
    assert!(v.iter().all(|d| d.reason() != Some(WAF_BLOCKED)));
}

#[test]
fn excluded_rules_do_not_fire() {
    let f = filter(&policy());
    let Decision::Deny(d) = verdict(&f, "/api/x?q=%3Cscript%3Ealert(1)%3C/script%3E") else {
        panic!("not blocked")
    };
    let mut p = policy();
    p.exclude_ids = d.rule_ids.iter().map(|id| id.parse().unwrap()).collect();
    assert_ne!(
        verdict(&filter(&p), "/api/x?q=%3Cscript%3Ealert(1)%3C/script%3E").reason(),
        Some(WAF_BLOCKED)
    );

    let mut p = policy();
    p.exclude_targets = vec![WafTargetExclusion {
        target: "ARGS:q".into(),
        ids: p_ids(&d),
    }];
    let f = filter(&p);
    assert_ne!(
        verdict(&f, "/api/x?q=%3Cscript%3Ealert(1)%3C/script%3E").reason(),
        Some(WAF_BLOCKED)
    );
    assert_eq!(
        verdict(&f, "/api/x?other=%3Cscript%3Ealert(1)%3C/script%3E").reason(),
        Some(WAF_BLOCKED),
        "other args stay covered"
    );
}

fn p_ids(d: &Denial) -> Vec<u64> {
    d.rule_ids.iter().map(|id| id.parse().unwrap()).collect()
}

#[test]
fn monitor_mode_is_reported_as_the_filter_mode() {
    let mut p = policy();
    p.mode = FilterMode::Monitor;
    assert_eq!(filter(&p).mode(), Mode::Monitor);
}

#[test]
fn sensitive_matched_data_is_masked_and_long_data_truncated() {
    assert!(safe_logdata(
        "Matched Data: hunter2' OR 1=1 found within ARGS:password: hunter2' OR 1=1"
    )
    .starts_with("[masked"));
    let long = format!("Matched Data: {} found within ARGS:q", "x".repeat(400));
    let s = safe_logdata(&long);
    assert!(s.chars().count() <= 161 && s.ends_with('…'));
}

#[test]
fn policies_share_rule_sets_only_when_equal() {
    let a = policy();
    let mut b = policy();
    assert_eq!(policy_key(&a), policy_key(&b));
    b.paranoia = 2;
    assert_ne!(policy_key(&a), policy_key(&b));
    let c: WafPolicy = toml::from_str("value_memo = false").unwrap();
    assert!(a.value_memo && !c.value_memo);
    assert_ne!(policy_key(&a), policy_key(&c));
}

/// With the value memo on (the default) or off, repeated requests get the
/// same verdicts: the second round of each runs on remembered values.
#[test]
fn the_value_memo_changes_no_verdict() {
    let on = filter(&policy());
    let off = filter(&toml::from_str("value_memo = false").unwrap());
    let uris = [
        "/api/users?id=42",
        "/api/users?id=1'%20OR%20'1'='1",
        "/api/search?q=O%27Reilly%20books",
        "/api/x?q=%3Cscript%3Ealert(1)%3C/script%3E",
    ];
    for round in 0..2 {
        for uri in uris {
            let (a, b) = (verdict(&on, uri), verdict(&off, uri));
            assert_eq!(
                matches!(a, Decision::Deny(_)),
                matches!(b, Decision::Deny(_)),
                "round {round}: {uri}"
            );
        }
    }
    assert!(matches!(verdict(&on, uris[1]), Decision::Deny(_)));
    assert_eq!(verdict(&on, uris[0]), Decision::Continue);
}

/// Pathological inputs are handled within limits with a verdict — never a
/// panic or a stall (the engine bounds arguments, depth and body size).
#[test]
fn pathological_requests_get_a_verdict() {
    let f = filter(&policy());
    let cookies: String = (0..10_000).map(|i| format!("c{i}=v{i}; ")).collect();
    let mut c = ctx("192.0.2.10");
    let mut h = head("/", &[("host", "api.test"), ("cookie", &cookies)]);
    let _ = now(f.request_headers(&mut c, &mut h));

    let args: String = (0..5_000).map(|i| format!("a{i}=x&")).collect();
    let _ = verdict(&f, &format!("/search?{args}"));

    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let _ = body_verdicts(&f, &[deep.as_bytes()]);
    let _ = body_verdicts(&f, &[b"{\"a\":\"\xff\xfe\xc3\x28 invalid utf-8\"}"]);

    let mut multipart = Vec::new();
    for i in 0..2_000 {
        multipart.extend_from_slice(
            format!("--b\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n").as_bytes(),
        );
    }
    multipart.extend_from_slice(b"--b--\r\n");
    let _ = typed_body_verdicts(&f, "multipart/form-data; boundary=b", &[&multipart]);
}

/// A policy with response inspection and one leak rule of the test's own.
fn response_policy(dir: &std::path::Path) -> WafPolicy {
    let rule = dir.join("leak.conf");
    std::fs::write(
        &rule,
        "SecRule RESPONSE_BODY \"@rx (?i)you have an error in your sql syntax\" \
         \"id:990001,phase:4,deny,status:403,log,msg:'SQL error leak'\"\n\
         SecRule RESPONSE_HEADERS:X-Debug-Token \"@rx .\" \
         \"id:990002,phase:3,deny,status:403,log,msg:'debug header'\"\n",
    )
    .unwrap();
    let mut p = policy();
    p.inspect_response = true;
    p.extra_rules = vec![rule];
    p
}

fn response_verdicts(f: &WafFilter, headers: &[(&str, &str)], body: &str) -> (Decision, Decision) {
    let mut c = ctx("192.0.2.10");
    let mut h = head(
        "/api/items",
        &[("host", "api.test"), ("user-agent", "curl/8")],
    );
    assert_eq!(now(f.request_headers(&mut c, &mut h)), Decision::Continue);
    let mut b = http::Response::builder().status(200);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut rh = b.body(()).unwrap().into_parts().0;
    let on_head = f.response_headers(&mut c, &mut rh);
    let on_body = f.response_body(&mut c, &mut Bytes::from(body.to_string()), true);
    (on_head, on_body)
}

#[test]
fn response_phases_block_a_leaking_body_and_pass_a_clean_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = response_policy(dir.path());
    let f = filter(&p);
    assert!(f.body_interest().response);
    assert_eq!(f.body_interest().hold_response, p.response_body_limit.0);
    let json = [("content-type", "application/json")];
    let (h, b) = response_verdicts(&f, &json, r#"{"items":[1,2,3]}"#);
    assert_eq!((h, b), (Decision::Continue, Decision::Continue));
    let leak = r#"{"error":"You have an error in your SQL syntax near 'x'"}"#;
    match response_verdicts(&f, &json, leak) {
        (Decision::Continue, Decision::Deny(d)) => {
            assert_eq!(d.reason, WAF_RESPONSE_BLOCKED);
            assert_eq!(d.rule_ids, vec!["990001".to_string()]);
        }
        other => panic!("expected a phase-4 block, got {other:?}"),
    }
    // A content type outside the inspected list is not read.
    let (_, b) = response_verdicts(&f, &[("content-type", "image/png")], leak);
    assert_eq!(b, Decision::Continue);
}

#[test]
fn response_headers_are_judged_in_phase_3() {
    let dir = tempfile::tempdir().unwrap();
    let f = filter(&response_policy(dir.path()));
    let (h, _) = response_verdicts(
        &f,
        &[("content-type", "text/plain"), ("x-debug-token", "abc")],
        "ok",
    );
    assert!(matches!(h, Decision::Deny(d) if d.reason == WAF_RESPONSE_BLOCKED));
}

#[test]
fn without_response_inspection_the_response_is_not_touched() {
    let f = filter(&policy());
    assert!(!f.body_interest().response);
    assert_eq!(f.body_interest().hold_response, 0);
    let leak = "You have an error in your SQL syntax";
    let (h, b) = response_verdicts(&f, &[("content-type", "text/plain")], leak);
    assert_eq!((h, b), (Decision::Continue, Decision::Continue));
}
