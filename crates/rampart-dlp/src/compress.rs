//! Content-Encoding handling: gzip and brotli bodies are decompressed (up to
//! a size limit) for inspection and recompressed after masking.

use std::io::{Read, Write};

/// Encodings the filter can inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// Maps a `Content-Encoding` value; `None` for anything else (stacked
    /// encodings, deflate, zstd...), which the filter passes uninspected.
    pub fn from_header(value: Option<&http::HeaderValue>) -> Option<Encoding> {
        let Some(v) = value else {
            return Some(Encoding::Identity);
        };
        let v = v.to_str().ok()?.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            Some(Encoding::Identity)
        } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Some(Encoding::Gzip)
        } else if v.eq_ignore_ascii_case("br") {
            Some(Encoding::Brotli)
        } else {
            None
        }
    }
}

/// Why a body could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecompressError {
    /// More than the configured limit once decompressed.
    TooLarge,
    /// Not a valid stream of that encoding.
    Corrupt,
}

impl DecompressError {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DecompressError::TooLarge => "too_large",
            DecompressError::Corrupt => "decompress_error",
        }
    }
}

/// Decompresses `data`, refusing output larger than `limit` bytes (checked
/// while reading, so a compression bomb never allocates past the limit).
pub fn decompress(encoding: Encoding, data: &[u8], limit: u64) -> Result<Vec<u8>, DecompressError> {
    match encoding {
        Encoding::Identity => Ok(data.to_vec()),
        Encoding::Gzip => read_limited(flate2::read::MultiGzDecoder::new(data), limit),
        Encoding::Brotli => read_limited(brotli::Decompressor::new(data, 4096), limit),
    }
}

fn read_limited(reader: impl Read, limit: u64) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| DecompressError::Corrupt)?;
    if out.len() as u64 > limit {
        return Err(DecompressError::TooLarge);
    }
    Ok(out)
}

/// Compresses `data` with `encoding` (gzip level 6, brotli quality 5).
pub fn compress(encoding: Encoding, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Identity => Ok(data.to_vec()),
        Encoding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            enc.write_all(data)?;
            enc.finish()
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            {
                let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                enc.write_all(data)?;
                enc.flush()?;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_limits() {
        let data = b"hello 4111111111111111 ".repeat(100);
        for enc in [Encoding::Gzip, Encoding::Brotli, Encoding::Identity] {
            let z = compress(enc, &data).expect("compress");
            assert_eq!(decompress(enc, &z, 1 << 20).expect("decompress"), data);
            if enc != Encoding::Identity {
                assert_eq!(decompress(enc, &z, 100), Err(DecompressError::TooLarge));
                assert!(decompress(enc, &z[..z.len() / 2], 1 << 20).is_err());
            }
        }
    }

    #[test]
    fn corrupt_input_is_an_error() {
        assert_eq!(
            decompress(Encoding::Gzip, b"\x1f\x8bgarbage", 1 << 20),
            Err(DecompressError::Corrupt)
        );
        assert_eq!(
            decompress(Encoding::Brotli, b"\xff\xff\xff\xffgarbage", 1 << 20),
            Err(DecompressError::Corrupt)
        );
    }

    #[test]
    fn header_mapping() {
        let h = |s: &'static str| http::HeaderValue::from_static(s);
        assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
        assert_eq!(
            Encoding::from_header(Some(&h("GZIP"))),
            Some(Encoding::Gzip)
        );
        assert_eq!(
            Encoding::from_header(Some(&h("br"))),
            Some(Encoding::Brotli)
        );
        assert_eq!(Encoding::from_header(Some(&h("gzip, br"))), None);
        assert_eq!(Encoding::from_header(Some(&h("zstd"))), None);
    }
}
