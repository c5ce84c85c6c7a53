//! rampart-config: one TOML file → a validated, typed [`Config`].
//!
//! Loading goes in stages (after sozu): `${NAME}` expansion, serde into
//! structs that reject unknown keys, then [`validate`]. Every error names the
//! file, the line, the key path and what was expected. The gateway compiles
//! the result into its runtime snapshot and reports its own errors (bad PEM
//! files, say) through [`LoadedConfig::annotate`] the same way.

pub mod bot;
pub mod env;
pub mod error;
pub mod exposure;
pub mod identity;
pub mod locate;
pub mod model;
pub mod traffic;
pub mod units;
pub mod validate;

use std::path::{Path, PathBuf};

pub use bot::{BotPolicy, LoginGuardPolicy};
pub use error::{ConfigError, ConfigErrors};
pub use exposure::{AuthPolicy, DlpPolicy, OpenApiPolicy};
pub use identity::{
    AuthMethodName, CertNameConfig, Jwt, JwtIssuer, NotEnrolledPolicy, StepUpPolicy,
};
pub use model::*;
pub use traffic::{Cluster, LimitConfig, RateLimitPolicy, Reputation, ReputationPolicy};
pub use units::{Bytes, Dur};

/// A config together with the text and file it came from, for error reports.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub source: String,
    pub file: Option<PathBuf>,
}

impl LoadedConfig {
    /// Adds file and line to errors that carry only a key path.
    pub fn annotate(&self, errors: Vec<ConfigError>) -> ConfigErrors {
        annotate(errors, &self.source, self.file.as_deref())
    }
}

fn annotate(errors: Vec<ConfigError>, src: &str, file: Option<&Path>) -> ConfigErrors {
    let map = locate::SourceMap::new(src);
    ConfigErrors(
        errors
            .into_iter()
            .map(|mut e| {
                if e.line.is_none() && !e.path.is_empty() {
                    e.line = map.line_of_path(&e.path);
                }
                e.file = file.map(Path::to_path_buf);
                e
            })
            .collect(),
    )
}

/// Reads, expands, parses and validates the file at `path`.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.to_path_buf()),
        ..ConfigError::new("", format!("cannot read config file: {e}"))
    })?;
    parse(&src, Some(path), |name| std::env::var(name).ok())
}

/// Parses config text; `file` names it in errors and anchors relative paths.
pub fn parse(
    src: &str,
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigErrors> {
    let expanded = env::expand(src, env).map_err(|e| annotate(e, src, file))?;
    let mut config: Config = toml::from_str(&expanded).map_err(|e| {
        let map = locate::SourceMap::new(&expanded);
        let (line, path) = match e.span() {
            Some(span) => (Some(map.line_of(span.start)), map.path_at(span.start)),
            None => (None, String::new()),
        };
        annotate(
            vec![ConfigError {
                line,
                ..ConfigError::new(path, e.message().trim().to_string())
            }],
            &expanded,
            file,
        )
    })?;
    if let Some(dir) = file.and_then(Path::parent) {
        resolve_paths(&mut config, dir);
    }
    let errors = validate::validate(&config);
    if !errors.is_empty() {
        return Err(annotate(errors, &expanded, file));
    }
    Ok(LoadedConfig {
        config,
        source: expanded,
        file: file.map(Path::to_path_buf),
    })
}

/// File paths in the config are relative to the config file's folder.
fn resolve_paths(cfg: &mut Config, dir: &Path) {
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    };
    for l in cfg.listeners.values_mut() {
        if let Some(tls) = &mut l.tls {
            for c in &mut tls.certificates {
                fix(&mut c.cert);
                fix(&mut c.key);
            }
            if let Some(ca) = &mut tls.client_auth {
                fix(&mut ca.ca);
            }
        }
    }
    for r in &mut cfg.routes {
        if let Some(b) = r.login_guard.as_mut().and_then(|l| l.breached.as_mut()) {
            fix(&mut b.path);
        }
        if let Some(w) = &mut r.waf {
            if let Some(d) = &mut w.crs_dir {
                fix(d);
            }
            for f in &mut w.extra_rules {
                fix(f);
            }
        }
    }
    for u in cfg.upstreams.values_mut() {
        if let Some(t) = &mut u.tls {
            for p in [&mut t.ca, &mut t.client_cert, &mut t.client_key]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
        }
    }
}

#[cfg(test)]
mod tests;
