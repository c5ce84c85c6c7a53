//! The bot score: weighted signals summed into 0–100, and the policy that
//! maps score bands to allow / challenge / block.
//!
//! Every signal carries a stable reason code and its points, so a log line
//! shows exactly why a request scored what it did.

use std::collections::HashSet;
use std::net::IpAddr;

use http::{HeaderMap, Version};
use ipnet::IpNet;
use rampart_core::IpSet;

use crate::cadence::{CadenceOptions, CadenceTracker};
use crate::headers::{anomalies, browser_claim, HeaderAnomaly};
use crate::ua::{UaClass, UaClassifier};

/// One reason that added to the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub reason: &'static str,
    pub points: u8,
}

/// Points per signal. Defaults are tuned so that one strong signal
/// (scanner) blocks, one medium signal (automation library on a browser
/// route, headless browser) challenges, and weak signals only add up.
#[derive(Debug, Clone)]
pub struct Weights {
    pub scanner: u8,
    pub headless: u8,
    pub automation: u8,
    pub empty_user_agent: u8,
    /// A User-Agent claiming a known good bot from an address outside the
    /// bot's allow rule (a fake Googlebot).
    pub unverified_good_bot: u8,
    /// Per header anomaly of a browser-claiming client.
    pub header_anomaly: u8,
    pub regular_cadence: u8,
    pub burst: u8,
    /// JA4 fingerprint on the bad list.
    pub ja4_listed: u8,
    /// Maximum points from IP reputation (scaled by the 0–100 input).
    pub ip_reputation_max: u8,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            scanner: 90,
            headless: 50,
            automation: 35,
            empty_user_agent: 40,
            unverified_good_bot: 45,
            header_anomaly: 12,
            regular_cadence: 30,
            burst: 20,
            ja4_listed: 50,
            ip_reputation_max: 40,
        }
    }
}

/// A verified good bot: its User-Agent marker AND the networks it crawls
/// from (published by the operator, e.g. Googlebot's ranges). Both must
/// match.
#[derive(Debug, Clone)]
pub struct GoodBotRule {
    pub name: String,
    /// Case-insensitive User-Agent substring, e.g. `Googlebot`.
    pub user_agent: String,
    pub networks: Vec<IpNet>,
}

/// Everything the scorer looks at for one request.
#[derive(Debug, Clone, Copy)]
pub struct ScoreInput<'a> {
    pub client_ip: IpAddr,
    pub version: Version,
    pub headers: &'a HeaderMap,
    /// JA4 of the TLS connection, when the gateway computed one.
    pub ja4: Option<&'a str>,
    /// IP reputation 0 (clean) – 100 (known bad), when a feed knows the IP.
    pub ip_reputation: Option<u8>,
}

/// The result: score, the signals behind it, and the verified bot, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotScore {
    pub score: u8,
    pub signals: Vec<Signal>,
    /// Name of the good-bot rule the request verified against.
    pub verified_bot: Option<String>,
}

impl BotScore {
    fn add(&mut self, reason: &'static str, points: u8) {
        if points > 0 {
            self.signals.push(Signal { reason, points });
            self.score = self.score.saturating_add(points).min(100);
        }
    }
}

/// Scorer settings.
#[derive(Debug, Clone, Default)]
pub struct ScorerOptions {
    pub weights: Weights,
    pub cadence: CadenceOptions,
    /// JA4 fingerprints of known automation stacks (exact strings).
    pub ja4_deny_list: Vec<String>,
    pub good_bots: Vec<GoodBotRule>,
}

struct CompiledGoodBot {
    name: String,
    needle: Vec<u8>,
    networks: IpSet,
}

/// Computes bot scores. One instance serves all requests.
pub struct Scorer {
    weights: Weights,
    ua: UaClassifier,
    cadence: CadenceTracker,
    ja4_deny: HashSet<String>,
    good_bots: Vec<CompiledGoodBot>,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("weights", &self.weights)
            .field("ja4_deny", &self.ja4_deny.len())
            .field("good_bots", &self.good_bots.len())
            .finish()
    }
}

impl Scorer {
    pub fn new(options: ScorerOptions, ua: UaClassifier) -> Self {
        Scorer {
            weights: options.weights,
            ua,
            cadence: CadenceTracker::new(options.cadence),
            ja4_deny: options.ja4_deny_list.into_iter().collect(),
            good_bots: options
                .good_bots
                .into_iter()
                .map(|r| CompiledGoodBot {
                    needle: r.user_agent.to_ascii_lowercase().into_bytes(),
                    networks: IpSet::new(&r.networks),
                    name: r.name,
                })
                .collect(),
        }
    }

    /// Scores one request (and records it in the cadence table).
    pub fn score(&self, input: &ScoreInput<'_>) -> BotScore {
        let ua = input
            .headers
            .get(http::header::USER_AGENT)
            .map(|v| v.as_bytes())
            .unwrap_or(b"");
        if let Some(name) = self.verified_good_bot(ua, input.client_ip) {
            return BotScore {
                score: 0,
                signals: vec![Signal {
                    reason: "verified_good_bot",
                    points: 0,
                }],
                verified_bot: Some(name.to_string()),
            };
        }
        let mut out = BotScore {
            signals: Vec::with_capacity(4),
            ..BotScore::default()
        };
        self.user_agent_signals(ua, &mut out);
        self.header_signals(ua, input, &mut out);
        self.cadence_signals(input.client_ip, &mut out);
        if input.ja4.is_some_and(|j| self.ja4_deny.contains(j)) {
            out.add("ja4_listed", self.weights.ja4_listed);
        }
        if let Some(rep) = input.ip_reputation {
            let pts = (rep.min(100) as u32 * self.weights.ip_reputation_max as u32 / 100) as u8;
            out.add("ip_reputation", pts);
        }
        out
    }

    fn verified_good_bot(&self, ua: &[u8], ip: IpAddr) -> Option<&str> {
        self.good_bots
            .iter()
            .find(|b| contains_ignore_case(ua, &b.needle) && b.networks.contains(ip))
            .map(|b| b.name.as_str())
    }

    fn user_agent_signals(&self, ua: &[u8], out: &mut BotScore) {
        if ua.iter().all(u8::is_ascii_whitespace) {
            out.add("empty_user_agent", self.weights.empty_user_agent);
            return;
        }
        let m = self.ua.classify(ua);
        let w = &self.weights;
        if m.has(UaClass::Scanner) {
            out.add("ua_scanner", w.scanner);
        }
        if m.has(UaClass::Headless) {
            out.add("ua_headless", w.headless);
        }
        if m.has(UaClass::Automation) {
            out.add("ua_automation", w.automation);
        }
        if m.good_bot.is_some() {
            out.add("unverified_good_bot", w.unverified_good_bot);
        }
    }

    fn header_signals(&self, ua: &[u8], input: &ScoreInput<'_>, out: &mut BotScore) {
        let Some(claim) = std::str::from_utf8(ua).ok().and_then(browser_claim) else {
            return;
        };
        let mut found: Vec<HeaderAnomaly> = Vec::new();
        anomalies(claim, input.version, input.headers, &mut found);
        for a in found {
            out.add(a.reason(), self.weights.header_anomaly);
        }
    }

    fn cadence_signals(&self, ip: IpAddr, out: &mut BotScore) {
        let report = self.cadence.observe(ip);
        if report.regular {
            out.add("regular_cadence", self.weights.regular_cadence);
        }
        if report.burst {
            out.add("request_burst", self.weights.burst);
        }
    }
}

fn contains_ignore_case(hay: &[u8], lower_needle: &[u8]) -> bool {
    !lower_needle.is_empty()
        && hay
            .windows(lower_needle.len())
            .any(|w| w.eq_ignore_ascii_case(lower_needle))
}

/// What to do with a request, by score band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Challenge with a proof-of-work puzzle of this difficulty (bits).
    Challenge {
        difficulty: u8,
    },
    Block,
}

/// Score bands: `[0, challenge_at)` allow, `[challenge_at, block_at)`
/// challenge, `[block_at, 100]` block.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Default 30.
    pub challenge_at: u8,
    /// Default 80.
    pub block_at: u8,
    /// Difficulty at `challenge_at` (default 16 bits: ~65k hashes, well
    /// under a second in a browser).
    pub min_difficulty: u8,
    /// Difficulty just below `block_at` (default 20 bits: ~1M hashes,
    /// a few seconds in a browser).
    pub max_difficulty: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            challenge_at: 30,
            block_at: 80,
            min_difficulty: 16,
            max_difficulty: 20,
        }
    }
}

impl Policy {
    pub fn action(&self, score: u8) -> Action {
        if score >= self.block_at {
            Action::Block
        } else if score >= self.challenge_at {
            Action::Challenge {
                difficulty: self.difficulty(score),
            }
        } else {
            Action::Allow
        }
    }

    /// Linear from `min_difficulty` to `max_difficulty` across the band.
    pub fn difficulty(&self, score: u8) -> u8 {
        let span = self.block_at.saturating_sub(self.challenge_at).max(1) as u32;
        let into = score.saturating_sub(self.challenge_at).min(span as u8) as u32;
        let extra = self.max_difficulty.saturating_sub(self.min_difficulty) as u32;
        (self.min_difficulty as u32 + extra * into / span) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    fn scorer(opts: ScorerOptions) -> Scorer {
        Scorer::new(opts, UaClassifier::builtin())
    }

    fn headers(ua: &str, browser_extras: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("user-agent", HeaderValue::from_str(ua).unwrap());
        if browser_extras {
            h.insert("accept", HeaderValue::from_static("text/html"));
            h.insert("accept-language", HeaderValue::from_static("en"));
            h.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
        }
        h
    }

    fn input<'a>(h: &'a HeaderMap, ip: &str) -> ScoreInput<'a> {
        ScoreInput {
            client_ip: ip.parse().unwrap(),
            version: Version::HTTP_11,
            headers: h,
            ja4: None,
            ip_reputation: None,
        }
    }

    fn reasons(s: &BotScore) -> Vec<&'static str> {
        s.signals.iter().map(|s| s.reason).collect()
    }

    #[test]
    fn real_browser_scores_zero() {
        let h = headers(CHROME, true);
        let s = scorer(ScorerOptions::default()).score(&input(&h, "192.0.2.1"));
        assert_eq!(s.score, 0, "{s:?}");
        assert_eq!(Policy::default().action(s.score), Action::Allow);
    }

    #[test]
    fn scanner_blocks_and_library_challenges() {
        let sc = scorer(ScorerOptions::default());
        let h = headers("sqlmap/1.7", false);
        let s = sc.score(&input(&h, "192.0.2.2"));
        assert_eq!(reasons(&s), vec!["ua_scanner"]);
        assert_eq!(Policy::default().action(s.score), Action::Block);
        let h = headers("python-requests/2.31", false);
        let s = sc.score(&input(&h, "192.0.2.3"));
        assert!(matches!(
            Policy::default().action(s.score),
            Action::Challenge { .. }
        ));
    }

    #[test]
    fn copied_browser_ua_without_browser_headers_scores() {
        let h = headers(CHROME, false);
        let s = scorer(ScorerOptions::default()).score(&input(&h, "192.0.2.4"));
        assert_eq!(
            reasons(&s),
            vec![
                "browser_missing_accept_language",
                "browser_missing_accept",
                "browser_missing_sec_fetch"
            ]
        );
        assert_eq!(s.score, 36);
    }

    #[test]
    fn good_bot_is_verified_by_ua_and_network_only() {
        let opts = ScorerOptions {
            good_bots: vec![GoodBotRule {
                name: "googlebot".into(),
                user_agent: "Googlebot".into(),
                networks: vec!["66.249.64.0/19".parse().unwrap()],
            }],
            ..ScorerOptions::default()
        };
        let sc = scorer(opts);
        let h = headers("Mozilla/5.0 (compatible; Googlebot/2.1)", false);
        let ok = sc.score(&input(&h, "66.249.66.1"));
        assert_eq!(ok.verified_bot.as_deref(), Some("googlebot"));
        assert_eq!(ok.score, 0);
        let fake = sc.score(&input(&h, "203.0.113.9"));
        assert!(fake.verified_bot.is_none());
        assert!(reasons(&fake).contains(&"unverified_good_bot"));
    }

    #[test]
    fn ja4_and_reputation_inputs_add_points() {
        let sc = scorer(ScorerOptions {
            ja4_deny_list: vec!["t13d1516h2_8daaf6152771_d8a2da3f94cd".into()],
            ..ScorerOptions::default()
        });
        let h = headers(CHROME, true);
        let mut i = input(&h, "192.0.2.5");
        i.ja4 = Some("t13d1516h2_8daaf6152771_d8a2da3f94cd");
        i.ip_reputation = Some(50);
        let s = sc.score(&i);
        assert_eq!(reasons(&s), vec!["ja4_listed", "ip_reputation"]);
        assert_eq!(s.score, 70);
    }

    #[test]
    fn score_is_capped_at_100() {
        let h = headers("sqlmap headlesschrome curl/1", false);
        let s = scorer(ScorerOptions::default()).score(&input(&h, "192.0.2.6"));
        assert_eq!(s.score, 100);
    }

    #[test]
    fn difficulty_rises_with_score() {
        let p = Policy::default();
        assert_eq!(p.action(29), Action::Allow);
        assert_eq!(p.action(30), Action::Challenge { difficulty: 16 });
        assert_eq!(p.action(79), Action::Challenge { difficulty: 19 });
        assert_eq!(p.action(80), Action::Block);
        assert!(p.difficulty(55) > p.difficulty(30));
    }
}
