//! Headless Chromium driven over the DevTools protocol (CDP), for tests that
//! need a real browser: JavaScript challenge pages, cookies, redirects.
//!
//! [`chromium_or_skip`] finds the binary (`$CHROMIUM`, `/usr/bin/chromium`,
//! then `chromium` / `chromium-browser` on `PATH`) and applies the skip
//! policy; [`Browser::launch`] starts it on a throw-away profile, kept off the
//! network except 127.0.0.1; [`Cdp`] is a minimal client (one call at a time,
//! events ignored); [`browse_until`] opens a tab, navigates, and polls the
//! page until its text contains a marker or a deadline passes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Flags that make Chromium headless, quiet, and unable to reach anything but
/// 127.0.0.1 (every other host name resolves to NOTFOUND).
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",
    "about:blank",
];

/// The Chromium binary: `$CHROMIUM`, `/usr/bin/chromium`, or `chromium` /
/// `chromium-browser` on `PATH`.
pub fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.exists() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|p| p.exists())
}

/// The Chromium binary, or `None` after printing a skip notice when it is
/// missing and `RAMPART_SKIP_BROWSER_TESTS` is set. Panics when it is
/// missing otherwise, and always when `CI` is set, so a browser test never
/// passes untested by accident.
pub fn chromium_or_skip() -> Option<PathBuf> {
    if let Some(binary) = chromium_path() {
        return Some(binary);
    }
    let on_ci = std::env::var_os("CI").is_some();
    if !on_ci && std::env::var_os("RAMPART_SKIP_BROWSER_TESTS").is_some() {
        eprintln!("skipped: chromium not found (RAMPART_SKIP_BROWSER_TESTS is set)");
        return None;
    }
    panic!(
        "chromium not found: install it (apt-get install chromium) or set CHROMIUM; \
         outside CI, RAMPART_SKIP_BROWSER_TESTS=1 skips browser tests"
    );
}

/// A headless Chromium on a temporary profile, killed on drop.
pub struct Browser {
    child: Child,
    ws_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `binary` and waits (up to 20 s) for its DevTools endpoint.
    pub fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("temporary Chromium profile");
        let mut child = Command::new(binary)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Chromium prints "DevTools listening on ws://..." on stderr; keep
        // draining stderr afterwards so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let mut browser = Browser {
            child,
            ws_url: String::new(),
            _profile: profile,
        };
        browser.ws_url = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("chromium announces its DevTools endpoint");
        browser
    }

    /// The browser-level DevTools WebSocket URL.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// A CDP client connected to this browser.
    pub async fn cdp(&self) -> Cdp {
        Cdp::connect(&self.ws_url).await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A minimal CDP client: one call at a time, events ignored.
pub struct Cdp {
    ws: Ws,
    next_id: u64,
}

impl Cdp {
    /// Connects to a DevTools WebSocket URL.
    pub async fn connect(url: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("DevTools WebSocket");
        Cdp { ws, next_id: 0 }
    }

    /// Calls `method` (on a tab when `session` is given); `Err` carries the
    /// CDP error object.
    pub async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("CDP send");
        while let Some(frame) = self.ws.next().await {
            let Message::Text(text) = frame.expect("CDP receive") else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).expect("CDP JSON");
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
        panic!("DevTools connection closed during {method}");
    }

    /// Opens a blank tab and returns its (flattened) session id.
    pub async fn new_tab(&mut self) -> String {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await
            .expect("Target.createTarget");
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await
            .expect("Target.attachToTarget");
        attached["sessionId"]
            .as_str()
            .expect("CDP session id")
            .to_string()
    }

    /// Cookies the tab `session` would send to `url`.
    pub async fn cookies(&mut self, session: &str, url: &str) -> Vec<Value> {
        let cookies = self
            .call(Some(session), "Network.getCookies", json!({"urls": [url]}))
            .await
            .expect("Network.getCookies");
        cookies["cookies"].as_array().cloned().unwrap_or_default()
    }
}

/// Where a [`browse_until`] ended.
#[derive(Debug, Clone)]
pub struct Visit {
    /// `document.body.innerText` at the end.
    pub text: String,
    /// `location.pathname` at the end.
    pub path: String,
    /// From navigation start until the marker showed up (or the deadline).
    pub elapsed: Duration,
    /// Cookies the tab would send to the navigated URL (CDP cookie objects).
    pub cookies: Vec<Value>,
    /// Whether the page text contained the marker before the deadline.
    pub found: bool,
}

impl Visit {
    /// The cookie called `name`, if the browser holds one for the URL.
    pub fn cookie(&self, name: &str) -> Option<&Value> {
        self.cookies.iter().find(|c| c["name"] == name)
    }
}

/// Navigates a fresh tab to `url` and polls every 50 ms until its text
/// contains `want` or `limit` passes.
pub async fn browse_until(cdp: &mut Cdp, url: &str, want: &str, limit: Duration) -> Visit {
    let session = cdp.new_tab().await;
    let s = Some(session.as_str());
    let started = Instant::now();
    cdp.call(s, "Page.navigate", json!({"url": url}))
        .await
        .expect("Page.navigate");
    let (mut text, mut path, mut found) = (String::new(), String::new(), false);
    while !found && started.elapsed() < limit {
        // Evaluation fails while a navigation swaps the document: retry.
        if let Some((p, t)) = page_state(cdp, &session).await {
            found = t.contains(want);
            (path, text) = (p, t);
        }
        if !found {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let elapsed = started.elapsed();
    let cookies = cdp.cookies(&session, url).await;
    Visit {
        text,
        path,
        elapsed,
        cookies,
        found,
    }
}

/// The tab's (pathname, body text), or `None` mid-navigation.
async fn page_state(cdp: &mut Cdp, session: &str) -> Option<(String, String)> {
    let expression =
        "JSON.stringify([location.pathname, document.body ? document.body.innerText : ''])";
    let r = cdp
        .call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )
        .await
        .ok()?;
    serde_json::from_str(r["result"]["value"].as_str()?).ok()
}
