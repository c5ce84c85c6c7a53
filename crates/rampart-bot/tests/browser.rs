//! Real-browser test of the proof-of-work challenge page, plus the
//! `<noscript>` CAPTCHA fallback over plain HTTP.
//!
//! A small hyper server plays the gateway: it runs `BotFilter`'s request
//! hooks on every request, sends a denial through
//! `rampart_core::respond::render_as`, and otherwise answers `{"ok":true}`
//! as the protected API would. Headless Chromium, driven over the DevTools
//! protocol, must solve the puzzle in the page's JavaScript, post the
//! solution, reload, and end up on the API response with the clearance
//! cookie. The browser is kept off the network except 127.0.0.1.
//!
//! The browser driver is `rampart_testkit::browser`: Chromium is looked up
//! in `$CHROMIUM`, then `/usr/bin/chromium`, `chromium`, `chromium-browser`
//! on `PATH`. Set `RAMPART_SKIP_BROWSER_TESTS=1` to skip the browser tests
//! on a machine without it (never honoured when `CI` is set).

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rampart_bot::score::{Policy, Scorer};
use rampart_bot::ua::UaClassifier;
use rampart_bot::{BotFilter, BotOptions, ChallengeKit};
use rampart_core::respond::render_as;
use rampart_core::{Decision, Filter, RequestCtx};
use rampart_testkit::browser::{browse_until, chromium_or_skip, Browser, Visit};
use serde_json::json;
use tokio::net::TcpListener;

const OVERALL: Duration = Duration::from_secs(60);

/// The puzzle difficulty of these tests: the default policy's lowest band
/// (what a real browser is asked first), or `RAMPART_BROWSER_POW_BITS` to
/// measure another difficulty.
fn difficulty() -> u8 {
    std::env::var("RAMPART_BROWSER_POW_BITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(Policy::default().min_difficulty)
}

/// One request as the gateway stand-in handled it.
#[derive(Debug, Clone)]
struct ApiHit {
    path: String,
    /// Reason code of the denial sent, `None` when the API answered.
    denied: Option<&'static str>,
    /// The request carried a clearance that verifies for this client.
    cleared: bool,
    /// When the stand-in answered.
    at: Instant,
    /// The proof-of-work counter sent (verify requests): tries made.
    solution: Option<u64>,
}

/// The filter as configured for these tests: browsers (even headless ones)
/// are challenged at a low difficulty, never blocked.
fn filter(kit: Arc<ChallengeKit>) -> BotFilter {
    let scorer = Scorer::new(Default::default(), UaClassifier::builtin());
    let options = BotOptions {
        policy: Policy {
            challenge_at: 30,
            block_at: 100,
            min_difficulty: difficulty(),
            max_difficulty: difficulty(),
        },
        ..BotOptions::default()
    };
    BotFilter::new(scorer, kit, options)
}

/// The gateway stand-in, on 127.0.0.1:0.
struct Gateway {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<ApiHit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    async fn start() -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let kit = common::kit();
        let filter = Arc::new(filter(kit.clone()));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept_loop(listener, filter, kit, hits.clone()));
        Gateway { addr, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> Vec<ApiHit> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Hits = Arc<Mutex<Vec<ApiHit>>>;

async fn accept_loop(
    listener: TcpListener,
    filter: Arc<BotFilter>,
    kit: Arc<ChallengeKit>,
    hits: Hits,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (filter, kit, hits) = (filter.clone(), kit.clone(), hits.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (filter, kit, hits) = (filter.clone(), kit.clone(), hits.clone());
                async move { Ok::<_, Infallible>(handle(&filter, &kit, &hits, peer, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One request through the filter's hooks, as the gateway runs them.
async fn handle(
    filter: &BotFilter,
    kit: &ChallengeKit,
    hits: &Mutex<Vec<ApiHit>>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (mut head, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let solution = head
        .headers
        .get("x-rampart-solution")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut ctx = RequestCtx::new("rid".into(), peer.ip(), peer, Arc::from("test"));
    ctx.has_request_body = !body.is_empty();
    let mut decision = filter.request_headers(&mut ctx, &mut head).resolve().await;
    if !matches!(decision, Decision::Deny(_)) && head.method == Method::POST {
        decision = filter.request_body(&mut ctx, &body, true);
    }
    let hit = ApiHit {
        path: head.uri.path().to_string(),
        denied: None,
        cleared: kit.is_cleared(&ctx, &head),
        at: Instant::now(),
        solution,
    };
    if let Decision::Deny(denial) = decision {
        let denied = Some(denial.reason);
        hits.lock().unwrap().push(ApiHit { denied, ..hit });
        return render_as(&denial, "rid", true).map(Full::new);
    }
    hits.lock().unwrap().push(hit);
    let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let (mut parts, body) = resp.into_parts();
    filter.response_headers(&mut ctx, &mut parts);
    Response::from_parts(parts, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_solves_the_pow_page_and_reaches_the_api() {
    let Some(binary) = chromium_or_skip() else {
        return;
    };
    tokio::time::timeout(OVERALL, async {
        let gateway = Gateway::start().await;
        let browser = Browser::launch(&binary);
        let mut cdp = browser.cdp().await;
        let url = gateway.url("/api/orders?page=2");
        let Visit {
            text,
            path,
            elapsed,
            cookies,
            ..
        } = browse_until(&mut cdp, &url, "\"ok\":true", Duration::from_secs(30)).await;
        eprintln!("challenge → solved → API in {elapsed:?}");

        assert!(
            text.contains("\"ok\":true"),
            "the browser should end on the API response, got {path}: {text:?}"
        );
        assert_eq!(path, "/api/orders", "back on the original URL");
        let clearance = cookies
            .iter()
            .find(|c| c["name"] == "__rampart_clearance")
            .unwrap_or_else(|| panic!("no clearance cookie in {cookies:?}"));
        assert_eq!(clearance["httpOnly"], true);
        assert_eq!(clearance["sameSite"], "Lax");

        // Server side: the first navigation was challenged, the page's
        // script passed the verify endpoint once, and the API was reached
        // only with a clearance valid for this client.
        let hits = gateway.hits();
        let orders: Vec<_> = hits.iter().filter(|h| h.path == "/api/orders").collect();
        assert_eq!(orders[0].denied, Some("bot_challenge"), "{hits:?}");
        let verified: Vec<_> = hits
            .iter()
            .filter(|h| h.denied == Some("bot_challenge_passed"))
            .collect();
        assert_eq!(verified.len(), 1, "{hits:?}");
        // Page served → solution posted: load, parse and proof of work.
        let took = verified[0].at.duration_since(orders[0].at);
        let tries = verified[0].solution.unwrap_or(0) + 1;
        eprintln!(
            "{} bits: challenge page to verified solution in {took:?}, {tries} hashes, \
             {:.0} hashes/s",
            difficulty(),
            tries as f64 / took.as_secs_f64()
        );
        let api: Vec<_> = orders.iter().filter(|h| h.denied.is_none()).collect();
        assert!(!api.is_empty(), "the API was never reached: {hits:?}");
        assert!(api.iter().all(|h| h.cleared), "{hits:?}");
    })
    .await
    .expect("browser test finished within 60 s");
}

/// The page's pure-JS SHA-256 against ring's, in Chromium, for every
/// length of the final block (one- and two-block tails) and counters of 1
/// to 12 digits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_solver_sha256_matches_the_reference_in_chromium() {
    let Some(binary) = chromium_or_skip() else {
        return;
    };
    const ALPHABET: &str =
        "pow.e42.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const COUNTERS: [u64; 4] = [0, 9, 123_456, 987_654_321_012];
    tokio::time::timeout(OVERALL, async {
        let browser = Browser::launch(&binary);
        let mut cdp = browser.cdp().await;
        let session = cdp.new_tab().await;
        let expression = format!(
            "(function(){{var A='{ALPHABET}'.repeat(3),out=[];\
             for(var len=1;len<=150;len++){{var d={{token:A.slice(0,len),difficulty:0}};\
             {solver}\
             for(var c of {counters:?}){{tryc(c);var h='';\
             for(var q=0;q<8;q++){{h+=(H[q]>>>0).toString(16).padStart(8,'0');}}out.push(h);}}}}\
             return JSON.stringify(out);}})()",
            solver = rampart_bot::pages::POW_SOLVER_JS,
            counters = COUNTERS,
        );
        let result = cdp
            .call(
                Some(&session),
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await
            .unwrap();
        let text = result["result"]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("evaluation failed: {result}"));
        let got: Vec<String> = serde_json::from_str(text).unwrap();
        let alphabet = ALPHABET.repeat(3);
        let want: Vec<String> = (1..=150)
            .flat_map(|len| {
                let token = &alphabet[..len];
                COUNTERS.map(|c| {
                    rampart_bot::crypto::hex(&rampart_bot::crypto::sha256(
                        format!("{token}:{c}").as_bytes(),
                    ))
                })
            })
            .collect();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "token length {}, counter {}",
                i / 4 + 1,
                COUNTERS[i % 4]
            );
        }
    })
    .await
    .expect("finished within 60 s");
}

// ---------------------------------------------------------------------
// The <noscript> CAPTCHA fallback, over plain HTTP
// ---------------------------------------------------------------------

/// One HTTP/1.1 request over a fresh connection.
async fn http(addr: SocketAddr, req: Request<Full<Bytes>>) -> Response<Bytes> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

/// The text CAPTCHA's token and question from the page's `<noscript>`.
fn text_captcha(page: &str) -> (String, String) {
    let noscript = &page[page.find("<noscript>").unwrap()..page.find("</noscript>").unwrap()];
    let form = &noscript[noscript.rfind("<form").unwrap()..];
    let token = between(form, "action=\"/.rampart/challenge/captcha?t=", "\"");
    let question = between(form, "<label for=\"ta\">", "</label>");
    (token.to_string(), question.to_string())
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).unwrap() + start.len();
    &s[from..from + s[from..].find(end).unwrap()]
}

/// Solves "What is seven plus two?" / "... minus ...".
fn answer(question: &str) -> usize {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    let n = |w: &str| {
        WORDS
            .iter()
            .position(|x| *x == w.trim_end_matches('?'))
            .unwrap()
    };
    let words: Vec<&str> = question.split(' ').collect();
    let op = words
        .iter()
        .position(|w| *w == "plus" || *w == "minus")
        .unwrap();
    let (a, b) = (n(words[op - 1]), n(words[op + 1]));
    if words[op] == "plus" {
        a + b
    } else {
        a - b
    }
}

#[tokio::test]
async fn noscript_captcha_form_post_grants_the_clearance_cookie() {
    tokio::time::timeout(OVERALL, async {
        let gateway = Gateway::start().await;
        // A headless browser with JavaScript off: challenged, and only the
        // forms inside <noscript> are usable.
        let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  HeadlessChrome/131.0.0.0 Safari/537.36";
        let get = |cookie: Option<&str>| {
            let mut b = Request::get("/account")
                .header("host", "127.0.0.1")
                .header("user-agent", ua)
                .header("accept", "text/html,application/xhtml+xml");
            if let Some(c) = cookie {
                b = b.header("cookie", c);
            }
            b.body(Full::new(Bytes::new())).unwrap()
        };
        let page = http(gateway.addr, get(None)).await;
        assert_eq!(page.status(), StatusCode::FORBIDDEN);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let page = std::str::from_utf8(page.body()).unwrap();
        let (token, question) = text_captcha(page);

        let form = format!("answer={}&return_to=%2Faccount", answer(&question));
        let post = Request::post(format!("/.rampart/challenge/captcha?t={token}"))
            .header("host", "127.0.0.1")
            .header("user-agent", ua)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .unwrap();
        let passed = http(gateway.addr, post).await;
        assert_eq!(passed.status(), StatusCode::SEE_OTHER);
        assert_eq!(passed.headers()["location"], "/account");
        let set_cookie = passed.headers()["set-cookie"].to_str().unwrap();
        assert!(
            set_cookie.starts_with("__rampart_clearance="),
            "{set_cookie}"
        );
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let hits = gateway.hits();
        assert!(
            hits.iter().all(|h| h.denied.is_some()),
            "nothing reached the API yet: {hits:?}"
        );

        // Following the redirect with the cookie reaches the API.
        let api = http(gateway.addr, get(Some(&cookie))).await;
        assert_eq!(api.status(), StatusCode::OK);
        assert_eq!(api.body().as_ref(), b"{\"ok\":true}");
        let hits = gateway.hits();
        let last = hits.last().unwrap();
        assert!(last.denied.is_none() && last.cleared, "{hits:?}");
    })
    .await
    .expect("finished within 60 s");
}
