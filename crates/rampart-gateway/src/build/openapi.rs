//! The `openapi` section of a route → [`OpenApiFilter`], with its spec
//! loaded and compiled once per load.

use std::sync::Arc;

use rampart_config::OpenApiPolicy;
use rampart_openapi::{OpenApi, OpenApiFilter, OpenApiOptions, PolicyMode, UndeclaredPolicy};

use super::BuildError;

/// The compiled spec (kept by the snapshot for the discovery diff) and the filter.
pub fn filter(p: &OpenApiPolicy) -> Result<(Arc<OpenApi>, OpenApiFilter), BuildError> {
    let key = |k: &str| format!(".openapi.{k}");
    let text = std::fs::read_to_string(&p.spec).map_err(|e| {
        (
            key("spec"),
            format!("cannot read {}: {e}", p.spec.display()),
        )
    })?;
    let api = OpenApi::from_text(&text)
        .map_err(|e| (key("spec"), format!("{}: {e}", p.spec.display())))?;
    let api = Arc::new(api);
    let options = OpenApiOptions {
        unknown_endpoints: mode(&p.unknown_endpoints).map_err(|m| (key("unknown_endpoints"), m))?,
        request_validation: mode(&p.request_validation)
            .map_err(|m| (key("request_validation"), m))?,
        undeclared_request: undeclared(&p.undeclared_request)
            .map_err(|m| (key("undeclared_request"), m))?,
        response_validation: mode(&p.response_validation)
            .map_err(|m| (key("response_validation"), m))?,
        strip_response: mode(&p.strip_response).map_err(|m| (key("strip_response"), m))?,
        max_request_body: p.max_request_body.0,
        max_response_body: p.max_response_body.0,
    };
    Ok((api.clone(), OpenApiFilter::new(api, options)))
}

fn mode(s: &str) -> Result<PolicyMode, String> {
    match s {
        "off" => Ok(PolicyMode::Off),
        "monitor" => Ok(PolicyMode::Monitor),
        "enforce" => Ok(PolicyMode::Enforce),
        _ => Err(format!("expected off, monitor or enforce, found {s:?}")),
    }
}

fn undeclared(s: &str) -> Result<UndeclaredPolicy, String> {
    match s {
        "off" => Ok(UndeclaredPolicy::Off),
        "monitor" => Ok(UndeclaredPolicy::Monitor),
        "reject" => Ok(UndeclaredPolicy::Reject),
        "strip" => Ok(UndeclaredPolicy::Strip),
        _ => Err(format!(
            "expected off, monitor, reject or strip, found {s:?}"
        )),
    }
}
