//! Bot defence in a real browser through the real gateway: headless
//! Chromium opens a protected route, gets the proof-of-work challenge page
//! from the gateway, solves it in the page's JavaScript, and lands on the
//! upstream's answer holding the clearance cookie.
//!
//! The browser driver is `rampart_testkit::browser` (Chromium from
//! `$CHROMIUM` or `PATH`, kept off the network except 127.0.0.1). Without
//! Chromium the test fails, unless `RAMPART_SKIP_BROWSER_TESTS` is set
//! outside CI, where it prints a skip notice.

mod common;

use std::time::Duration;

use common::*;
use rampart_bot::clearance::COOKIE_NAME;
use rampart_testkit::browser::{browse_until, chromium_or_skip, Browser};

/// Every scored request is challenged (`challenge_at = 1`) and none is
/// blocked (`block_at = 101` means never), so a headless browser always
/// gets the page; a low difficulty keeps the solve well under a second.
const BOT: &str =
    "bot = { challenge_at = 1, block_at = 101, min_difficulty = 12, max_difficulty = 14 }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_solves_the_gateway_challenge_and_reaches_the_upstream() {
    let Some(binary) = chromium_or_skip() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let up = Upstream::start("up").await;
        let gw = Gw::start(&one_route(&up, "", BOT)).await;
        let browser = Browser::launch(&binary);
        let mut cdp = browser.cdp().await;
        let url = gw.url("main", "/protected");

        let visit = browse_until(&mut cdp, &url, "\"uri\"", Duration::from_secs(30)).await;
        eprintln!(
            "gateway challenge → solved → upstream in {:?}",
            visit.elapsed
        );

        assert!(
            visit.found,
            "the browser never reached the upstream; ended on {}: {:?}",
            visit.path, visit.text
        );
        let echoed: serde_json::Value = serde_json::from_str(&visit.text)
            .unwrap_or_else(|e| panic!("upstream echo is JSON ({e}): {:?}", visit.text));
        assert_eq!(echoed["uri"], "/protected", "{echoed}");
        assert_eq!(visit.path, "/protected", "back on the original URL");
        assert!(up.hits() >= 1, "the upstream was never hit");
        // The upstream saw the request only with the clearance cookie: the
        // first navigation was answered by the challenge page instead.
        let sent_cookie = echoed["headers"]["cookie"].as_str().unwrap_or("");
        let seen_cookie = sent_cookie.contains(&format!("{COOKIE_NAME}="));
        assert!(
            seen_cookie,
            "the upstream got a request without clearance: {echoed}"
        );

        let clearance = visit
            .cookie(COOKIE_NAME)
            .unwrap_or_else(|| panic!("no {COOKIE_NAME} cookie in {:?}", visit.cookies));
        assert_eq!(clearance["domain"], "127.0.0.1", "{clearance}");
        assert_eq!(clearance["httpOnly"], true);
        assert_eq!(clearance["sameSite"], "Lax");
    })
    .await
    .expect("browser test finished within 60 s");
}
