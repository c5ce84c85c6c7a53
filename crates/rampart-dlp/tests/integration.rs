//! End-to-end tests of the public API: detector tables, JSON masking and
//! path rules, streaming across chunk boundaries, compression round trips,
//! the gateway filter, and a randomized no-panic/length property.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use rampart_core::{Decision, Filter, Mode, RequestCtx};
use rampart_dlp::compress::{compress, decompress, Encoding};
use rampart_dlp::{
    Action, DetectorId, DlpFilter, DlpOptions, Engine, EngineOptions, Location, StreamScanner,
};

fn engine() -> Arc<Engine> {
    Engine::new(&EngineOptions::default()).expect("default engine")
}

fn all_mask_engine() -> Arc<Engine> {
    let opts = EngineOptions {
        detectors: DetectorId::ALL.iter().map(|&d| (d, Action::Mask)).collect(),
        ..EngineOptions::default()
    };
    Engine::new(&opts).expect("engine")
}

fn detected(text: &str) -> Vec<DetectorId> {
    let ins = engine().inspect_text(text.as_bytes(), false);
    ins.findings
        .iter()
        .filter_map(|f| match f.kind {
            rampart_dlp::FindingKind::Detector(d) => Some(d),
            _ => None,
        })
        .collect()
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

#[test]
fn detector_true_positives() {
    let pem =
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
    let cases: Vec<(String, DetectorId)> = vec![
        ("card 4111 1111 1111 1111 ok".into(), DetectorId::Card),
        ("card 5555-5555-5555-4444.".into(), DetectorId::Card),
        ("amex 378282246310005".into(), DetectorId::Card),
        ("mc2 2223003122003222".into(), DetectorId::Card),
        (
            "iban GB82 WEST 1234 5698 7654 32 end".into(),
            DetectorId::Iban,
        ),
        ("iban DE89370400440532013000".into(), DetectorId::Iban),
        ("ssn 536-22-1234.".into(), DetectorId::Ssn),
        ("mail jane.doe@example.co.uk now".into(), DetectorId::Email),
        ("call +1 415 555 2671 now".into(), DetectorId::Phone),
        ("call (415) 555-2671".into(), DetectorId::Phone),
        ("call +442079460958".into(), DetectorId::Phone),
        (format!("auth {JWT}"), DetectorId::Jwt),
        (format!("key {pem} tail"), DetectorId::PrivateKey),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----".into(),
            DetectorId::PrivateKey,
        ),
        ("id AKIAIOSFODNN7EXAMPLE".into(), DetectorId::AwsKey),
        (
            "t ghp_abcdefghijklmnopqrstuvwxyz0123456789".into(),
            DetectorId::GithubToken,
        ),
        (
            format!("t github_pat_{}", "A1b2".repeat(20)),
            DetectorId::GithubToken,
        ),
        (
            "t xoxb-123456789012-abcdefghij".into(),
            DetectorId::SlackToken,
        ),
        (
            "h https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx"
                .into(),
            DetectorId::SlackWebhook,
        ),
        (
            format!("s sk_live_{}", "a1B2".repeat(6)),
            DetectorId::StripeKey,
        ),
        (
            "g AIzaSyA1234567890abcdefghijklmnopqrstuv".into(),
            DetectorId::GoogleApiKey,
        ),
        (
            format!("r rk_test_{}", "Zx9".repeat(14)),
            DetectorId::RampartKey,
        ),
        (
            "\tat com.acme.web.UserController.show(UserController.java:42)".into(),
            DetectorId::StackTrace,
        ),
        (
            "Traceback (most recent call last):\n  File \"app.py\", line 3".into(),
            DetectorId::StackTrace,
        ),
        (
            "   at Acme.Web.Api.Get(Int32 id) in C:\\src\\Api.cs:line 17".into(),
            DetectorId::StackTrace,
        ),
        (
            "    at Object.<anonymous> (/srv/app/index.js:10:5)".into(),
            DetectorId::StackTrace,
        ),
        (
            "You have an error in your SQL syntax; check the manual".into(),
            DetectorId::SqlError,
        ),
        (
            "ERROR:  syntax error at or near \"FROM\"".into(),
            DetectorId::SqlError,
        ),
        (
            "Unclosed quotation mark after the character string 'x'.".into(),
            DetectorId::SqlError,
        ),
        (
            "ORA-00933: SQL command not properly ended".into(),
            DetectorId::SqlError,
        ),
        (
            "sqlite3.OperationalError: no such table".into(),
            DetectorId::SqlError,
        ),
        (
            "<h1>Whitelabel Error Page</h1>".into(),
            DetectorId::DebugPage,
        ),
        (
            "<title>Werkzeug Debugger</title>".into(),
            DetectorId::DebugPage,
        ),
        ("Whoops! There was an error.".into(), DetectorId::DebugPage),
        (
            "Action Controller: Exception caught".into(),
            DetectorId::DebugPage,
        ),
    ];
    for (text, want) in cases {
        assert!(
            detected(&text).contains(&want),
            "{want} not found in {text:?}: {:?}",
            detected(&text)
        );
    }
}

#[test]
fn detector_false_positives() {
    let clean = [
        "order 4111111111111112 (fails Luhn)",
        "id 1234567812345670 random 16 digits",
        "id 9876543210123456",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "uuid 12345678-1234-1234-1234-123456789012",
        "iban GB82WEST12345698765433 bad checksum",
        "ssn 000-12-3456",
        "ssn 666-12-3456 and 912-34-5678 and 536-00-1234",
        "version 1.2.3 and 10.15.7 and 2.0.0-rc.1",
        "at 2024-01-15 10:30:00 and 2024-01-15T10:30:00Z",
        "epoch 1700000000 and 1700000000123",
        "ip 192.168.100.200",
        "size 1024 768 and ratio 16 9",
        "logo@2x.png",
        "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln",
        "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "AKIA lowercase akiaiosfodnn7example",
        "at the end of the day (something)",
    ];
    for text in clean {
        assert!(
            detected(text).is_empty(),
            "false positive in {text:?}: {:?}",
            detected(text)
        );
    }
}

#[test]
fn text_masking_is_length_preserving_and_shaped() {
    let text = "pay 4111-1111-1111-1111 mail jane@example.com key ghp_abcdefghijklmnopqrstuvwxyz0123456789.";
    let ins = all_mask_engine().inspect_text(text.as_bytes(), false);
    let out = String::from_utf8(ins.body.expect("masked")).expect("utf8");
    assert_eq!(out.len(), text.len());
    assert!(out.contains("****-****-****-1111"), "{out}");
    assert!(out.contains("j***@example.com"), "{out}");
    assert!(
        out.contains("***_************************************."),
        "{out}"
    );
    assert!(!ins.blocked);
    assert!(ins
        .findings
        .iter()
        .all(|f| matches!(f.location, Location::Offset(_))));
}

#[test]
fn json_masking_rewrites_only_offending_values() {
    let body = br#"{"name": "Jane", "card": "4111111111111111", "n": 4111111111111111, "note": "ssn 536-22-1234", "ok": 12, "list": [1, 2.5, true, null]}"#;
    let ins = engine().inspect(body, true);
    let out = ins.body.expect("masked");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("output is JSON");
    assert_eq!(v["card"], "************1111");
    assert_eq!(v["n"], "************1111");
    assert_eq!(v["note"], "ssn ***-**-****");
    assert_eq!(v["name"], "Jane");
    assert_eq!(v["ok"], 12);
    // Untouched bytes are copied through verbatim (key order, spacing).
    let s = String::from_utf8(out).expect("utf8");
    assert!(s.starts_with(r#"{"name": "Jane", "card": ""#), "{s}");
    assert!(
        s.ends_with(r#""ok": 12, "list": [1, 2.5, true, null]}"#),
        "{s}"
    );
    let paths: Vec<String> = ins
        .findings
        .iter()
        .map(|f| f.location.to_string())
        .collect();
    assert_eq!(paths, ["$.card", "$.n", "$.note"]);
}

#[test]
fn json_escapes_cannot_hide_values() {
    // \u0034 is '4': the raw text has no card number, the decoded value does.
    let body = br#"{"c": "\u0034111111111111111", "t": "line\n4111 1111 1111 1111"}"#;
    let ins = engine().inspect(body, true);
    let v: serde_json::Value = serde_json::from_slice(&ins.body.expect("masked")).expect("json");
    assert_eq!(v["c"], "************1111");
    assert_eq!(v["t"], "line\n**** **** **** 1111");
}

#[test]
fn clean_json_is_left_alone() {
    let body = br#"{"id": "550e8400-e29b-41d4-a716-446655440000", "ts": "2024-01-15T10:30:00Z", "v": "1.2.3"}"#;
    let ins = engine().inspect(body, true);
    assert!(ins.body.is_none() && ins.findings.is_empty() && !ins.blocked);
}

#[test]
fn json_path_rules_force_actions() {
    let opts = EngineOptions {
        json_rules: vec![
            ("$.user.ssn".into(), Action::Mask),
            ("$.items[*].secret".into(), Action::Mask),
            ("$.audit".into(), Action::Log),
        ],
        ..EngineOptions::default()
    };
    let e = Engine::new(&opts).expect("engine");
    let body = br#"{"user": {"ssn": "not-a-real-ssn", "name": "Al"}, "items": [{"secret": "abc"}, {"secret": 42, "x": "y"}], "audit": "who"}"#;
    let ins = e.inspect(body, true);
    let v: serde_json::Value = serde_json::from_slice(&ins.body.expect("masked")).expect("json");
    assert_eq!(v["user"]["ssn"], "***-*-****-***");
    assert_eq!(v["user"]["name"], "Al");
    assert_eq!(v["items"][0]["secret"], "***");
    assert_eq!(v["items"][1]["secret"], "**");
    assert_eq!(v["items"][1]["x"], "y");
    assert_eq!(v["audit"], "who");
    let ids: Vec<&str> = ins.findings.iter().map(|f| f.kind.id()).collect();
    assert_eq!(ids, ["json_path"; 4]);
    let block = Engine::new(&EngineOptions {
        json_rules: vec![("$.k".into(), Action::Block)],
        ..EngineOptions::default()
    })
    .expect("engine");
    assert!(block.inspect(br#"{"k": 1}"#, true).blocked);
    assert!(Engine::new(&EngineOptions {
        json_rules: vec![("user.ssn".into(), Action::Mask)],
        ..EngineOptions::default()
    })
    .is_err());
}

#[test]
fn invalid_json_falls_back_to_text() {
    let body = b"{\"card\": \"4111111111111111\", oops";
    let out = engine().inspect(body, true).body.expect("masked");
    assert_eq!(out, b"{\"card\": \"************1111\", oops");
}

fn stream_all(e: &Arc<Engine>, chunks: &[&[u8]]) -> (Vec<u8>, usize) {
    let mut s = StreamScanner::new(e.clone(), false);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.push(c));
    }
    out.extend(s.finish());
    (out, s.inspection().findings.len())
}

#[test]
fn card_split_at_every_offset_is_masked() {
    let e = engine();
    let text = b"prefix text, card 4111 1111 1111 1111 and more text after it.";
    let want = b"prefix text, card **** **** **** 1111 and more text after it.";
    for cut in 0..=text.len() {
        let (out, n) = stream_all(&e, &[&text[..cut], &text[cut..]]);
        assert_eq!(out, want, "cut at {cut}");
        assert_eq!(n, 1, "cut at {cut}");
    }
    // Byte by byte.
    let singles: Vec<&[u8]> = text.chunks(1).collect();
    assert_eq!(stream_all(&e, &singles).0, want);
}

#[test]
fn streaming_over_window_keeps_length_and_catches_late_values() {
    let e = engine();
    let mut body = vec![b'x'; 20_000];
    body.extend_from_slice(b" 4111111111111111 ");
    body.extend(vec![b'y'; 9_000]);
    body.extend_from_slice(
        b" -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY----- ",
    );
    let chunks: Vec<&[u8]> = body.chunks(1000).collect();
    let mut s = StreamScanner::new(e.clone(), false);
    let mut out = Vec::new();
    for c in &chunks {
        out.extend(s.push(c));
        assert!(s.held() <= e.window() + 1000);
    }
    out.extend(s.finish());
    assert_eq!(out.len(), body.len());
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.contains(" ************1111 "));
    assert!(!text.contains("MHcCAQEEI"));
    assert!(s.inspection().blocked, "private keys block by default");
}

#[test]
fn gzip_and_brotli_round_trips() {
    let e = engine();
    let body = br#"{"card": "4111111111111111"}"#;
    for enc in [Encoding::Gzip, Encoding::Brotli] {
        let z = compress(enc, body).expect("compress");
        let plain = decompress(enc, &z, 1 << 20).expect("decompress");
        let masked = e.inspect(&plain, true).body.expect("masked");
        let z2 = compress(enc, &masked).expect("recompress");
        assert_eq!(
            decompress(enc, &z2, 1 << 20).expect("round trip"),
            br#"{"card": "************1111"}"#
        );
    }
}

// ---- Filter through the trait ----

fn ctx() -> RequestCtx {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    RequestCtx::new(
        "req-1".into(),
        ip,
        SocketAddr::new(ip, 4000),
        Arc::from("main"),
    )
}

fn head(content_type: &str, encoding: Option<&str>) -> rampart_core::ResponseHead {
    let mut b = http::Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("etag", "\"abc\"")
        .header("content-md5", "xyz");
    if let Some(enc) = encoding {
        b = b.header("content-encoding", enc);
    }
    b.body(()).expect("response").into_parts().0
}

fn run_filter(
    f: &DlpFilter,
    h: &mut rampart_core::ResponseHead,
    chunks: &[&[u8]],
    ctx: &mut RequestCtx,
) -> (Vec<u8>, Vec<Decision>) {
    let mut decisions = vec![f.response_headers(ctx, h)];
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let mut chunk = Bytes::copy_from_slice(c);
        decisions.push(f.response_body(ctx, &mut chunk, i + 1 == chunks.len()));
        out.extend_from_slice(&chunk);
    }
    (out, decisions)
}

#[test]
fn filter_masks_held_json_and_fixes_validators() {
    let f = DlpFilter::new(DlpOptions::default()).expect("filter");
    assert!(f.body_interest().response && f.body_interest().hold_response == 1 << 20);
    let mut c = ctx();
    let mut h = head("application/json; charset=utf-8", None);
    let (out, decisions) = run_filter(&f, &mut h, &[br#"{"card":"4111111111111111"}"#], &mut c);
    assert_eq!(out, br#"{"card":"************1111"}"#);
    assert!(decisions.iter().all(|d| *d == Decision::Continue));
    assert_eq!(h.headers["etag"], "W/\"abc\"");
    assert!(h.headers.get("content-md5").is_none());
    assert_eq!(c.events.len(), 1);
    assert_eq!(c.events[0].reason, "sensitive_data_masked");
    assert_eq!(c.events[0].rule_ids, ["card"]);
    assert_eq!(DlpFilter::findings(&c).len(), 1);
    let logged = format!("{:?}", c.events);
    assert!(!logged.contains("4111"));
}

#[test]
fn filter_blocks_with_generic_502() {
    let f = DlpFilter::new(DlpOptions::default()).expect("filter");
    let mut c = ctx();
    let mut h = head("text/html", None);
    let (_, decisions) = run_filter(&f, &mut h, &[b"<h1>Whitelabel Error Page</h1>"], &mut c);
    let Decision::Deny(d) = &decisions[1] else {
        panic!("expected deny, got {decisions:?}")
    };
    assert_eq!(d.status, 502);
    assert_eq!(d.reason, "sensitive_data_blocked");
    assert_eq!(d.rule_ids, ["debug_page"]);
    assert!(!d.detail.contains("Whitelabel"));
}

#[test]
fn filter_gzip_and_br_bodies_are_masked_and_recompressed() {
    let f = DlpFilter::new(DlpOptions::default()).expect("filter");
    for (name, enc) in [("gzip", Encoding::Gzip), ("br", Encoding::Brotli)] {
        let mut c = ctx();
        let mut h = head("application/json", Some(name));
        let z = compress(enc, br#"{"ssn":"536-22-1234"}"#).expect("compress");
        let (out, _) = run_filter(&f, &mut h, &[&z], &mut c);
        assert_eq!(
            decompress(enc, &out, 1 << 20).expect("valid"),
            br#"{"ssn":"***-**-****"}"#
        );
    }
}

#[test]
fn filter_passes_corrupt_oversized_and_unlisted_bodies() {
    let opts = DlpOptions {
        max_decompressed: 64,
        ..DlpOptions::default()
    };
    let f = DlpFilter::new(opts).expect("filter");
    let card = br#"{"card":"4111111111111111"}"#;
    // Corrupt gzip: unchanged.
    let (out, _) = run_filter(
        &f,
        &mut head("application/json", Some("gzip")),
        &[b"\x1f\x8bjunk 4111111111111111"],
        &mut ctx(),
    );
    assert_eq!(out, b"\x1f\x8bjunk 4111111111111111");
    // Over the decompressed limit: unchanged.
    let big = compress(Encoding::Gzip, &[card.as_slice(), &[b' '; 100]].concat()).expect("gzip");
    let (out, _) = run_filter(
        &f,
        &mut head("application/json", Some("gzip")),
        &[&big],
        &mut ctx(),
    );
    assert_eq!(out, big);
    // Unlisted content type and unsupported encoding: unchanged.
    let (out, _) = run_filter(&f, &mut head("image/png", None), &[card], &mut ctx());
    assert_eq!(out, card);
    let (out, _) = run_filter(
        &f,
        &mut head("application/json", Some("zstd")),
        &[card],
        &mut ctx(),
    );
    assert_eq!(out, card);
}

#[test]
fn filter_streams_bodies_larger_than_hold() {
    let f = DlpFilter::new(DlpOptions {
        hold_limit: 10,
        ..DlpOptions::default()
    })
    .expect("filter");
    let mut c = ctx();
    let body = b"hello world, card 4111 1111 1111 1111 end of a longer text body";
    let chunks: Vec<&[u8]> = body.chunks(10).collect();
    let (out, _) = run_filter(&f, &mut head("text/plain", None), &chunks, &mut c);
    assert_eq!(
        out,
        b"hello world, card **** **** **** 1111 end of a longer text body"
    );
}

#[test]
fn filter_monitor_mode_changes_nothing() {
    let f = DlpFilter::new(DlpOptions {
        mode: Mode::Monitor,
        ..DlpOptions::default()
    })
    .expect("filter");
    assert_eq!(f.mode(), Mode::Monitor);
    let mut c = ctx();
    let mut h = head("application/json", None);
    let body = br#"{"card":"4111111111111111"}"#;
    let (out, _) = run_filter(&f, &mut h, &[body], &mut c);
    assert_eq!(out, body);
    assert_eq!(h.headers["etag"], "\"abc\"");
    assert_eq!(c.events.len(), 1);
    assert!(!c.events[0].enforced);
}

#[test]
fn masking_never_panics_and_keeps_length() {
    let e = all_mask_engine();
    let alphabet: &[u8] = b"0123456789 -+()@.:_/\\\"{}[],abcxyzAKIAghp_rk_live_eyJ4111\n\xc3\xa9";
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..400 {
        let len = rng.usize(0..300);
        let body: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.usize(0..alphabet.len())])
            .collect();
        let ins = e.inspect_text(&body, rng.bool());
        if let Some(out) = &ins.body {
            assert_eq!(out.len(), body.len());
        }
        let _ = e.inspect(&body, true);
        let cut = rng.usize(0..=body.len());
        let (out, _) = stream_all(&e, &[&body[..cut], &body[cut..]]);
        assert_eq!(out.len(), body.len());
    }
}

#[test]
fn filter_streaming_block_denies_and_masks() {
    let f = DlpFilter::new(DlpOptions {
        hold_limit: 16,
        ..DlpOptions::default()
    })
    .expect("filter");
    let mut c = ctx();
    let body =
        b"log line one\nYou have an error in your SQL syntax near 'x'\nmore text follows here";
    let chunks: Vec<&[u8]> = body.chunks(16).collect();
    let (out, decisions) = run_filter(&f, &mut head("text/plain", None), &chunks, &mut c);
    assert_eq!(out.len(), body.len());
    assert!(!String::from_utf8_lossy(&out).contains("error in your SQL"));
    let denies: Vec<_> = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Deny(_)))
        .collect();
    assert_eq!(denies.len(), 1, "{decisions:?}");
}

#[test]
fn rampart_key_hook_is_used() {
    fn only_checksum_ok(token: &str) -> bool {
        token.ends_with("OK")
    }
    let e = Engine::new(&EngineOptions {
        rampart_key_check: Some(only_checksum_ok),
        ..EngineOptions::default()
    })
    .expect("engine");
    let good = format!("rk_test_{}OK", "a".repeat(40));
    let bad = format!("rk_test_{}NO", "a".repeat(40));
    assert_eq!(e.inspect_text(good.as_bytes(), false).findings.len(), 1);
    assert!(e.inspect_text(bad.as_bytes(), false).findings.is_empty());
}

#[test]
fn bad_options_are_errors() {
    for mask_char in [b'a', b'"', b'\\', b' ', 0x80] {
        assert!(Engine::new(&EngineOptions {
            mask_char,
            ..EngineOptions::default()
        })
        .is_err());
    }
    assert!(Engine::new(&EngineOptions {
        window: 10,
        ..EngineOptions::default()
    })
    .is_err());
}
