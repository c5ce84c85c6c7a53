//! Chunked transfer coding (RFC 9112 §7.1) for the upstream client: a
//! decoder for response bodies that hands out data without copying it, and
//! the encoder for request bodies of unknown length.
//!
//! The decoder is strict (CRLF line ends, hex sizes that fit 64 bits,
//! bounded extensions and trailers): between a gateway and its upstream, a
//! lenient reading is how request smuggling and response splitting start.

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;

use super::h1wire::WireError;

/// Longest chunk-size line (size, extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;

/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// Most trailer fields.
const MAX_TRAILER_FIELDS: usize = 64;

/// What the decoder found in the buffered bytes.
#[derive(Debug)]
pub enum Decoded {
    Data(Bytes),
    /// The trailer section, after the last chunk; the body ends with it.
    Trailers(HeaderMap),
    /// The body is complete (no trailers, or after them).
    End,
    /// The buffer holds no complete next piece: read more.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// After chunk data, at its CRLF.
    DataEnd,
    /// After the last chunk, at the trailer section.
    Trailers,
    Done,
}

/// Incremental decoder over a connection's read buffer.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder { state: State::Size }
    }
}

impl ChunkedDecoder {
    /// Decodes the next piece from the front of `buf`, consuming what it used.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        loop {
            match self.state {
                State::Size => {
                    let Some(size) = take_size_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(Decoded::Data(data));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(WireError::Chunked);
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => return self.take_trailers(buf),
                State::Done => return Ok(Decoded::End),
            }
        }
    }

    fn take_trailers(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        if buf.len() < 2 {
            return Ok(Decoded::NeedMore);
        }
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            self.state = State::Done;
            return Ok(Decoded::End);
        }
        let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
            return if buf.len() > MAX_TRAILERS {
                Err(WireError::TrailersTooLarge)
            } else {
                Ok(Decoded::NeedMore)
            };
        };
        if end + 4 > MAX_TRAILERS {
            return Err(WireError::TrailersTooLarge);
        }
        let section = buf.split_to(end + 4);
        let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
        let parsed = match httparse::parse_headers(&section, &mut fields) {
            Ok(httparse::Status::Complete((_, parsed))) => parsed,
            Err(httparse::Error::TooManyHeaders) => return Err(WireError::TrailersTooLarge),
            _ => return Err(WireError::Chunked),
        };
        let mut trailers = HeaderMap::with_capacity(parsed.len());
        for f in parsed {
            let name =
                http::HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| WireError::Chunked)?;
            let value = http::HeaderValue::from_bytes(f.value).map_err(|_| WireError::Chunked)?;
            trailers.append(name, value);
        }
        self.state = State::Done;
        Ok(Decoded::Trailers(trailers))
    }
}

/// Consumes one `size[;ext]CRLF` line; `None` until the line is complete.
fn take_size_line(buf: &mut BytesMut) -> Result<Option<u64>, WireError> {
    let Some(lf) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_SIZE_LINE {
            Err(WireError::Chunked)
        } else {
            Ok(None)
        };
    };
    if lf > MAX_SIZE_LINE || lf == 0 || buf[lf - 1] != b'\r' {
        return Err(WireError::Chunked);
    }
    let line = &buf[..lf - 1];
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(WireError::Chunked);
    }
    // After the size: optional whitespace, then nothing or an extension.
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') || rest.iter().any(|&b| b < 0x20 && b != b'\t') {
        return Err(WireError::Chunked);
    }
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        // Sixteen hex digits at most, so this cannot overflow.
        (n << 4) | u64::from((d as char).to_digit(16).unwrap_or(0))
    });
    buf.advance(lf + 1);
    Ok(Some(size))
}

/// Appends a chunk's size line; the caller writes the data and [`CRLF`].
pub fn write_chunk_header(out: &mut Vec<u8>, len: usize) {
    // Lower-case hex without the formatting machinery (once per chunk,
    // upstream and client side).
    let mut hex = [0u8; 16];
    let mut n = len;
    let mut at = hex.len();
    loop {
        at -= 1;
        hex[at] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&hex[at..]);
    out.extend_from_slice(CRLF);
}

pub const CRLF: &[u8] = b"\r\n";

/// Appends the last chunk, the trailers if any, and the final CRLF.
pub fn write_last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        super::h1wire::write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(CRLF);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_headers_are_lower_hex_and_the_last_chunk_ends_the_body() {
        for (n, want) in [
            (0, "0\r\n"),
            (10, "a\r\n"),
            (255, "ff\r\n"),
            (65536, "10000\r\n"),
        ] {
            let mut out = Vec::new();
            write_chunk_header(&mut out, n);
            assert_eq!(out, want.as_bytes());
        }
        let mut out = Vec::new();
        write_last_chunk(&mut out, None);
        assert_eq!(out, b"0\r\n\r\n");
    }

    /// Decodes `raw` fed `step` bytes at a time; data joined, trailers, end.
    fn decode_all(raw: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>), WireError> {
        let mut dec = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut data = Vec::new();
        let mut trailers = None;
        loop {
            match dec.decode(&mut buf)? {
                Decoded::Data(d) => data.extend_from_slice(&d),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return Ok((data, trailers)),
                Decoded::NeedMore if fed == raw.len() => return Err(WireError::Chunked),
                Decoded::NeedMore => {
                    let next = (fed + step).min(raw.len());
                    buf.extend_from_slice(&raw[fed..next]);
                    fed = next;
                }
            }
        }
    }

    #[test]
    fn decodes_chunks_whatever_the_read_boundaries() {
        let raw = b"5\r\nhello\r\n6;name=val\r\n world\r\nA \r\n0123456789\r\n0\r\n\r\n";
        for step in [1, 2, 3, 7, raw.len()] {
            let (data, trailers) = decode_all(raw, step).unwrap();
            assert_eq!(data, b"hello world0123456789", "step {step}");
            assert!(trailers.is_none());
        }
    }

    #[test]
    fn decodes_trailers() {
        let raw = b"3\r\nabc\r\n0\r\ngrpc-status: 0\r\nx-sum: 9\r\n\r\n";
        for step in [1, 5, raw.len()] {
            let (data, trailers) = decode_all(raw, step).unwrap();
            assert_eq!(data, b"abc");
            let t = trailers.expect("trailers");
            assert_eq!(t["grpc-status"], "0");
            assert_eq!(t["x-sum"], "9");
        }
    }

    #[test]
    fn leaves_bytes_after_the_body_in_the_buffer() {
        let mut buf = BytesMut::from(&b"1\r\nx\r\n0\r\n\r\nHTTP/1.1 200"[..]);
        let mut dec = ChunkedDecoder::default();
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::Data(_))));
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::End)));
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::End)));
        assert_eq!(&buf[..], b"HTTP/1.1 200");
    }

    #[test]
    fn refuses_malformed_framing() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..], // bare LF
            b"5\r\nhelloX\r\n0\r\n\r\n",   // data longer than its size
            b"g\r\n",                      // not hex
            b"\r\n",                       // no size
            b"+5\r\nhello\r\n0\r\n\r\n",   // sign
            b"11111111111111111\r\n",      // 17 digits: overflow
            b"5 x\r\nhello\r\n0\r\n\r\n",  // junk after the size
            b"0\r\nbad trailer\r\n\r\n",   // trailer without a colon
        ] {
            assert!(
                decode_all(bad, bad.len()).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bounds_size_lines_and_trailers() {
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(MAX_SIZE_LINE + 10, b'a');
        assert_eq!(
            decode_all(&long_ext, long_ext.len()).err(),
            Some(WireError::Chunked)
        );
        let mut big = b"0\r\n".to_vec();
        while big.len() <= MAX_TRAILERS {
            big.extend_from_slice(b"x-pad: 0123456789abcdef0123456789abcdef\r\n");
        }
        assert_eq!(
            decode_all(&big, big.len()).err(),
            Some(WireError::TrailersTooLarge)
        );
    }

    #[test]
    fn encoder_output_decodes_back() {
        let mut out = Vec::new();
        for piece in [&b"hello"[..], &[b'z'; 300][..]] {
            write_chunk_header(&mut out, piece.len());
            out.extend_from_slice(piece);
            out.extend_from_slice(CRLF);
        }
        let mut t = HeaderMap::new();
        t.insert("x-checksum", http::HeaderValue::from_static("abc"));
        write_last_chunk(&mut out, Some(&t));
        let (data, trailers) = decode_all(&out, 4).unwrap();
        assert_eq!(data.len(), 305);
        assert_eq!(&data[..5], b"hello");
        assert_eq!(trailers.unwrap()["x-checksum"], "abc");
    }
}
