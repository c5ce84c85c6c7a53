//! JA4 TLS client fingerprints (FoxIO JA4 specification).
//!
//! `t13d1516h2_8daaf6152771_d8a2da3f94cd` reads as: transport `t` (TCP) or
//! `q` (QUIC); TLS version (highest in `supported_versions`, else the
//! ClientHello version); `d` when SNI is present, `i` when not; cipher and
//! extension counts (two digits, GREASE ignored, capped at 99); first and
//! last characters of the first ALPN value (`00` without ALPN). Then the
//! first 12 hex digits of SHA-256 over the sorted cipher list, and of
//! SHA-256 over the sorted extension list (without SNI and ALPN) followed by
//! `_` and the signature algorithms in their original order.
//!
//! The parser works on attacker bytes: every length is checked, nothing is
//! allocated beyond the lists it returns, and truncated input is reported as
//! [`Ja4Error::Incomplete`] so the caller can peek more bytes and retry.

use crate::crypto::{hex, sha256};

/// How the ClientHello arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS over TCP: the input starts with a TLS record header.
    Tcp,
    /// QUIC: the input is the bare handshake message from CRYPTO frames.
    Quic,
}

/// Why no fingerprint could be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ja4Error {
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("not a ClientHello")]
    NotClientHello,
    #[error("ClientHello is incomplete; more bytes are needed")]
    Incomplete,
    #[error("ClientHello is malformed")]
    Malformed,
}

const EXT_SNI: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
const EXT_SIG_ALGS: u16 = 0x000d;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
/// Largest ClientHello we reassemble (real ones are under 2 KiB; post-quantum
/// key shares push them to ~1.8 KiB).
const MAX_HELLO: usize = 16 * 1024;

/// The JA4 fingerprint of a raw ClientHello.
pub fn fingerprint(client_hello: &[u8], transport: Transport) -> Result<String, Ja4Error> {
    let mut buf = Vec::new();
    let msg = match transport {
        Transport::Tcp => reassemble(client_hello, &mut buf)?,
        Transport::Quic => client_hello,
    };
    let hello = parse_hello(msg)?;
    Ok(hello.ja4(transport))
}

/// Concatenates handshake fragments from consecutive TLS records until the
/// whole first handshake message is present.
fn reassemble<'a>(mut input: &'a [u8], buf: &'a mut Vec<u8>) -> Result<&'a [u8], Ja4Error> {
    loop {
        let header = input.get(..5).ok_or(Ja4Error::Incomplete)?;
        if header[0] != 0x16 {
            return Err(Ja4Error::NotHandshake);
        }
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        let fragment = input.get(5..5 + len).ok_or(Ja4Error::Incomplete)?;
        if buf.len() + fragment.len() > MAX_HELLO {
            return Err(Ja4Error::Malformed);
        }
        buf.extend_from_slice(fragment);
        input = &input[5 + len..];
        if buf.len() >= 4 {
            let need = 4 + u32::from_be_bytes([0, buf[1], buf[2], buf[3]]) as usize;
            if buf.len() >= need {
                return Ok(&buf[..need]);
            }
        }
    }
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Ja4Error> {
        if self.0.len() < n {
            return Err(Ja4Error::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Ja4Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Ja4Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Result<&'a [u8], Ja4Error> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], Ja4Error> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Default)]
struct Hello<'a> {
    legacy_version: u16,
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    sni: bool,
    first_alpn: Option<&'a [u8]>,
    sig_algs: Vec<u16>,
    max_supported_version: Option<u16>,
}

fn parse_hello(msg: &[u8]) -> Result<Hello<'_>, Ja4Error> {
    let mut r = Reader(msg);
    if r.u8().map_err(|_| Ja4Error::Incomplete)? != 0x01 {
        return Err(Ja4Error::NotClientHello);
    }
    let len_bytes = r.take(3).map_err(|_| Ja4Error::Incomplete)?;
    let len = u32::from_be_bytes([0, len_bytes[0], len_bytes[1], len_bytes[2]]) as usize;
    let body = r.take(len).map_err(|_| Ja4Error::Incomplete)?;
    let mut r = Reader(body);
    let mut hello = Hello {
        legacy_version: r.u16()?,
        ..Hello::default()
    };
    r.take(32)?; // random
    r.vec8()?; // legacy session id
    let mut ciphers = Reader(r.vec16()?);
    while !ciphers.is_empty() {
        let c = ciphers.u16()?;
        if !is_grease(c) {
            hello.ciphers.push(c);
        }
    }
    r.vec8()?; // compression methods
    if !r.is_empty() {
        parse_extensions(r.vec16()?, &mut hello)?;
    }
    Ok(hello)
}

fn parse_extensions<'a>(data: &'a [u8], hello: &mut Hello<'a>) -> Result<(), Ja4Error> {
    let mut r = Reader(data);
    while !r.is_empty() {
        let ty = r.u16()?;
        let body = r.vec16()?;
        if is_grease(ty) {
            continue;
        }
        hello.extensions.push(ty);
        match ty {
            EXT_SNI => hello.sni = true,
            EXT_ALPN => hello.first_alpn = first_alpn(body)?,
            EXT_SIG_ALGS => hello.sig_algs = u16_list(Reader(body).vec16()?)?,
            EXT_SUPPORTED_VERSIONS => {
                let versions = u16_list(Reader(body).vec8()?)?;
                hello.max_supported_version = versions.into_iter().max();
            }
            _ => {}
        }
    }
    Ok(())
}

fn first_alpn(body: &[u8]) -> Result<Option<&[u8]>, Ja4Error> {
    let mut list = Reader(Reader(body).vec16()?);
    if list.is_empty() {
        return Ok(None);
    }
    Ok(Some(list.vec8()?))
}

/// A list of u16 values, GREASE removed.
fn u16_list(data: &[u8]) -> Result<Vec<u16>, Ja4Error> {
    let mut r = Reader(data);
    let mut out = Vec::with_capacity(data.len() / 2);
    while !r.is_empty() {
        let v = r.u16()?;
        if !is_grease(v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa.
fn is_grease(v: u16) -> bool {
    let [hi, lo] = v.to_be_bytes();
    hi == lo && hi & 0x0f == 0x0a
}

impl Hello<'_> {
    fn ja4(&self, transport: Transport) -> String {
        let proto = match transport {
            Transport::Tcp => 't',
            Transport::Quic => 'q',
        };
        let version = version_code(self.max_supported_version.unwrap_or(self.legacy_version));
        let sni = if self.sni { 'd' } else { 'i' };
        let (a1, a2) = alpn_chars(self.first_alpn);
        let cipher_hash = hash_list(&sorted(&self.ciphers), None);
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|&e| e != EXT_SNI && e != EXT_ALPN)
            .collect();
        let ext_hash = hash_list(&sorted(&exts), Some(&self.sig_algs));
        format!(
            "{proto}{version}{sni}{:02}{:02}{a1}{a2}_{cipher_hash}_{ext_hash}",
            self.ciphers.len().min(99),
            self.extensions.len().min(99),
        )
    }
}

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 | 0x0200 => "s2",
        _ => "00",
    }
}

fn alpn_chars(alpn: Option<&[u8]>) -> (char, char) {
    let Some(value) = alpn.filter(|v| !v.is_empty()) else {
        return ('0', '0');
    };
    let first = value[0];
    let last = value[value.len() - 1];
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        (first as char, last as char)
    } else {
        let hi = hex(&[first]);
        let lo = hex(&[last]);
        (hi.as_bytes()[0] as char, lo.as_bytes()[1] as char)
    }
}

fn sorted(list: &[u16]) -> Vec<u16> {
    let mut v = list.to_vec();
    v.sort_unstable();
    v
}

/// The JA4 "raw" text of a list (`002f,0035,...`), optionally followed by
/// `_` and a second list, hashed and truncated to 12 hex digits.
fn hash_list(list: &[u16], second: Option<&[u16]>) -> String {
    if list.is_empty() {
        return "000000000000".to_string();
    }
    let mut text = join_hex(list);
    if let Some(s) = second.filter(|s| !s.is_empty()) {
        text.push('_');
        text.push_str(&join_hex(s));
    }
    let mut h = hex(&sha256(text.as_bytes()));
    h.truncate(12);
    h
}

fn join_hex(list: &[u16]) -> String {
    let mut s = String::with_capacity(list.len() * 5);
    for (i, v) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&hex(&v.to_be_bytes()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a ClientHello record from parts, for parser tests.
    pub(crate) fn build_hello(
        ciphers: &[u16],
        extensions: &[(u16, Vec<u8>)],
        record_split: Option<usize>,
    ) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0);
        body.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
        for c in ciphers {
            body.extend_from_slice(&c.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        let mut ext = Vec::new();
        for (ty, data) in extensions {
            ext.extend_from_slice(&ty.to_be_bytes());
            ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
            ext.extend_from_slice(data);
        }
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut out = Vec::new();
        let split = record_split.unwrap_or(hs.len()).min(hs.len());
        for chunk in [&hs[..split], &hs[split..]] {
            if chunk.is_empty() {
                continue;
            }
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    fn alpn_ext(protos: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for p in protos {
            list.push(p.len() as u8);
            list.extend_from_slice(p);
        }
        let mut out = (list.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&list);
        out
    }

    #[test]
    fn published_example_hashes() {
        // From the JA4 documentation's raw form of a Chrome fingerprint.
        let ciphers = [
            0x002f, 0x0035, 0x009c, 0x009d, 0x1301, 0x1302, 0x1303, 0xc013, 0xc014, 0xc02b, 0xc02c,
            0xc02f, 0xc030, 0xcca8, 0xcca9,
        ];
        assert_eq!(hash_list(&ciphers, None), "8daaf6152771");
        let exts = [
            0x0005, 0x000a, 0x000b, 0x000d, 0x0012, 0x0017, 0x001b, 0x0023, 0x002b, 0x002d, 0x0033,
            0x44cd, 0xfe0d, 0xff01,
        ];
        let sigs = [
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ];
        assert_eq!(hash_list(&exts, Some(&sigs)), "d8a2da3f94cd");
    }

    #[test]
    fn header_fields_and_grease() {
        let sv = vec![4, 0x1a, 0x1a, 0x03, 0x04];
        let sig = vec![0, 4, 0x04, 0x03, 0x08, 0x04];
        let rec = build_hello(
            &[0x0a0a, 0x1301, 0x1302],
            &[
                (0x2a2a, vec![]),
                (EXT_SNI, vec![0, 0]),
                (EXT_ALPN, alpn_ext(&[b"h2", b"http/1.1"])),
                (EXT_SUPPORTED_VERSIONS, sv),
                (EXT_SIG_ALGS, sig),
            ],
            None,
        );
        let fp = fingerprint(&rec, Transport::Tcp).unwrap();
        assert!(fp.starts_with("t13d0204h2_"), "{fp}");
        let expected_c = hash_list(&[0x000d, 0x002b], Some(&[0x0403, 0x0804]));
        assert!(fp.ends_with(&expected_c), "{fp}");
    }

    #[test]
    fn no_sni_no_alpn_tls12() {
        let rec = build_hello(&[0xc02f], &[], None);
        assert_eq!(
            fingerprint(&rec, Transport::Tcp).unwrap(),
            format!("t12i010000_{}_000000000000", hash_list(&[0xc02f], None))
        );
    }

    #[test]
    fn non_alphanumeric_alpn_uses_hex() {
        assert_eq!(alpn_chars(Some(&[0xab, b'x', 0xcd])), ('a', 'd'));
        assert_eq!(alpn_chars(Some(b"http/1.1")), ('h', '1'));
        assert_eq!(alpn_chars(Some(b"")), ('0', '0'));
    }

    #[test]
    fn split_records_are_reassembled() {
        let one = build_hello(&[0x1301], &[(EXT_SNI, vec![0, 0])], None);
        let two = build_hello(&[0x1301], &[(EXT_SNI, vec![0, 0])], Some(20));
        assert_ne!(one, two);
        assert_eq!(
            fingerprint(&one, Transport::Tcp),
            fingerprint(&two, Transport::Tcp)
        );
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let rec = build_hello(&[0x1301], &[(EXT_SNI, vec![0, 0])], None);
        for cut in 0..rec.len() {
            assert!(
                fingerprint(&rec[..cut], Transport::Tcp).is_err(),
                "cut {cut}"
            );
        }
        assert_eq!(
            fingerprint(b"GET / HTTP/1.1\r\n", Transport::Tcp),
            Err(Ja4Error::NotHandshake)
        );
        let mut wrong = rec.clone();
        wrong[5] = 2;
        assert_eq!(
            fingerprint(&wrong, Transport::Tcp),
            Err(Ja4Error::NotClientHello)
        );
        for seed in 0..200u32 {
            let mut fuzz = rec.clone();
            let i = (seed as usize * 7919) % fuzz.len();
            fuzz[i] ^= (seed as u8).wrapping_mul(31) | 1;
            let _ = fingerprint(&fuzz, Transport::Tcp);
        }
    }
}
