//! The `dlp` section of a route → [`DlpFilter`].

use rampart_config::DlpPolicy;
use rampart_dlp::{Action, DetectorId, DlpFilter, DlpOptions, EngineOptions};

use super::BuildError;

pub fn filter(p: &DlpPolicy) -> Result<DlpFilter, BuildError> {
    let mut detectors: Vec<(DetectorId, Action)> = DetectorId::ALL
        .iter()
        .map(|&d| (d, d.default_action()))
        .collect();
    for (name, action) in &p.detectors {
        let key = format!(".dlp.detectors.{name}");
        let id = DetectorId::parse(name).ok_or_else(|| {
            let known: Vec<_> = DetectorId::ALL.iter().map(|d| d.as_str()).collect();
            (key.clone(), format!("expected one of {}", known.join(", ")))
        })?;
        detectors.retain(|(d, _)| *d != id);
        if action != "off" {
            detectors.push((id, parse_action(action, &key)?));
        }
    }
    let json_rules = p
        .json_paths
        .iter()
        .map(|(path, action)| {
            let key = format!(".dlp.json_paths.\"{path}\"");
            Ok((path.clone(), parse_action(action, &key)?))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    let mask_char = u8::try_from(p.mask_char)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| {
            (
                ".dlp.mask_char".to_string(),
                "expected one ASCII character".into(),
            )
        })?;
    let defaults = DlpOptions::default();
    let options = DlpOptions {
        engine: EngineOptions {
            detectors,
            json_rules,
            mask_char,
            ..EngineOptions::default()
        },
        content_types: p.content_types.clone().unwrap_or(defaults.content_types),
        hold_limit: p.hold_limit.0,
        max_decompressed: p.max_decompressed.0,
        mode: rampart_guard::mode(p.mode),
        ..defaults
    };
    DlpFilter::new(options).map_err(|e| (".dlp".to_string(), e.to_string()))
}

fn parse_action(action: &str, key: &str) -> Result<Action, BuildError> {
    Action::parse(action).ok_or_else(|| {
        (
            key.to_string(),
            format!("expected log, mask, block or off, found {action:?}"),
        )
    })
}
