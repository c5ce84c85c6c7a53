//! The admin REST API end to end: real HTTP over loopback against the
//! router from `rampart_gateway::adminapi`, a SqliteStore in a tempdir, and
//! the `rampart` binary's bootstrap and API commands.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_gateway::adminapi::{self, AdminDeps, DEFAULT_SESSION_TTL};
use rampart_reputation::{LocalBanStore, SystemClock as BanClock, ThreatConfig, ThreatTracker};
use rampart_store::{
    Actor, AdminOptions, AdminService, HashCost, Keyring, KeyringOptions, ServerSecret,
    SqliteStore, TokenScope,
};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

struct Harness {
    addr: SocketAddr,
    keyring: Arc<Keyring>,
    admin: Arc<AdminService>,
    tracker: Arc<ThreatTracker>,
    _dir: Option<tempfile::TempDir>,
}

fn secret() -> ServerSecret {
    ServerSecret::new(&[42u8; 32]).unwrap()
}

fn admin_options() -> AdminOptions {
    AdminOptions {
        hash_cost: HashCost::insecure_for_tests(),
        ..AdminOptions::default()
    }
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::on_store(dir.path(), secret()).await;
        Harness {
            _dir: Some(dir),
            ..h
        }
    }

    /// A harness on an existing data folder (the tempdir is kept by the caller).
    async fn on_store(data_dir: &std::path::Path, secret: ServerSecret) -> Harness {
        let store = Arc::new(SqliteStore::open(data_dir).unwrap());
        let keyring = Keyring::open(store.clone(), secret.clone(), KeyringOptions::default())
            .await
            .unwrap();
        let admin = AdminService::new(store.clone(), secret, admin_options())
            .await
            .unwrap();
        let tracker = ThreatTracker::new(
            ThreatConfig::default(),
            Arc::new(LocalBanStore::in_memory()),
            Arc::new(BanClock),
        );
        let (keyring, admin, tracker) = (Arc::new(keyring), Arc::new(admin), Arc::new(tracker));
        let deps = AdminDeps {
            keyring: Some(keyring.clone()),
            totp: None,
            admin: Some(admin.clone()),
            tracker: Some(tracker.clone()),
            audit: Some(store),
            events: Arc::default(),
            status: Arc::new(|| json!({"generation": 7})),
            reload: Arc::new(|| Box::pin(async { Err(json!(["routes[0].upstream: unknown"])) })),
            secure_cookies: false,
            session_ttl: DEFAULT_SESSION_TTL,
        };
        let addr = serve(adminapi::router(deps)).await;
        Harness {
            addr,
            keyring,
            admin,
            tracker,
            _dir: None,
        }
    }

    async fn user(&self, name: &str) {
        self.admin
            .create_admin(name, PASSWORD, &Actor::system())
            .await
            .unwrap();
    }

    async fn token(&self, user: &str, scope: TokenScope) -> String {
        let t = self
            .admin
            .create_token(user, "test", vec![scope], None, &Actor::system())
            .await
            .unwrap();
        t.token.expose().to_string()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let addr = self.addr;
        let (method, path) = (method.to_string(), path.to_string());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || http(addr, &method, &path, &headers, body))
            .await
            .unwrap()
    }

    async fn with_token(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let auth = format!("Bearer {token}");
        self.call(method, path, &[("authorization", &auth)], body)
            .await
    }
}

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a problem document with `status` and `reason`.
    fn problem(&self, status: u16, reason: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let v = self.json();
        assert_eq!(v["reason"], reason, "{}", self.body);
        assert_eq!(v["status"], status);
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

/// A minimal HTTP/1.1 exchange (Connection: close), so tests control every
/// header and see every byte of the answer.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<Value>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\ncontent-length: {}\r\n",
        payload.len()
    );
    if !payload.is_empty() {
        req.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Enrolls and confirms TOTP for `user`; returns the secret.
async fn enroll_totp(h: &Harness, user: &str) -> Vec<u8> {
    let enrollment = h.admin.enroll_totp(user, &Actor::system()).await.unwrap();
    let secret = rampart_store::secret::base32_decode(enrollment.secret_base32.expose()).unwrap();
    let code = rampart_store::totp::code_at(&secret, now());
    assert!(h
        .admin
        .confirm_totp(user, &code, &Actor::system())
        .await
        .unwrap());
    secret
}

/// Logs in; returns (cookie header value, csrf token, raw reply).
async fn login(h: &Harness, user: &str, totp: Option<String>) -> (String, String, Reply) {
    let body = json!({"username": user, "password": PASSWORD, "totp": totp});
    let reply = h.call("POST", "/api/login", &[], Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let set_cookie = reply.header("set-cookie").unwrap().to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let csrf = reply.json()["csrf_token"].as_str().unwrap().to_string();
    (cookie, csrf, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_token_reads_but_cannot_write_and_write_token_can() {
    let h = Harness::start().await;
    h.user("alice").await;
    let read = h.token("alice", TokenScope::Read).await;
    let write = h.token("alice", TokenScope::Write).await;

    assert_eq!(
        h.with_token(&read, "GET", "/api/consumers", None)
            .await
            .status,
        200
    );
    let denied = h
        .with_token(
            &read,
            "POST",
            "/api/consumers",
            Some(json!({"name": "shop"})),
        )
        .await;
    denied.problem(403, "insufficient_scope");
    let created = h
        .with_token(
            &write,
            "POST",
            "/api/consumers",
            Some(json!({"name": "shop", "id": "shop"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let me = h
        .with_token(&write, "GET", "/api/whoami", None)
        .await
        .json();
    assert_eq!(me["username"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bad_and_revoked_tokens_get_401_with_a_challenge() {
    let h = Harness::start().await;
    h.user("alice").await;
    let none = h.call("GET", "/api/consumers", &[], None).await;
    none.problem(401, "authentication_required");
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer realm=\"rampart-admin\"")
    );
    h.with_token("rat_not-a-token", "GET", "/api/consumers", None)
        .await
        .problem(401, "invalid_token");
    h.call(
        "GET",
        "/api/consumers",
        &[("authorization", "Basic YWxpY2U6eA==")],
        None,
    )
    .await
    .problem(401, "invalid_authorization");

    let token = h.token("alice", TokenScope::Write).await;
    let list = h
        .with_token(&token, "GET", "/api/tokens", None)
        .await
        .json();
    let id = list["tokens"][0]["token_id"].as_str().unwrap().to_string();
    assert!(
        list["tokens"][0].get("digest").is_none(),
        "token list must not show digests"
    );
    let revoked = h
        .with_token(&token, "POST", &format!("/api/tokens/{id}/revoke"), None)
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    h.with_token(&token, "GET", "/api/consumers", None)
        .await
        .problem(401, "token_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_needs_the_totp_code_when_enrolled_and_sets_a_strict_cookie() {
    let h = Harness::start().await;
    h.user("bob").await;
    let secret = enroll_totp(&h, "bob").await;

    let no_code = json!({"username": "bob", "password": PASSWORD});
    h.call("POST", "/api/login", &[], Some(no_code))
        .await
        .problem(401, "invalid_credentials");
    let good = rampart_store::totp::code_at(&secret, now() + 30);
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    let bad_code = json!({"username": "bob", "password": PASSWORD, "totp": wrong});
    h.call("POST", "/api/login", &[], Some(bad_code))
        .await
        .problem(401, "invalid_credentials");

    // The next step's code: confirmation used this one (replay protection).
    let (cookie, csrf, reply) = login(&h, "bob", Some(good)).await;
    let set_cookie = reply.header("set-cookie").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/api"] {
        assert!(set_cookie.contains(attr), "{set_cookie} lacks {attr}");
    }
    assert!(!set_cookie.contains("Secure"), "secure_cookies is off");
    assert!(cookie.starts_with("rampart_admin_session="));
    assert!(!csrf.is_empty());
    let me = h
        .call("GET", "/api/whoami", &[("cookie", &cookie)], None)
        .await;
    assert_eq!(me.json()["actor"], "user:bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mutations_need_the_csrf_token_and_logout_ends_the_session() {
    let h = Harness::start().await;
    h.user("carol").await;
    let (cookie, csrf, _) = login(&h, "carol", None).await;
    let body = json!({"name": "app"});

    h.call(
        "POST",
        "/api/consumers",
        &[("cookie", &cookie)],
        Some(body.clone()),
    )
    .await
    .problem(403, "csrf_token_invalid");
    h.call(
        "POST",
        "/api/consumers",
        &[("cookie", &cookie), ("x-csrf-token", "wrong")],
        Some(body.clone()),
    )
    .await
    .problem(403, "csrf_token_invalid");
    let ok = h
        .call(
            "POST",
            "/api/consumers",
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            Some(body),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);

    let out = h
        .call(
            "POST",
            "/api/logout",
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            None,
        )
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    h.call("GET", "/api/consumers", &[("cookie", &cookie)], None)
        .await
        .problem(401, "session_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_lock_the_account_with_429_and_retry_after() {
    let h = Harness::start().await;
    h.user("dave").await;
    let wrong = json!({"username": "dave", "password": "not the password at all"});
    // Three free failures, the fourth starts a lockout.
    for _ in 0..4 {
        h.call("POST", "/api/login", &[], Some(wrong.clone()))
            .await
            .problem(401, "invalid_credentials");
    }
    let right = json!({"username": "dave", "password": PASSWORD});
    let locked = h.call("POST", "/api/login", &[], Some(right)).await;
    locked.problem(429, "login_locked");
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_is_shown_once_verifies_rotates_and_stops_after_revocation() {
    let h = Harness::start().await;
    h.user("erin").await;
    let t = h.token("erin", TokenScope::Write).await;
    h.with_token(
        &t,
        "POST",
        "/api/consumers",
        Some(json!({"name": "shop", "id": "shop"})),
    )
    .await;
    let created = h
        .with_token(
            &t,
            "POST",
            "/api/consumers/shop/keys",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let key = created["key"].as_str().unwrap().to_string();
    let key_id = created["key_id"].as_str().unwrap().to_string();
    let ip = "198.51.100.1".parse().unwrap();
    assert_eq!(&*h.keyring.verify(&key, ip).unwrap().consumer_id, "shop");

    let shown = h
        .with_token(&t, "GET", &format!("/api/keys/{key_id}"), None)
        .await;
    let listed = h
        .with_token(&t, "GET", "/api/consumers/shop/keys", None)
        .await;
    for r in [&shown, &listed] {
        assert_eq!(r.status, 200);
        assert!(!r.body.contains(&key), "the key must be shown only once");
        assert!(!r.body.contains("digest"));
    }

    let rotated = h
        .with_token(
            &t,
            "POST",
            &format!("/api/keys/{key_id}/rotate"),
            Some(json!({"grace_secs": 600})),
        )
        .await
        .json();
    let new_key = rotated["key"].as_str().unwrap().to_string();
    let new_id = rotated["key_id"].as_str().unwrap().to_string();
    assert!(h.keyring.verify(&new_key, ip).is_ok());
    assert!(
        h.keyring.verify(&key, ip).is_ok(),
        "old key works during the grace period"
    );

    let revoked = h
        .with_token(&t, "POST", &format!("/api/keys/{new_id}/revoke"), None)
        .await;
    assert!(revoked.json()["revoked_at"].is_u64(), "{}", revoked.body);
    assert_eq!(
        h.keyring.verify(&new_key, ip).unwrap_err().reason_code(),
        "api_key_revoked"
    );
    h.with_token(&t, "GET", "/api/keys/nope", None)
        .await
        .problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_are_added_listed_enforced_and_removed() {
    let h = Harness::start().await;
    h.user("fay").await;
    let t = h.token("fay", TokenScope::Write).await;
    let add = h
        .with_token(
            &t,
            "POST",
            "/api/bans",
            Some(json!({"target": "203.0.113.0/24", "ttl_secs": 600, "reason": "scraper"})),
        )
        .await;
    assert_eq!(add.status, 201, "{}", add.body);
    let ip = "203.0.113.9".parse().unwrap();
    assert!(h.tracker.is_banned(ip).is_some());
    let list = h.with_token(&t, "GET", "/api/bans", None).await.json();
    assert_eq!(list["bans"][0]["target"], "203.0.113.0/24");
    assert_eq!(list["bans"][0]["reason"], "scraper");

    let removed = h
        .with_token(&t, "DELETE", "/api/bans?target=203.0.113.0/24", None)
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(h.tracker.is_banned(ip).is_none());
    h.with_token(&t, "DELETE", "/api/bans?target=203.0.113.0/24", None)
        .await
        .problem(404, "not_found");
    h.with_token(
        &t,
        "POST",
        "/api/bans",
        Some(json!({"target": "not-an-ip"})),
    )
    .await
    .problem(400, "invalid_target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_are_in_the_audit_log_with_actor_and_client_ip() {
    let h = Harness::start().await;
    h.user("gus").await;
    let t = h.token("gus", TokenScope::Write).await;
    let me = h.with_token(&t, "GET", "/api/whoami", None).await.json();
    let actor = me["actor"].as_str().unwrap().to_string();
    assert!(actor.starts_with("token:"));
    h.with_token(
        &t,
        "POST",
        "/api/consumers",
        Some(json!({"name": "shop", "id": "shop"})),
    )
    .await;
    h.with_token(&t, "POST", "/api/consumers/shop/disable", None)
        .await;
    h.with_token(
        &t,
        "POST",
        "/api/bans",
        Some(json!({"target": "192.0.2.1"})),
    )
    .await;
    h.with_token(&t, "POST", "/api/reload", None)
        .await
        .problem(422, "config_rejected");

    let audit = h
        .with_token(&t, "GET", "/api/audit?limit=50", None)
        .await
        .json();
    let entries = audit["entries"].as_array().unwrap();
    let by_us: Vec<&Value> = entries
        .iter()
        .filter(|e| e["actor"] == actor.as_str())
        .collect();
    let actions: Vec<&str> = by_us
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in ["ban.add", "config.reload"] {
        assert!(actions.contains(&expected), "{expected} not in {actions:?}");
    }
    assert!(
        by_us.len() >= 4,
        "consumer create/disable audited too: {actions:?}"
    );
    assert!(
        by_us.iter().all(|e| e["source_ip"] == "127.0.0.1"),
        "{by_us:?}"
    );
    let limited = h
        .with_token(&t, "GET", "/api/audit?limit=2", None)
        .await
        .json();
    assert_eq!(limited["entries"].as_array().unwrap().len(), 2);
    h.with_token(&t, "GET", "/api/audit?limit=many", None)
        .await
        .problem(400, "invalid_query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_problem_documents_and_openapi_is_public() {
    let h = Harness::start().await;
    h.user("hal").await;
    let t = h.token("hal", TokenScope::Write).await;
    h.with_token(&t, "GET", "/api/nothing-here", None)
        .await
        .problem(404, "not_found");
    h.with_token(&t, "PUT", "/api/consumers", None)
        .await
        .problem(405, "method_not_allowed");
    let bad = h
        .call(
            "POST",
            "/api/login",
            &[],
            Some(json!({"username": 5, "password": PASSWORD})),
        )
        .await;
    bad.problem(400, "invalid_body");
    assert!(!bad.body.contains(PASSWORD));
    let openapi = h.call("GET", "/api/openapi.json", &[], None).await;
    assert_eq!(openapi.status, 200);
    assert!(openapi.json()["paths"]["/api/keys/{key_id}/rotate"]["post"].is_object());
    let status = h.with_token(&t, "GET", "/api/status", None).await.json();
    assert_eq!(status["generation"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_dependencies_answer_503_feature_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let admin = Arc::new(
        AdminService::new(store.clone(), secret(), admin_options())
            .await
            .unwrap(),
    );
    admin
        .create_admin("ivy", PASSWORD, &Actor::system())
        .await
        .unwrap();
    let token = admin
        .create_token("ivy", "t", vec![TokenScope::Write], None, &Actor::system())
        .await
        .unwrap();
    let deps = AdminDeps {
        keyring: None,
        totp: None,
        admin: Some(admin),
        tracker: None,
        audit: None,
        events: Arc::default(),
        status: Arc::new(|| Value::Null),
        reload: Arc::new(|| Box::pin(async { Ok(Value::Null) })),
        secure_cookies: true,
        session_ttl: DEFAULT_SESSION_TTL,
    };
    let addr = serve(adminapi::router(deps)).await;
    let auth = vec![(
        "authorization".to_string(),
        format!("Bearer {}", token.token.expose()),
    )];
    for path in ["/api/consumers", "/api/bans", "/api/audit"] {
        let r = tokio::task::spawn_blocking({
            let auth = auth.clone();
            move || http(addr, "GET", path, &auth, None)
        })
        .await
        .unwrap();
        r.problem(503, "feature_not_configured");
    }
    let login = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "POST",
            "/api/login",
            &[],
            Some(json!({"username": "ivy", "password": PASSWORD})),
        )
    })
    .await
    .unwrap();
    assert!(login.header("set-cookie").unwrap().contains("; Secure"));
}

/// Everything logged while the tests in this binary run.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || LogWriter(buffer.clone())
        };
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(writer)
            .with_ansi(false)
            .init();
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_or_error_bodies() {
    let logs = captured_logs();
    let h = Harness::start().await;
    h.user("kim").await;
    let (cookie, csrf, _) = login(&h, "kim", None).await;
    let session_id = cookie.split_once('=').unwrap().1.to_string();
    let hdrs = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    h.call(
        "POST",
        "/api/consumers",
        &hdrs,
        Some(json!({"name": "shop", "id": "shop"})),
    )
    .await;
    let key = h
        .call("POST", "/api/consumers/shop/keys", &hdrs, Some(json!({})))
        .await
        .json();
    let key = key["key"].as_str().unwrap().to_string();
    let token = h
        .call(
            "POST",
            "/api/tokens",
            &hdrs,
            Some(json!({"name": "ci", "scopes": ["write"]})),
        )
        .await
        .json();
    let token = token["token"].as_str().unwrap().to_string();
    // Failures that involve the secrets.
    let mut bodies = Vec::new();
    let wrong = json!({"username": "kim", "password": format!("{PASSWORD}x")});
    bodies.push(h.call("POST", "/api/login", &[], Some(wrong)).await.body);
    bodies.push(
        h.with_token(&format!("{token}x"), "GET", "/api/keys", None)
            .await
            .body,
    );
    bodies.push(
        h.call(
            "POST",
            "/api/consumers",
            &[("cookie", &cookie), ("x-csrf-token", &format!("{csrf}x"))],
            Some(json!({"name": "x"})),
        )
        .await
        .body,
    );
    bodies.push(
        h.call(
            "POST",
            "/api/login",
            &[],
            Some(json!({"username": "kim", "password": PASSWORD, "totp": []})),
        )
        .await
        .body,
    );
    let pasted = h
        .with_token(&token, "GET", &format!("/api/keys/{key}"), None)
        .await;
    pasted.problem(400, "credential_in_path");
    bodies.push(pasted.body);

    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(text.contains("API key created"), "capture works: {text}");
    assert!(text.contains("admin token created"));
    for (what, secret) in [
        ("key", &key),
        ("token", &token),
        ("password", &PASSWORD.to_string()),
        ("session", &session_id),
        ("csrf", &csrf),
    ] {
        assert!(!text.contains(secret.as_str()), "{what} in logs");
        for body in &bodies {
            assert!(
                !body.contains(secret.as_str()),
                "{what} in error body {body}"
            );
        }
    }
}

// ---- the rampart binary ------------------------------------------------

fn rampart() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rampart"));
    c.env_remove("RAMPART_ADMIN_TOKEN")
        .env_remove("RAMPART_ADMIN");
    c
}

fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("rampart.toml");
    // A gateway config like any other: the CLI reads its [store].
    let text = format!(
        "[store]\ndata_dir = \"{}\"\n[listeners.main]\naddress = \"127.0.0.1:0\"\n\
         [upstreams.up]\nservers = [\"127.0.0.1:9\"]\n[[routes]]\nname = \"r\"\nupstream = \"up\"\n",
        dir.join("data").display()
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn run_ok(mut c: Command, stdin: &str) -> String {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "stdout {stdout}\nstderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_bootstraps_a_user_with_totp_and_a_token_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut c = rampart();
    c.args(["admin", "create-user", "--config"])
        .arg(&config)
        .args(["root", "--password-stdin"]);
    let out = run_ok(c, &format!("{PASSWORD}\n"));
    let uri = out
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .expect("provisioning URI");
    let secret_b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let secret = rampart_store::secret::base32_decode(secret_b32).unwrap();

    let secret_file = dir.path().join("data/server.secret");
    let meta = std::fs::metadata(&secret_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);

    let mut c = rampart();
    c.args(["admin", "confirm-totp", "--config"])
        .arg(&config)
        .args(["root", "--code"]);
    c.arg(rampart_store::totp::code_at(&secret, now()));
    run_ok(c, "");

    let mut c = rampart();
    c.args(["admin", "token", "create", "--config"])
        .arg(&config)
        .args(["--user", "root", "--scope", "write", "--json"]);
    let token: Value = serde_json::from_str(&run_ok(c, "")).unwrap();
    let token = token["token"].as_str().unwrap().to_string();

    // The gateway side: same store, same secret file.
    let server_secret = ServerSecret::new(&std::fs::read(&secret_file).unwrap()).unwrap();
    let h = Harness::on_store(&dir.path().join("data"), server_secret).await;
    let me = h.with_token(&token, "GET", "/api/whoami", None).await;
    assert_eq!(me.json()["username"], "root", "{}", me.body);
    let users = h.with_token(&token, "GET", "/api/users", None).await.json();
    assert_eq!(users["users"][0]["totp_enabled"], true);
    let no_code = json!({"username": "root", "password": PASSWORD});
    h.call("POST", "/api/login", &[], Some(no_code))
        .await
        .problem(401, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_manages_consumers_keys_and_bans_over_the_api() {
    let h = Harness::start().await;
    h.user("ops").await;
    let token = h.token("ops", TokenScope::Write).await;
    let url = format!("http://{}", h.addr);
    let cli = move |args: &[&str]| {
        let mut c = rampart();
        c.args(args)
            .args(["--admin", &url])
            .env("RAMPART_ADMIN_TOKEN", &token);
        c
    };
    let run = |c: Command| tokio::task::spawn_blocking(move || run_ok(c, ""));

    run(cli(&[
        "consumers",
        "create",
        "--name",
        "Shop",
        "--id",
        "shop",
    ]))
    .await
    .unwrap();
    let key = run(cli(&["keys", "create", "--consumer", "shop", "--json"]))
        .await
        .unwrap();
    let key: Value = serde_json::from_str(&key).unwrap();
    let secret = key["key"].as_str().unwrap();
    assert!(h
        .keyring
        .verify(secret, "192.0.2.1".parse().unwrap())
        .is_ok());
    let table = run(cli(&["keys", "list", "--consumer", "shop"]))
        .await
        .unwrap();
    assert!(table.starts_with("KEY_ID"), "{table}");
    assert!(table.contains(key["key_id"].as_str().unwrap()) && !table.contains(secret));
    run(cli(&["bans", "add", "192.0.2.0/28", "--reason", "test"]))
        .await
        .unwrap();
    assert!(h.tracker.is_banned("192.0.2.3".parse().unwrap()).is_some());
    let bans = run(cli(&["bans", "list"])).await.unwrap();
    assert!(bans.contains("192.0.2.0/28"), "{bans}");

    let mut read_only = rampart();
    read_only.args([
        "bans",
        "remove",
        "192.0.2.0/28",
        "--admin",
        &format!("http://{}", h.addr),
        "--token",
        "rat_wrong",
    ]);
    let out = tokio::task::spawn_blocking(move || read_only.output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_token"));
}
