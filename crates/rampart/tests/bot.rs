//! Bot defence and the login guard through the real gateway: challenges
//! solved by a Rust client, clearance cookies, replays and forgeries,
//! the CAPTCHA path, trusted API clients, credential stuffing from few and
//! from many addresses, breached passwords, and a fleet sharing Redis.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use rampart_testkit::RedisServer;

/// An HTTP library's User-Agent: scored `ua_automation` (35), challenged.
const SDK: &str = "python-requests/2.31";
/// Low difficulty so every solve takes milliseconds.
const EASY: &str = "min_difficulty = 6, max_difficulty = 8";
const VERIFY: &str = "/.rampart/challenge/verify";

fn bot_route(up: &Upstream, top: &str, bot: &str) -> String {
    one_route(up, top, &format!("bot = {{ {EASY}, {bot} }}"))
}

/// A request with headers and a body.
async fn call(url: &str, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Got {
    let mut b = req(method, url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(b.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await
}

fn header(g: &Got, name: &str) -> String {
    g.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// `name=value` of the clearance cookie in a response's `Set-Cookie`.
fn clearance_cookie(g: &Got) -> String {
    g.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__rampart_clearance="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no clearance cookie in {:?}", g.headers))
        .to_string()
}

/// The API challenge's puzzle and difficulty, checked for its documented shape.
fn api_puzzle(g: &Got) -> (String, u8) {
    assert_eq!(g.status, 403, "{}", g.text());
    assert_eq!(header(g, "x-rampart-challenge"), "pow");
    assert!(header(g, "content-type").starts_with("application/json"));
    let j = g.json();
    assert_eq!(j["challenge"], "pow");
    assert_eq!(j["algorithm"], "sha256-leading-zero-bits");
    let puzzle = j["puzzle"].as_str().unwrap().to_string();
    assert_eq!(header(g, "x-rampart-puzzle"), puzzle);
    let difficulty = j["difficulty"].as_u64().unwrap() as u8;
    assert_eq!(header(g, "x-rampart-difficulty"), difficulty.to_string());
    (puzzle, difficulty)
}

async fn verify(gw: &Gw, ua: &str, puzzle: &str, solution: &str) -> Got {
    call(
        &gw.url("main", VERIFY),
        "POST",
        &[
            ("user-agent", ua),
            ("x-rampart-puzzle", puzzle),
            ("x-rampart-solution", solution),
        ],
        b"",
    )
    .await
}

async fn get_as(gw: &Gw, path: &str, ua: &str, cookie: Option<&str>) -> Got {
    let mut h = vec![("user-agent", ua), ("accept", "application/json")];
    if let Some(c) = cookie {
        h.push(("cookie", c));
    }
    call(&gw.url("main", path), "GET", &h, b"").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solved_challenge_earns_a_clearance_that_reaches_the_upstream() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&bot_route(&up, "", "mode = \"enforce\"")).await;

    let challenged = get_as(&gw, "/orders", SDK, None).await;
    let (puzzle, difficulty) = api_puzzle(&challenged);
    assert_eq!(
        up.hits(),
        0,
        "a challenged request never reaches the upstream"
    );

    let solution = rampart_bot::pow::solve(&puzzle, difficulty);
    let passed = verify(&gw, SDK, &puzzle, &solution).await;
    assert_eq!(passed.status, 200, "{}", passed.text());
    let cookie = clearance_cookie(&passed);
    assert_eq!(passed.json()["clearance"].as_str().unwrap(), &cookie[20..]);

    let through = get_as(&gw, "/orders", SDK, Some(&cookie)).await;
    assert_eq!(through.status, 200, "{}", through.text());
    assert_eq!(through.json()["server"], "up");
    assert_eq!(up.hits(), 1);

    // The same solution again: single use, refused.
    let replay = verify(&gw, SDK, &puzzle, &solution).await;
    assert_eq!(replay.status, 403);
    assert_eq!(replay.json()["reason"], "bot_challenge_failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_client_retries_with_the_solution_inline() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&bot_route(&up, "", "")).await;
    let url = gw.url("main", "/items");
    let first = call(
        &url,
        "POST",
        &[("user-agent", SDK), ("content-type", "application/json")],
        b"{}",
    )
    .await;
    let (puzzle, difficulty) = api_puzzle(&first);
    let solution = rampart_bot::pow::solve(&puzzle, difficulty);
    let retry = call(
        &url,
        "POST",
        &[
            ("user-agent", SDK),
            ("content-type", "application/json"),
            ("x-rampart-puzzle", &puzzle),
            ("x-rampart-solution", &solution),
        ],
        b"{}",
    )
    .await;
    assert_eq!(retry.status, 200, "{}", retry.text());
    let seen = &retry.json()["headers"];
    assert!(
        seen.get("x-rampart-solution").is_none(),
        "solution headers are for rampart only"
    );
    let cookie = clearance_cookie(&retry);
    assert_eq!(get_as(&gw, "/items", SDK, Some(&cookie)).await.status, 200);
    // The inline solution is single use too.
    let again = call(
        &url,
        "GET",
        &[
            ("user-agent", SDK),
            ("x-rampart-puzzle", &puzzle),
            ("x-rampart-solution", &solution),
        ],
        b"",
    )
    .await;
    assert_eq!(again.status, 403);
    assert_eq!(header(&again, "x-rampart-challenge"), "pow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_or_moved_clearances_are_refused() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&bot_route(&up, "", "")).await;
    let (puzzle, difficulty) = api_puzzle(&get_as(&gw, "/", SDK, None).await);
    let solution = rampart_bot::pow::solve(&puzzle, difficulty);
    let cookie = clearance_cookie(&verify(&gw, SDK, &puzzle, &solution).await);
    assert_eq!(get_as(&gw, "/", SDK, Some(&cookie)).await.status, 200);

    let token = &cookie["__rampart_clearance=".len()..];
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 4, "purpose.key.payload.tag");
    let flip = |s: &str| {
        let mut b = s.as_bytes().to_vec();
        b[0] = if b[0] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let forged = [
        // payload changed (e.g. a later expiry), signature kept
        format!("{}.{}.{}.{}", parts[0], parts[1], flip(parts[2]), parts[3]),
        // signature changed
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], flip(parts[3])),
        // another key id
        format!("{}.e1.{}.{}", parts[0], parts[2], parts[3]),
        // a puzzle token presented as a clearance
        puzzle.clone(),
        "garbage".to_string(),
    ];
    for f in &forged {
        let got = get_as(&gw, "/", SDK, Some(&format!("__rampart_clearance={f}"))).await;
        assert_eq!(got.status, 403, "forged clearance {f} was accepted");
        assert_eq!(header(&got, "x-rampart-challenge"), "pow");
    }
    // A real clearance copied to another client program is not valid there.
    let moved = get_as(&gw, "/", "curl/8.5.0", Some(&cookie)).await;
    assert_eq!(moved.status, 403);
    assert_eq!(up.hits(), 1);
}

/// The CAPTCHA forms of a challenge page: (action URL, question) of the
/// accessible text question.
fn text_captcha(html: &str) -> (String, String) {
    let form = html
        .split("<form ")
        .find(|f| f.contains("for=\"ta\""))
        .unwrap_or_else(|| panic!("no text CAPTCHA form in {html}"));
    let action = form.split("action=\"").nth(1).unwrap();
    let action = action[..action.find('"').unwrap()].replace("&amp;", "&");
    let label = form.split("for=\"ta\">").nth(1).unwrap();
    let question = label[..label.find('<').unwrap()].to_string();
    (action, question)
}

/// "What is seven plus three? Answer with digits." → "10".
fn answer(question: &str) -> String {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    let words: Vec<&str> = question
        .trim_end_matches("? Answer with digits.")
        .split(' ')
        .collect();
    let n = |w: &str| WORDS.iter().position(|x| *x == w).unwrap() as i64;
    let (a, op, b) = (n(words[2]), words[3], n(words[4]));
    match op {
        "plus" => (a + b).to_string(),
        "minus" => (a - b).to_string(),
        other => panic!("unknown operation {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_without_javascript_passes_through_the_captcha() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&bot_route(&up, "", "")).await;
    let ua = "curl/8.5.0";
    let nav = [("user-agent", ua), ("accept", "text/html")];
    let page = call(&gw.url("main", "/shop?item=7"), "GET", &nav, b"").await;
    assert_eq!(page.status, 403);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let html = page.text();
    assert!(html.contains("<noscript>"), "the page has a no-JS fallback");
    let (action, question) = text_captcha(&html);
    assert!(
        action.starts_with("/.rampart/challenge/captcha"),
        "{action}"
    );

    let form = |a: &str| format!("answer={a}&return_to=%2Fshop%3Fitem%3D7");
    let form_headers = [
        ("user-agent", ua),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let wrong = call(
        &gw.url("main", &action),
        "POST",
        &form_headers,
        form("99").as_bytes(),
    )
    .await;
    assert_eq!(wrong.status, 403, "a wrong answer is refused");

    // The first page's CAPTCHA was used up by the wrong answer: a fresh one.
    let page = call(&gw.url("main", "/shop?item=7"), "GET", &nav, b"").await;
    let (action, question2) = text_captcha(&page.text());
    let _ = question;
    let right = call(
        &gw.url("main", &action),
        "POST",
        &form_headers,
        form(&answer(&question2)).as_bytes(),
    )
    .await;
    assert_eq!(right.status, 303, "{}", right.text());
    assert_eq!(header(&right, "location"), "/shop?item=7");
    let cookie = clearance_cookie(&right);
    let through = call(
        &gw.url("main", "/shop?item=7"),
        "GET",
        &[
            ("user-agent", ua),
            ("accept", "text/html"),
            ("cookie", &cookie),
        ],
        b"",
    )
    .await;
    assert_eq!(through.status, 200);
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_authenticated_clients_skip_challenges_when_configured() {
    let up = Upstream::start("up").await;
    // Route `api`: API-key clients skip (the default); route `strict`: no
    // method skips, only the `bots:trusted` scope does.
    let gw = Gw::start(&format!(
        "{}\n[[routes]]\nname = \"strict\"\npath = {{ prefix = \"/strict/\" }}\nupstream = \"up\"\n\
         auth = {{ optional = true }}\nbot = {{ {EASY}, skip_challenge_for = [], skip_scopes = [\"bots:trusted\"] }}\n",
        one_route(
            &up,
            "",
            &format!("path = {{ prefix = \"/api/\" }}\nauth = {{ optional = true }}\nbot = {{ {EASY} }}")
        )
    ))
    .await;
    let (_, plain) = consumer_with_key(&keyring(&gw), &[]).await;
    let (_, trusted) = consumer_with_key(&keyring(&gw), &["bots:trusted"]).await;
    let with = |key: &str| format!("Bearer {key}");
    let get = |path: &str, key: Option<String>| {
        let url = gw.url("main", path);
        async move {
            let mut h = vec![("user-agent", SDK.to_string())];
            if let Some(k) = key {
                h.push(("authorization", k));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call(&url, "GET", &h, b"").await
        }
    };
    assert_eq!(
        get("/api/x", None).await.status,
        403,
        "anonymous: challenged"
    );
    let keyed = get("/api/x", Some(with(&plain))).await;
    assert_eq!(keyed.status, 200, "API key client skips: {}", keyed.text());
    let strict = get("/strict/x", Some(with(&plain))).await;
    assert_eq!(strict.status, 403, "no skip for API keys on this route");
    assert_eq!(header(&strict, "x-rampart-challenge"), "pow");
    assert_eq!(get("/strict/x", Some(with(&trusted))).await.status, 200);
    // Blocks still apply to trusted clients.
    let scanner = call(
        &gw.url("main", "/api/x"),
        "GET",
        &[
            ("user-agent", "sqlmap/1.7"),
            ("authorization", &with(&plain)),
        ],
        b"",
    )
    .await;
    assert_eq!(scanner.status, 403);
    assert_eq!(scanner.json()["reason"], "bot_blocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_mode_only_records_and_the_clearance_survives_a_reload() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&bot_route(&up, "", "")).await;
    let (puzzle, difficulty) = api_puzzle(&get_as(&gw, "/", SDK, None).await);
    let solution = rampart_bot::pow::solve(&puzzle, difficulty);
    let cookie = clearance_cookie(&verify(&gw, SDK, &puzzle, &solution).await);

    gw.write_config(&bot_route(&up, "", "clearance_ttl = \"2h\""));
    gw.running.control.reload_from_disk().await.expect("reload");
    assert_eq!(
        get_as(&gw, "/", SDK, Some(&cookie)).await.status,
        200,
        "keys survive a reload"
    );
    gw.write_config(&bot_route(&up, "", "mode = \"monitor\""));
    gw.running.control.reload_from_disk().await.expect("reload");
    assert_eq!(get_as(&gw, "/", SDK, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bot_config_is_refused_with_the_key_path() {
    let up = Upstream::start("up").await;
    for (bot, key) in [
        (
            "challenge_at = 90, block_at = 80",
            "routes[0].bot.challenge_at",
        ),
        ("min_difficulty = 40", "routes[0].bot.min_difficulty"),
        ("skip_challenge_for = [\"password\"]", "routes[0].bot"),
        (
            "good_bots = [{ name = \"g\", user_agent = \"Googlebot\", networks = [] }]",
            "routes[0].bot.good_bots[0].networks",
        ),
    ] {
        let err = Gw::try_start(&one_route(&up, "", &format!("bot = {{ {bot} }}")))
            .await
            .err()
            .unwrap_or_else(|| panic!("{bot} was accepted"))
            .to_string();
        assert!(err.contains(key), "{bot}: {err}");
    }
    let missing = Gw::try_start(&one_route(
        &up,
        "",
        "path = { exact = \"/login\" }\nlogin_guard = { breached = { path = \"{dir}/nope\" } }",
    ))
    .await
    .err()
    .expect("a missing dataset is an error")
    .to_string();
    assert!(
        missing.contains("routes[0].login_guard.breached.path"),
        "{missing}"
    );
}

// ---- login guard ---------------------------------------------------------

/// A gateway in front of the sample API's `POST /login` (alice/wonderland),
/// trusting X-Forwarded-For from 127.0.0.1 so a test can speak for many
/// addresses.
async fn login_gateway(guard: &str) -> (Gw, SocketAddr) {
    let api = rampart::sample_api::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let gw = Gw::start(&format!(
        "[server]\nworkers = 2\nwatch = false\ntrusted_proxies = [\"127.0.0.1/32\"]\n\n\
         [listeners.main]\naddress = \"127.0.0.1:0\"\n\n[upstreams.api]\nservers = [\"{api}\"]\n\n\
         [[routes]]\nname = \"login\"\npath = {{ exact = \"/login\" }}\nupstream = \"api\"\n\
         login_guard = {{ {guard} }}\n"
    ))
    .await;
    (gw, api)
}

/// Fast delays so a test of thousands of attempts takes seconds.
const QUICK: &str = "delay = { base = \"1ms\", max = \"2ms\" }";

async fn login(gw: &Gw, ip: &str, user: &str, password: &str) -> Got {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    call(
        &gw.url("main", "/login"),
        "POST",
        &[
            ("x-forwarded-for", ip),
            ("content-type", "application/json"),
            ("user-agent", "Mozilla/5.0"),
        ],
        body.as_bytes(),
    )
    .await
}

/// Outcomes of a stuffing run: (reached the upstream, challenged, blocked).
#[derive(Debug, Default)]
struct Tally {
    upstream: usize,
    challenged: usize,
    blocked: usize,
}

/// Runs `pairs` attempts, `ip_of(i)` choosing the source, 16 at a time.
async fn stuff(gw: &Gw, pairs: usize, ip_of: impl Fn(usize) -> String) -> Tally {
    let mut tally = Tally::default();
    let gw = std::sync::Arc::new(gw.url("main", "/login"));
    for chunk in (0..pairs).collect::<Vec<_>>().chunks(16) {
        let runs = chunk.iter().map(|&i| {
            let (ip, url) = (ip_of(i), gw.clone());
            async move {
                let body = serde_json::json!({ "username": format!("user{i}@example.com"), "password": format!("pw{i}") });
                call(
                    &url,
                    "POST",
                    &[
                        ("x-forwarded-for", ip.as_str()),
                        ("content-type", "application/json"),
                        ("user-agent", "Mozilla/5.0"),
                    ],
                    body.to_string().as_bytes(),
                )
                .await
            }
        });
        for got in futures_util::future::join_all(runs).await {
            match (
                got.status.as_u16(),
                header(&got, "x-rampart-challenge").as_str(),
            ) {
                (401, _) => tally.upstream += 1,
                (403, "pow") => tally.challenged += 1,
                (403, _) => tally.blocked += 1,
                (s, _) => panic!("unexpected {s}: {}", got.text()),
            }
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuffing_from_a_few_addresses_is_stopped_and_real_users_still_log_in() {
    let (gw, _) = login_gateway(QUICK).await;
    let t = stuff(&gw, 2000, |i| format!("203.0.113.{}", 1 + i % 5)).await;
    // Each address gets a handful of usernames through, is challenged, and
    // blocked once it has tried 40 usernames.
    assert!(t.upstream <= 5 * 10, "{t:?}");
    assert!(t.blocked >= 1500, "{t:?}");
    assert!(t.challenged >= 5, "{t:?}");
    let blocked = login(&gw, "203.0.113.1", "alice", "wonderland").await;
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.json()["reason"], "login_source_blocked");
    assert!(!header(&blocked, "retry-after").is_empty());

    let alice = login(&gw, "198.51.100.7", "alice", "wonderland").await;
    assert_eq!(alice.status, 200, "{}", alice.text());
    assert_eq!(alice.json()["token"], "demo-session-token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuffing_spread_over_many_addresses_is_challenged_per_subnet() {
    let (gw, _) = login_gateway(QUICK).await;
    // 2 000 pairs from 1 000 addresses (two each) in four /24s: under every
    // per-address threshold, but not under the subnets' failure counts
    // (150, halved while the global failure spike lasts).
    let t = stuff(&gw, 2000, |i| {
        format!("10.0.{}.{}", i / 500, (i % 500) / 2 + 1)
    })
    .await;
    assert!(t.challenged >= 1300, "most attempts are stopped: {t:?}");
    assert!(t.upstream <= 4 * 160, "{t:?}");

    let alice = login(&gw, "198.51.100.7", "alice", "wonderland").await;
    assert_eq!(alice.status, 200, "{}", alice.text());
    // The challenge on a stuffed subnet can be solved on the login itself.
    let challenged = login(&gw, "10.0.0.77", "alice", "wonderland").await;
    let (puzzle, difficulty) = api_puzzle(&challenged);
    let body = br#"{"username":"alice","password":"wonderland"}"#;
    let solved = call(
        &gw.url("main", "/login"),
        "POST",
        &[
            ("x-forwarded-for", "10.0.0.77"),
            ("content-type", "application/json"),
            ("user-agent", "Mozilla/5.0"),
            ("x-rampart-puzzle", &puzzle),
            (
                "x-rampart-solution",
                &rampart_bot::pow::solve(&puzzle, difficulty),
            ),
        ],
        body,
    )
    .await;
    assert_eq!(solved.status, 200, "{}", solved.text());
    clearance_cookie(&solved);
}

/// A Pwned-Passwords sorted file holding "wonderland" (seen 42 times).
fn breached_file(dir: &std::path::Path) -> std::path::PathBuf {
    let hash = rampart_bot::login::breached::sha1_hex_upper(b"wonderland");
    let mut lines = [
        format!("{}:42", String::from_utf8(hash.to_vec()).unwrap()),
        format!("{}:7", "0".repeat(40)),
        format!("{}:3", "F".repeat(40)),
    ];
    lines.sort();
    let path = dir.join("pwned.txt");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breached_password_is_blocked_or_flagged_per_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = breached_file(dir.path());
    let (gw, _) = login_gateway(&format!(
        "breached = {{ path = \"{}\", action = \"block\" }}",
        file.display()
    ))
    .await;
    let got = login(&gw, "198.51.100.8", "alice", "wonderland").await;
    assert_eq!(got.status, 403);
    assert_eq!(got.json()["reason"], "breached_password");
    let fine = login(&gw, "198.51.100.8", "bob", "correct horse battery").await;
    assert_eq!(fine.status, 401, "an unbreached password reaches the API");

    // Flag: the login goes through. With Basic credentials (read from the
    // headers) the upstream is also told the breach count.
    let up = Upstream::start("up").await;
    let flagging = Gw::start(&one_route(
        &up,
        "",
        &format!(
            "path = {{ exact = \"/login\" }}\nlogin_guard = {{ credentials = \"basic\", \
             breached = {{ path = \"{}\", action = \"flag\" }} }}",
            file.display()
        ),
    ))
    .await;
    // "alice:wonderland"
    let basic = "Basic YWxpY2U6d29uZGVybGFuZA==";
    let got = call(
        &flagging.url("main", "/login"),
        "POST",
        &[("authorization", basic)],
        b"",
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["headers"]["x-rampart-breached-password"], "42");
    let clean = call(
        &flagging.url("main", "/login"),
        "POST",
        // "alice:not-in-the-list"
        &[("authorization", "Basic YWxpY2U6bm90LWluLXRoZS1saXN0")],
        b"",
    )
    .await;
    assert_eq!(clean.status, 200);
    assert!(clean.json()["headers"]
        .get("x-rampart-breached-password")
        .is_none());
}

// ---- a fleet on one Redis ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_shares_clearances_single_use_and_login_blocks_through_redis() {
    let redis = RedisServer::start();
    let up = Upstream::start("up").await;
    let top = format!(
        "[cluster]\nredis = \"{}\"\n[store]\ndata_dir = \"{{dir}}/data\"\nsecret_file = \"{}\"\n",
        redis.url(),
        shared_secret().display()
    );
    let route = format!("bot = {{ {EASY} }}\nlogin_guard = {{ path = \"/login\", {QUICK} }}");
    let a = Gw::start(&one_route(&up, &top, &route)).await;
    let b = Gw::start(&one_route(&up, &top, &route)).await;

    let (puzzle, difficulty) = api_puzzle(&get_as(&a, "/", SDK, None).await);
    let solution = rampart_bot::pow::solve(&puzzle, difficulty);
    let cookie = clearance_cookie(&verify(&a, SDK, &puzzle, &solution).await);
    assert_eq!(
        get_as(&b, "/", SDK, Some(&cookie)).await.status,
        200,
        "a clearance from node A counts on node B"
    );
    let replay = verify(&b, SDK, &puzzle, &solution).await;
    assert_eq!(replay.status, 403, "used on A, refused on B");
    // The signing keys themselves live in Redis (one per epoch).
    let keys = redis.command("KEYS *bot:key:*");
    assert!(
        keys.contains("bot:key:"),
        "no clearance key in Redis: {keys}"
    );

    // Node A blocks a stuffing address; node B refuses it too.
    let url = a.url("main", "/login");
    for i in 0..45 {
        let body = format!(r#"{{"username":"u{i}","password":"x"}}"#);
        call(
            &url,
            "POST",
            &[("user-agent", SDK), ("cookie", &cookie)],
            body.as_bytes(),
        )
        .await;
    }
    let mut refused = false;
    for _ in 0..30 {
        let got = call(
            &b.url("main", "/login"),
            "POST",
            &[("user-agent", SDK), ("cookie", &cookie)],
            br#"{"username":"alice","password":"x"}"#,
        )
        .await;
        if got.status == 403 && got.json()["reason"] == "login_source_blocked" {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the block reached node B");
}

/// One server secret for both nodes of the fleet test.
fn shared_secret() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-bot-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.secret");
    std::fs::write(&path, [42u8; 32]).unwrap();
    path
}

/// The JA4 fingerprint of what `cfg` sends first, captured on a bare socket.
async fn ja4_of(cfg: std::sync::Arc<rustls::ClientConfig>) -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let _ = common::pki::connect(addr, "a.test", cfg).await;
    });
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut hello = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "the client closed before its ClientHello was complete"
        );
        hello.extend_from_slice(&buf[..n]);
        match rampart_bot::ja4::fingerprint(&hello, rampart_bot::ja4::Transport::Tcp) {
            Ok(j) => {
                client.abort();
                return j;
            }
            Err(rampart_bot::ja4::Ja4Error::Incomplete) => continue,
            Err(e) => panic!("not a ClientHello: {e:?}"),
        }
    }
}

/// The gateway fingerprints each TLS handshake: a client whose JA4 is on
/// the route's deny list is blocked, another TLS stack is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_ja4_fingerprint_is_blocked_over_tls() {
    let pki = common::pki::Pki::new();
    let up = Upstream::start("up").await;
    let h1 = pki.client_config(&[b"http/1.1"], None);
    let no_alpn = pki.client_config(&[], None);
    let listed = ja4_of(h1.clone()).await;
    assert_ne!(listed, ja4_of(no_alpn.clone()).await, "ALPN is part of JA4");
    let (cert, key) = pki.issue("server", &["a.test"], false);
    let g = Gw::start(&format!(
        r#"
[listeners.tls]
address = "127.0.0.1:0"
[listeners.tls.tls]
certificates = [{{ cert = "{}", key = "{}", server_names = ["a.test"] }}]

[upstreams.up]
servers = ["{}"]

[[routes]]
name = "shop"
upstream = "up"
bot = {{ challenge_at = 90, block_at = 95, ja4_deny = ["{listed}"], weights = {{ ja4_listed = 100 }} }}
"#,
        cert.display(),
        key.display(),
        up.addr
    ))
    .await;
    let get = |cfg| async {
        let s = common::pki::connect(g.addr("tls"), "a.test", cfg)
            .await
            .unwrap();
        common::pki::get_over(s, "a.test", "/x").await
    };
    let r = get(h1).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["reason"], "bot_blocked");
    let r = get(no_alpn).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.hits(), 1);
}
