//! Chunk-by-chunk scanning with bounded memory and bounded delay.
//!
//! The scanner keeps back the last `window` bytes of what it has seen (plus
//! any candidate still touching the end of the data), so a value split
//! across chunks is seen whole before any of it leaves. A little already
//! emitted context is kept in front for word-boundary checks. Everything
//! else is masked and emitted at once; masking keeps lengths, so the total
//! output length equals the input length.
//!
//! Memory: at most `window` held bytes plus the current chunk, plus one
//! candidate still growing at the end (bounded by the longest pattern); a
//! hard cap of `4 * window + 16 KiB` forces emission beyond that.

use std::sync::Arc;

use crate::detector::Action;
use crate::engine::{Engine, Inspection};
use crate::finding::Location;
use crate::mask;

/// Already emitted bytes kept in front of the held data, for context.
const CONTEXT: usize = 64;

/// Incremental scanner for one response body.
#[derive(Clone)]
pub struct StreamScanner {
    engine: Arc<Engine>,
    buf: Vec<u8>,
    /// Bytes at the start of `buf` that were already emitted.
    ctx_len: usize,
    /// Stream offset of `buf[ctx_len]`.
    emitted: u64,
    escape_aware: bool,
    inspection: Inspection,
    finished: bool,
}

impl std::fmt::Debug for StreamScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamScanner")
            .field("held", &(self.buf.len() - self.ctx_len))
            .field("emitted", &self.emitted)
            .field("findings", &self.inspection.findings.len())
            .finish_non_exhaustive()
    }
}

impl StreamScanner {
    /// `escape_aware`: the body may be JSON, keep backslash escapes intact
    /// while masking.
    pub fn new(engine: Arc<Engine>, escape_aware: bool) -> StreamScanner {
        StreamScanner {
            engine,
            buf: Vec::new(),
            ctx_len: 0,
            emitted: 0,
            escape_aware,
            inspection: Inspection::default(),
            finished: false,
        }
    }

    /// Feeds a chunk; returns the bytes that may be sent now (masked).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.finished {
            return chunk.to_vec();
        }
        self.buf.extend_from_slice(chunk);
        self.process(false)
    }

    /// Ends the body; returns the rest of the held bytes (masked).
    pub fn finish(&mut self) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        let out = self.process(true);
        self.finished = true;
        self.buf = Vec::new();
        out
    }

    /// Bytes currently held back (not yet emitted).
    pub fn held(&self) -> usize {
        self.buf.len() - self.ctx_len
    }

    /// Findings so far.
    pub fn inspection(&self) -> &Inspection {
        &self.inspection
    }

    /// Takes the findings recorded since the last call.
    pub fn take_findings(&mut self) -> Inspection {
        let blocked = self.inspection.blocked;
        let taken = std::mem::take(&mut self.inspection);
        self.inspection.blocked = blocked;
        taken
    }

    fn hard_cap(&self) -> usize {
        4 * self.engine.window() + 16 * 1024
    }

    fn process(&mut self, at_eof: bool) -> Vec<u8> {
        let len = self.buf.len();
        let window = self.engine.window();
        let scan = self
            .engine
            .scanner()
            .scan_at(&self.buf, self.ctx_len, at_eof);
        let mut limit = if at_eof {
            len
        } else {
            len.saturating_sub(window).max(self.ctx_len)
        };
        if let Some(start) = scan.incomplete_from {
            limit = limit.min(start);
        }
        if let Some(last) = scan.matches.last() {
            if !at_eof && last.end == len {
                // It may still grow with the next chunk: hold it whole.
                limit = limit.min(last.start);
            }
        }
        if len - self.ctx_len > self.hard_cap() {
            limit = limit.max(len - window);
        }
        limit = limit.max(self.ctx_len);
        for m in &scan.matches {
            if m.start >= limit {
                break;
            }
            limit = limit.max(m.end);
            let action = self.engine.action(m.detector);
            let offset = self.emitted + (m.start - self.ctx_len) as u64;
            let value = &self.buf[m.start..m.end];
            self.engine.record(
                &mut self.inspection,
                m.detector,
                action,
                Location::Offset(offset),
                value,
            );
            // Blocked data is masked too: once streaming, the gateway can
            // only cut the response short, and what left must not carry it.
            if action >= Action::Mask {
                let mask_char = self.engine.mask_char();
                mask::mask_range(
                    &mut self.buf,
                    m.start,
                    m.end,
                    Some(m.detector),
                    mask_char,
                    self.escape_aware,
                );
            }
        }
        self.emit_up_to(limit.min(len))
    }

    fn emit_up_to(&mut self, limit: usize) -> Vec<u8> {
        let out = self.buf[self.ctx_len..limit].to_vec();
        self.emitted += out.len() as u64;
        let keep_from = limit.saturating_sub(CONTEXT);
        self.buf.drain(..keep_from);
        self.ctx_len = limit - keep_from;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineOptions;

    fn engine() -> Arc<Engine> {
        Engine::new(&EngineOptions::default()).expect("engine")
    }

    #[test]
    fn holds_at_most_window_between_chunks() {
        let e = engine();
        let mut s = StreamScanner::new(e.clone(), false);
        let mut total = 0;
        for _ in 0..100 {
            total += s.push(&[b'a'; 1000]).len();
            assert!(s.held() <= e.window(), "{}", s.held());
        }
        total += s.finish().len();
        assert_eq!(total, 100_000);
    }
}
