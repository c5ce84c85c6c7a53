//! Reload and shutdown end to end: good reloads swap atomically, bad ones
//! keep the old config serving, listeners come and go, drain is graceful.

mod common;

use std::time::Duration;

use common::*;

fn config(upstream: &std::net::SocketAddr, route_path: &str, extra: &str) -> String {
    format!(
        r#"
[listeners.main]
address = "127.0.0.1:0"
{extra}

[upstreams.up]
servers = ["{upstream}"]

[[routes]]
name = "r"
path = {{ prefix = "{route_path}" }}
upstream = "up"
"#
    )
}

async fn admin_reload(gw: &Gw) -> Got {
    send(
        req("POST", &gw.admin("/admin/reload"))
            .body(Default::default())
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_reload_switches_routes_without_dropping_connections() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&config(&up.addr, "/old", "")).await;
    // A keep-alive connection opened before the reload...
    let stream = tokio::net::TcpStream::connect(gw.addr("main"))
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let one = |path: &str| {
        req("GET", path)
            .header("host", "x")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    // Reads each response whole and waits for the connection to be ready
    // again, as a keep-alive client does.
    macro_rules! status {
        ($path:expr) => {{
            sender.ready().await.unwrap();
            collect(sender.send_request(one($path)).await.unwrap())
                .await
                .status
        }};
    }
    assert_eq!(status!("/old/a"), 200);

    gw.write_config(&config(&up.addr, "/new", ""));
    let r = admin_reload(&gw).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reload"]["generation"], 2);

    // ...keeps working and sees the new routes.
    assert_eq!(status!("/new/a"), 200);
    assert_eq!(status!("/old/a"), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reload_is_refused_and_old_config_keeps_serving() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&config(&up.addr, "/old", "")).await;
    gw.write_config(
        &config(&up.addr, "/new", "").replace("upstream = \"up\"", "upstream = \"missing\""),
    );
    let r = admin_reload(&gw).await;
    assert_eq!(r.status, 422);
    let errors = r.json()["errors"][0].as_str().unwrap().to_string();
    assert!(
        errors.contains("rampart.toml:21: routes[0].upstream"),
        "{errors}"
    );
    assert!(errors.contains("\"missing\" is not defined"), "{errors}");
    assert_eq!(
        get(&gw.url("main", "/old/x")).await.status,
        200,
        "old config still serves"
    );

    let status = get(&gw.admin("/admin/status")).await.json();
    assert_eq!(status["reload"]["last_reload_ok"], false);
    assert_eq!(status["reload"]["generation"], 1);
    assert!(status["reload"]["last_error"]
        .as_str()
        .unwrap()
        .contains("routes[0].upstream"));

    // Syntax errors too.
    std::fs::write(gw.config_path(), "[listeners.main\naddress = 1").unwrap();
    assert_eq!(admin_reload(&gw).await.status, 422);
    assert_eq!(get(&gw.url("main", "/old/x")).await.status, 200);
    let metrics = get(&gw.admin("/metrics")).await.text();
    assert!(
        metrics.contains("rampart_config_reloads_total{result=\"error\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_change_triggers_reload() {
    let up = Upstream::start("up").await;
    let text = format!(
        "[server]\nworkers = 1\nwatch = true\n{}",
        config(&up.addr, "/old", "")
    );
    let gw = Gw::start(&text).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.write_config(&text.replace("/old", "/watched"));
    let url = gw.url("main", "/watched/x");
    let mut ok = false;
    for _ in 0..100 {
        if get(&url).await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the edited file was never applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_listeners() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&config(&up.addr, "/", "")).await;
    let first = gw.addr("main");
    gw.write_config(&config(
        &up.addr,
        "/",
        "[listeners.extra]\naddress = \"127.0.0.1:0\"",
    ));
    assert_eq!(admin_reload(&gw).await.status, 200);
    assert_eq!(
        gw.addr("main"),
        first,
        "unchanged listeners keep their socket"
    );
    assert_eq!(get(&gw.url("extra", "/x")).await.status, 200);
    let extra = gw.addr("extra");

    gw.write_config(&config(&up.addr, "/", ""));
    assert_eq!(admin_reload(&gw).await.status, 200);
    assert!(gw.running.gateway.local_addr("extra").is_none());
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if tokio::net::TcpStream::connect(extra).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        refused.unwrap_or(false),
        "the removed listener still accepts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests() {
    let up = Upstream::start("up").await;
    let gw = Gw::start(&config(&up.addr, "/", "")).await;
    let url = gw.url("main", "/slow/600");
    let in_flight = tokio::spawn(async move { get(&url).await.status });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let gateway = gw.running.gateway.clone();
    assert_eq!(get(&gw.admin("/readyz")).await.status, 200);
    let shutdown = tokio::spawn(async move { gateway.shutdown(Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        get(&gw.admin("/readyz")).await.status.as_u16(),
        503,
        "draining is not ready"
    );
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the in-flight request completed"
    );
    shutdown.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(gw.addr("main"))
            .await
            .is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_health_and_metrics() {
    let up = Upstream::start("up").await;
    // Metrics are process-wide: a route name no other test uses keeps counts exact.
    let gw =
        Gw::start(&config(&up.addr, "/", "").replace("name = \"r\"", "name = \"metrics-probe\""))
            .await;
    assert_eq!(get(&gw.admin("/healthz")).await.status, 200);
    assert_eq!(get(&gw.admin("/readyz")).await.status, 200);
    for _ in 0..3 {
        get(&gw.url("main", "/x")).await;
    }
    let m = get(&gw.admin("/metrics")).await;
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = m.text();
    assert!(
        text.contains("rampart_requests_total{route=\"metrics-probe\",status=\"2xx\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("rampart_request_duration_seconds_bucket{route=\"metrics-probe\""),
        "{text}"
    );
    assert!(text.contains("rampart_connections_total"), "{text}");
}

/// On an admin listener that is not loopback-only, `/admin/*` needs an
/// admin token like `/api/`; health and metrics stay open for probes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_need_a_token_off_loopback() {
    let up = Upstream::start("up").await;
    let top = "[admin]\nlisten = \"0.0.0.0:0\"\n";
    let gw = Gw::start(&format!("{top}{}", config(&up.addr, "/", ""))).await;
    let port = gw.running.admin.unwrap().port();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    assert_eq!(get(&url("/healthz")).await.status, 200);
    assert_eq!(get(&url("/metrics")).await.status, 200);
    let r = get(&url("/admin/status")).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let reload = |token: Option<String>| {
        let mut b = req("POST", &url("/admin/reload"));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        send(b.body(Default::default()).unwrap())
    };
    assert_eq!(reload(None).await.status, 401);

    let services = gw.running.gateway.services();
    let admin = &services.identity.as_ref().expect("identity store").admin;
    let system = rampart_store::Actor::system();
    let actor = &system;
    admin
        .create_admin("ops", "a long enough admin password", actor)
        .await
        .unwrap();
    let token = |scope| async move {
        admin
            .create_token("ops", "t", vec![scope], None, actor)
            .await
            .unwrap()
            .token
            .expose()
            .to_string()
    };
    let read = token(rampart_store::TokenScope::Read).await;
    let write = token(rampart_store::TokenScope::Write).await;
    let r = send(
        req("GET", &url("/admin/status"))
            .header("authorization", format!("Bearer {read}"))
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        reload(Some(read)).await.status,
        403,
        "reload needs a write token"
    );
    assert_eq!(reload(Some(write)).await.status, 200);
}
