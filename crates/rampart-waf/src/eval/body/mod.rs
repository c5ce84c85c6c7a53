//! Request body processors: URL-encoded, multipart, JSON and XML, chosen
//! by `ctl:requestBodyProcessor` or the content type. Each is bounded
//! (body size, argument count, nesting depth) so hostile input can only
//! produce `REQBODY_ERROR`, never a panic or a stall.

mod json;
mod multipart;
pub(super) mod urlencoded;
mod xml;

use crate::parser::{BodyLimitAction, BodyProcessor, EngineMode};

use super::data::Coll;
use super::{Intervention, Transaction};

/// `Cookie: a=1; b=2` → `REQUEST_COOKIES`.
pub(super) fn parse_cookies(header: &[u8], out: &mut Coll) {
    for piece in header.split(|b| *b == b';') {
        let piece = trim(piece);
        if piece.is_empty() {
            continue;
        }
        let (name, value) = match piece.iter().position(|b| *b == b'=') {
            Some(eq) => (&piece[..eq], &piece[eq + 1..]),
            None => (piece, &b""[..]),
        };
        out.push(String::from_utf8_lossy(trim(name)), value);
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

impl<'r> Transaction<'r> {
    /// Runs the body processor before phase 2.
    pub(super) fn parse_request_body(&mut self) {
        let config = self.rules.config();
        if self.req.body_truncated
            && config.request_body_limit_action == BodyLimitAction::Reject
            && self.ov.engine == EngineMode::On
        {
            self.intervention = Some(Intervention {
                status: 413,
                rule_id: 0,
                msg: "Request body exceeds the configured limit".into(),
                url: None,
                drop: false,
            });
        }
        if !self.ov.request_body_access {
            return;
        }
        let body = std::mem::take(&mut self.req.body);
        let processor = self.body_processor();
        if processor.is_some() {
            self.req.processor = processor;
        }
        let result = match processor {
            Some(BodyProcessor::UrlEncoded) => {
                let sep = config.argument_separator;
                urlencoded::parse_into(&body, sep, &mut self.req.args_post);
                Ok(())
            }
            Some(BodyProcessor::Multipart) => {
                let ctype = self
                    .req
                    .headers
                    .get("content-type")
                    .unwrap_or_default()
                    .to_vec();
                multipart::parse(&ctype, &body, &mut self.req)
            }
            Some(BodyProcessor::Json) => json::parse(
                &body,
                config.json_depth_limit as usize,
                &mut self.req.args_post,
            ),
            Some(BodyProcessor::Xml) => xml::parse(&body, &mut self.req),
            None => Ok(()),
        };
        self.req.body = body;
        // Without a processor the request is as it was (the body is put
        // back unchanged): what phase 1 computed from it stays valid,
        // unless the argument limit below changes something.
        if processor.is_some() {
            self.invalidate_scalars();
        }
        if let Err(msg) = result {
            self.req.body_error = Some(msg);
        }
        let limit = config.arguments_limit as usize;
        let total = self.req.args_get.len() + self.req.args_post.len();
        if total > limit {
            let keep = limit.saturating_sub(self.req.args_get.len());
            self.req.args_post.entries.truncate(keep);
            self.req.body_error = Some("Arguments limit exceeded".into());
            self.invalidate_scalars();
        }
    }
}
