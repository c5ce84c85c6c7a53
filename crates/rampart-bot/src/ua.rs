//! User-Agent classification from rampart's own list (`data/user-agents.toml`).
//!
//! All patterns of all classes are compiled into one case-insensitive
//! Aho-Corasick automaton, so classifying a User-Agent is a single linear
//! pass with no backtracking, whatever the attacker sends.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Deserialize;

/// The built-in list, compiled into the binary.
pub const BUILTIN_LIST: &str = include_str!("../data/user-agents.toml");

/// User-Agent headers longer than this are classified on their first bytes
/// only (legitimate ones are a few hundred bytes).
pub const MAX_UA_SCAN: usize = 2048;

/// A class of client recognised from its User-Agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UaClass {
    Automation,
    Scanner,
    Headless,
}

impl UaClass {
    fn bit(self) -> u8 {
        match self {
            UaClass::Automation => 1,
            UaClass::Scanner => 2,
            UaClass::Headless => 4,
        }
    }
}

/// What the classifier found in one User-Agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UaMatch {
    classes: u8,
    /// The known good bot this User-Agent claims to be (unverified).
    pub good_bot: Option<usize>,
}

impl UaMatch {
    pub fn has(&self, class: UaClass) -> bool {
        self.classes & class.bit() != 0
    }
}

#[derive(Debug, Clone, Copy)]
enum PatternKind {
    Class(UaClass),
    GoodBot(usize),
}

/// Compiled User-Agent list.
#[derive(Debug, Clone)]
pub struct UaClassifier {
    automaton: AhoCorasick,
    kinds: Vec<PatternKind>,
    good_bots: Vec<String>,
}

#[derive(Deserialize)]
struct ListFile {
    #[serde(default)]
    automation: Section,
    #[serde(default)]
    scanner: Section,
    #[serde(default)]
    headless: Section,
    #[serde(default)]
    good_bot: Vec<GoodBotEntry>,
}

#[derive(Deserialize, Default)]
struct Section {
    #[serde(default)]
    patterns: Vec<String>,
}

#[derive(Deserialize)]
struct GoodBotEntry {
    name: String,
    pattern: String,
}

/// Why a User-Agent list could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum UaListError {
    #[error("user-agent list is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("user-agent list has an empty pattern")]
    EmptyPattern,
    #[error("user-agent automaton could not be built: {0}")]
    Build(#[from] aho_corasick::BuildError),
}

impl UaClassifier {
    /// The built-in list.
    pub fn builtin() -> Self {
        // The built-in list is tested (see tests below), so failure here is a
        // build defect, not a runtime condition.
        Self::from_toml(BUILTIN_LIST).expect("built-in user-agent list is valid")
    }

    /// A list in the same TOML layout as `data/user-agents.toml`.
    pub fn from_toml(text: &str) -> Result<Self, UaListError> {
        let file: ListFile = toml::from_str(text)?;
        let mut patterns = Vec::new();
        let mut kinds = Vec::new();
        for (section, class) in [
            (&file.automation, UaClass::Automation),
            (&file.scanner, UaClass::Scanner),
            (&file.headless, UaClass::Headless),
        ] {
            for p in &section.patterns {
                patterns.push(p.clone());
                kinds.push(PatternKind::Class(class));
            }
        }
        let mut good_bots = Vec::new();
        for (i, bot) in file.good_bot.iter().enumerate() {
            patterns.push(bot.pattern.clone());
            kinds.push(PatternKind::GoodBot(i));
            good_bots.push(bot.name.clone());
        }
        if patterns.iter().any(|p| p.is_empty()) {
            return Err(UaListError::EmptyPattern);
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)?;
        Ok(UaClassifier {
            automaton,
            kinds,
            good_bots,
        })
    }

    /// Classifies one User-Agent (raw header bytes).
    pub fn classify(&self, user_agent: &[u8]) -> UaMatch {
        let scan = &user_agent[..user_agent.len().min(MAX_UA_SCAN)];
        let mut m = UaMatch::default();
        for hit in self.automaton.find_overlapping_iter(scan) {
            match self.kinds[hit.pattern().as_usize()] {
                PatternKind::Class(c) => m.classes |= c.bit(),
                PatternKind::GoodBot(i) => m.good_bot = m.good_bot.or(Some(i)),
            }
        }
        m
    }

    /// The name of a good bot returned in [`UaMatch::good_bot`].
    pub fn good_bot_name(&self, index: usize) -> Option<&str> {
        self.good_bots.get(index).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    #[test]
    fn builtin_list_loads() {
        let c = UaClassifier::builtin();
        assert!(c.kinds.len() > 50);
    }

    #[test]
    fn classes_are_recognised() {
        let c = UaClassifier::builtin();
        let cases: &[(&str, UaClass)] = &[
            ("curl/8.4.0", UaClass::Automation),
            ("python-requests/2.31.0", UaClass::Automation),
            ("Go-http-client/1.1", UaClass::Automation),
            ("okhttp/4.12.0", UaClass::Automation),
            ("axios/1.6.2", UaClass::Automation),
            ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", UaClass::Automation),
            ("sqlmap/1.7.2#stable (https://sqlmap.org)", UaClass::Scanner),
            ("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None)", UaClass::Scanner),
            ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", UaClass::Scanner),
            ("masscan/1.3 (https://github.com/robertdavidgraham/masscan)", UaClass::Scanner),
            ("Mozilla/5.0 zgrab/0.x", UaClass::Scanner),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
                UaClass::Headless,
            ),
            ("Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1", UaClass::Headless),
        ];
        for (ua, class) in cases {
            assert!(
                c.classify(ua.as_bytes()).has(*class),
                "{ua} should be {class:?}"
            );
        }
    }

    #[test]
    fn real_browsers_match_nothing() {
        let c = UaClassifier::builtin();
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
        let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
        for ua in [CHROME, firefox, safari] {
            assert_eq!(c.classify(ua.as_bytes()), UaMatch::default(), "{ua}");
        }
    }

    #[test]
    fn good_bots_are_labelled_not_trusted() {
        let c = UaClassifier::builtin();
        let m =
            c.classify(b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(
            m.good_bot.and_then(|i| c.good_bot_name(i)),
            Some("googlebot")
        );
    }

    #[test]
    fn custom_list_and_errors() {
        let c = UaClassifier::from_toml("[scanner]\npatterns = [\"evilscan\"]\n").unwrap();
        assert!(c.classify(b"EvilScan/1").has(UaClass::Scanner));
        assert!(UaClassifier::from_toml("[scanner]\npatterns = [\"\"]").is_err());
        assert!(UaClassifier::from_toml("not toml [").is_err());
    }
}
