//! Header anomalies of clients that claim to be a browser.
//!
//! Real browsers send a predictable set of headers; automation that merely
//! copies a browser User-Agent usually forgets some. Only requests whose
//! User-Agent claims a browser are checked: an honest `curl/8` is judged by
//! its User-Agent class instead.

use http::{HeaderMap, Version};

/// The browser a User-Agent claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserClaim {
    /// Chromium family (Chrome, Edge, Opera, ...) with its major version.
    Chrome(u32),
    Firefox(u32),
    Safari,
}

/// Parses the browser claim out of a User-Agent; `None` when it claims none.
pub fn browser_claim(user_agent: &str) -> Option<BrowserClaim> {
    if !user_agent.starts_with("Mozilla/5.0") {
        return None;
    }
    if let Some(v) = version_after(user_agent, "Chrome/") {
        return Some(BrowserClaim::Chrome(v));
    }
    if let Some(v) = version_after(user_agent, "Firefox/") {
        return Some(BrowserClaim::Firefox(v));
    }
    if user_agent.contains("Safari/") && user_agent.contains("Version/") {
        return Some(BrowserClaim::Safari);
    }
    None
}

fn version_after(s: &str, marker: &str) -> Option<u32> {
    let rest = &s[s.find(marker)? + marker.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits.min(6)].parse().ok()
}

/// One header anomaly, as a stable reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderAnomaly {
    MissingAcceptLanguage,
    MissingAccept,
    /// Chrome 80+ sends `Sec-Fetch-*` on every request.
    SecFetchMissing,
    /// `Sec-CH-UA` names another version, or a browser that never sends it.
    ClientHintsMismatch,
    /// Browsers have not spoken HTTP/1.0 for decades.
    Http10Browser,
}

impl HeaderAnomaly {
    pub fn reason(self) -> &'static str {
        match self {
            HeaderAnomaly::MissingAcceptLanguage => "browser_missing_accept_language",
            HeaderAnomaly::MissingAccept => "browser_missing_accept",
            HeaderAnomaly::SecFetchMissing => "browser_missing_sec_fetch",
            HeaderAnomaly::ClientHintsMismatch => "browser_client_hints_mismatch",
            HeaderAnomaly::Http10Browser => "browser_http10",
        }
    }
}

/// Chrome first sent `Sec-Fetch-*` in version 76 and always since 80.
const SEC_FETCH_SINCE: u32 = 80;

/// Finds the anomalies of a request whose User-Agent claims `claim`.
/// Appends to `out` so the caller can reuse one buffer.
pub fn anomalies(
    claim: BrowserClaim,
    version: Version,
    headers: &HeaderMap,
    out: &mut Vec<HeaderAnomaly>,
) {
    if !headers.contains_key(http::header::ACCEPT_LANGUAGE) {
        out.push(HeaderAnomaly::MissingAcceptLanguage);
    }
    if !headers.contains_key(http::header::ACCEPT) {
        out.push(HeaderAnomaly::MissingAccept);
    }
    if version == Version::HTTP_10 || version == Version::HTTP_09 {
        out.push(HeaderAnomaly::Http10Browser);
    }
    let ch_ua = headers.get("sec-ch-ua").map(|v| v.as_bytes());
    match claim {
        BrowserClaim::Chrome(major) => {
            if major >= SEC_FETCH_SINCE && !headers.contains_key("sec-fetch-mode") {
                out.push(HeaderAnomaly::SecFetchMissing);
            }
            if let Some(ch) = ch_ua {
                if !client_hints_name_version(ch, major) {
                    out.push(HeaderAnomaly::ClientHintsMismatch);
                }
            }
        }
        BrowserClaim::Firefox(_) | BrowserClaim::Safari => {
            if ch_ua.is_some() {
                out.push(HeaderAnomaly::ClientHintsMismatch);
            }
        }
    }
}

/// Whether `Sec-CH-UA` (e.g. `"Chromium";v="124", "Not-A.Brand";v="99"`)
/// lists the major version the User-Agent claims.
fn client_hints_name_version(header: &[u8], major: u32) -> bool {
    let mut needle = [0u8; 16];
    let needle = {
        use std::io::Write;
        let mut cur = std::io::Cursor::new(&mut needle[..]);
        // Cannot fail: "v=\"" + at most 10 digits + "\"" fits in 16 bytes.
        let _ = write!(cur, "v=\"{major}\"");
        let len = cur.position() as usize;
        &needle[..len]
    };
    header.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    fn chrome_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("accept", HeaderValue::from_static("text/html"));
        h.insert("accept-language", HeaderValue::from_static("en-GB"));
        h.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
        h.insert(
            "sec-ch-ua",
            HeaderValue::from_static("\"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\""),
        );
        h
    }

    fn found(claim: BrowserClaim, v: Version, h: &HeaderMap) -> Vec<HeaderAnomaly> {
        let mut out = Vec::new();
        anomalies(claim, v, h, &mut out);
        out
    }

    #[test]
    fn claims_are_parsed() {
        assert_eq!(browser_claim(CHROME), Some(BrowserClaim::Chrome(124)));
        assert_eq!(
            browser_claim("Mozilla/5.0 (X11; rv:125.0) Gecko/20100101 Firefox/125.0"),
            Some(BrowserClaim::Firefox(125))
        );
        assert_eq!(browser_claim("curl/8.0"), None);
    }

    #[test]
    fn complete_chrome_request_is_clean() {
        let claim = browser_claim(CHROME).unwrap();
        assert!(found(claim, Version::HTTP_2, &chrome_headers()).is_empty());
    }

    #[test]
    fn each_missing_header_is_reported() {
        let claim = BrowserClaim::Chrome(124);
        for (header, anomaly) in [
            ("accept", HeaderAnomaly::MissingAccept),
            ("accept-language", HeaderAnomaly::MissingAcceptLanguage),
            ("sec-fetch-mode", HeaderAnomaly::SecFetchMissing),
        ] {
            let mut h = chrome_headers();
            h.remove(header);
            assert_eq!(
                found(claim, Version::HTTP_11, &h),
                vec![anomaly],
                "{header}"
            );
        }
    }

    #[test]
    fn client_hints_must_match_the_claim() {
        let mut h = chrome_headers();
        h.insert(
            "sec-ch-ua",
            HeaderValue::from_static("\"Chromium\";v=\"99\""),
        );
        assert_eq!(
            found(BrowserClaim::Chrome(124), Version::HTTP_2, &h),
            vec![HeaderAnomaly::ClientHintsMismatch]
        );
        let mut ff = chrome_headers();
        ff.remove("sec-fetch-mode");
        assert_eq!(
            found(BrowserClaim::Firefox(125), Version::HTTP_2, &ff),
            vec![HeaderAnomaly::ClientHintsMismatch]
        );
    }

    #[test]
    fn http10_with_browser_claim() {
        assert_eq!(
            found(
                BrowserClaim::Chrome(124),
                Version::HTTP_10,
                &chrome_headers()
            ),
            vec![HeaderAnomaly::Http10Browser]
        );
    }
}
