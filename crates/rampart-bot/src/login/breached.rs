//! Breached-password check against a local Pwned Passwords dataset.
//!
//! Only the SHA-1 of the submitted password is computed (in a buffer that is
//! wiped afterwards); the password itself is never stored, logged or sent
//! anywhere. Two dataset layouts are supported:
//!
//! * **range directory**: files named by the 5-hex-digit hash prefix
//!   (`21BD1` or `21BD1.txt`), each line `SUFFIX:COUNT` with the 35
//!   remaining hex digits, as served by the range API and its downloaders;
//! * **sorted file**: one file of `HASH:COUNT` lines sorted by hash, searched
//!   by binary search over byte offsets, so a 40 GB file is never loaded.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

/// Where the dataset is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreachedSource {
    RangeDirectory(PathBuf),
    SortedFile(PathBuf),
}

/// Why a lookup failed (the dataset, never the password, is described).
#[derive(Debug, thiserror::Error)]
pub enum BreachedError {
    #[error("breached-password dataset could not be read: {0}")]
    Io(#[from] std::io::Error),
}

/// A breached-password dataset.
#[derive(Debug, Clone)]
pub struct BreachedPasswords {
    source: BreachedSource,
}

impl BreachedPasswords {
    pub fn new(source: BreachedSource) -> Self {
        BreachedPasswords { source }
    }

    /// How often the password appears in the dataset (0: not found).
    pub fn count(&self, password: &[u8]) -> Result<u64, BreachedError> {
        let mut hash = sha1_hex_upper(password);
        let result = match &self.source {
            BreachedSource::RangeDirectory(dir) => lookup_range(dir, &hash),
            BreachedSource::SortedFile(file) => lookup_sorted(file, &hash),
        };
        hash.zeroize();
        result
    }
}

/// Uppercase hex SHA-1 as 40 bytes (the dataset's spelling).
pub fn sha1_hex_upper(data: &[u8]) -> [u8; 40] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 40];
    for (i, b) in digest.as_ref().iter().enumerate() {
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
    out
}

fn lookup_range(dir: &Path, hash: &[u8; 40]) -> Result<u64, BreachedError> {
    // The prefix is our own hex output, so it is always valid UTF-8.
    let prefix = std::str::from_utf8(&hash[..5]).unwrap_or("00000");
    let file = [prefix.to_string(), format!("{prefix}.txt")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file());
    let Some(path) = file else {
        return Ok(0);
    };
    let text = std::fs::read(path)?;
    for line in text.split(|&b| b == b'\n') {
        if let Some(count) = match_line(line, &hash[5..]) {
            return Ok(count);
        }
    }
    Ok(0)
}

/// `Some(count)` when `line` is `<suffix>:<count>` for this suffix.
fn match_line(line: &[u8], suffix: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (h, rest) = (line.get(..suffix.len())?, line.get(suffix.len()..)?);
    if !h.eq_ignore_ascii_case(suffix) {
        return None;
    }
    let count = rest.strip_prefix(b":")?;
    std::str::from_utf8(count).ok()?.trim().parse().ok()
}

const LINE_MAX: usize = 96;

fn lookup_sorted(path: &Path, hash: &[u8; 40]) -> Result<u64, BreachedError> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let (mut lo, mut hi) = (0u64, len);
    let mut buf = [0u8; LINE_MAX * 2];
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let Some(FoundLine { start, line, end }) = line_at_or_after(&mut file, mid, &mut buf)?
        else {
            hi = mid;
            continue;
        };
        if start >= hi {
            hi = mid;
            continue;
        }
        let key = line.get(..40).unwrap_or(line);
        match compare_hex(key, hash) {
            std::cmp::Ordering::Equal => return Ok(match_line(line, hash).unwrap_or(0)),
            std::cmp::Ordering::Less => lo = end,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    Ok(0)
}

/// A line found in the sorted file: its offset, text and the offset just
/// past its newline.
struct FoundLine<'b> {
    start: u64,
    line: &'b [u8],
    end: u64,
}

/// The first full line starting at or after `pos`; `None` at end of file.
fn line_at_or_after<'b>(
    file: &mut File,
    pos: u64,
    buf: &'b mut [u8; LINE_MAX * 2],
) -> Result<Option<FoundLine<'b>>, BreachedError> {
    let read_from = pos.saturating_sub(1);
    file.seek(SeekFrom::Start(read_from))?;
    let n = read_full(file, buf)?;
    let data = &buf[..n];
    let skip = if pos == 0 {
        0
    } else {
        match data.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => return Ok(None),
        }
    };
    let rest = &data[skip..];
    if rest.is_empty() {
        return Ok(None);
    }
    let line_len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let start = read_from + skip as u64;
    let end = start + line_len as u64 + 1;
    Ok(Some(FoundLine {
        start,
        line: &rest[..line_len],
        end,
    }))
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut total = 0;
    while total < buf.len() {
        match file.read(&mut buf[total..])? {
            0 => break,
            n => total += n,
        }
    }
    Ok(total)
}

fn compare_hex(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.iter()
        .map(u8::to_ascii_uppercase)
        .cmp(b.iter().map(u8::to_ascii_uppercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_known_value() {
        // SHA-1("password") is the most famous breached hash.
        assert_eq!(
            &sha1_hex_upper(b"password"),
            b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8"
        );
    }

    #[test]
    fn line_matching_is_strict() {
        let suffix = b"1E4C9B93F3F0682250B6CF8331B7EE68FD8";
        assert_eq!(
            match_line(b"1e4c9b93f3f0682250b6cf8331b7ee68fd8:42\r", suffix),
            Some(42)
        );
        assert_eq!(
            match_line(b"1E4C9B93F3F0682250B6CF8331B7EE68FD9:42", suffix),
            None
        );
        assert_eq!(match_line(b"short", suffix), None);
    }
}
