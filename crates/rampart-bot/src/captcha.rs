//! CAPTCHA fallback for clients without JavaScript.
//!
//! Two kinds share one token format: an image of distorted characters
//! (rendered here from 5×7 glyph bitmaps with per-glyph offsets, shear,
//! noise pixels and strike lines, encoded as a grayscale PNG) and an
//! accessible text question (small arithmetic in words) for screen-reader
//! users. The token carries a nonce, expiry, client binding and a *keyed*
//! hash of the answer, so it is stateless, the answer cannot be recovered or
//! brute-forced offline, and the [`ReplayStore`] makes each one single-use.
//!
//! The text question keeps the page accessible; it is weaker than the image
//! against a determined solver, which is why CAPTCHAs are the fallback and
//! proof-of-work the default challenge.

use std::sync::Arc;

use crate::binding::Binding;
use crate::crypto::{random_bytes, unix_now, Key, TokenError};
use crate::keys::KeyHandle;
use crate::pow::Redemption;
use crate::replay::ReplayStore;

const PURPOSE: &str = "cap";
const PAYLOAD_LEN: usize = 16 + 8 + 16 + 16;
/// Characters used in image answers: no look-alikes (0/O, 1/I/L, 2/Z, 5/S, 8/B).
const ALPHABET: &[u8; 23] = b"ACDEFHJKMNPRTUVWXY34679";
const ANSWER_LEN: usize = 5;
const SCALE: usize = 4;
/// Image size in pixels.
pub const WIDTH: usize = 170;
pub const HEIGHT: usize = 60;

/// Which CAPTCHA to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaKind {
    Image,
    Text,
}

/// An issued CAPTCHA.
#[derive(Clone, PartialEq, Eq)]
pub struct Captcha {
    pub token: String,
    pub expires_at: u64,
    /// PNG bytes for [`CaptchaKind::Image`].
    pub png: Option<Vec<u8>>,
    /// The question for [`CaptchaKind::Text`].
    pub question: Option<String>,
}

impl std::fmt::Debug for Captcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captcha")
            .field("expires_at", &self.expires_at)
            .field("png_bytes", &self.png.as_ref().map(Vec::len))
            .field("question", &self.question)
            .finish_non_exhaustive()
    }
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptchaError {
    #[error("CAPTCHA token refused: {0}")]
    Token(#[from] TokenError),
    #[error("CAPTCHA answer is wrong")]
    WrongAnswer,
    #[error("CAPTCHA image could not be encoded")]
    Encode,
}

/// Issues and checks CAPTCHAs.
#[derive(Clone)]
pub struct CaptchaChallenger {
    keys: KeyHandle,
    replay: Arc<dyn ReplayStore>,
    ttl_secs: u64,
}

impl std::fmt::Debug for CaptchaChallenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptchaChallenger")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl CaptchaChallenger {
    /// `ttl_secs`: time to answer (e.g. 300). The answer hash is keyed
    /// with the key that signs the token, so CAPTCHAs survive a rotation
    /// like any other token.
    pub fn new(keys: impl Into<KeyHandle>, replay: Arc<dyn ReplayStore>, ttl_secs: u64) -> Self {
        CaptchaChallenger {
            keys: keys.into(),
            replay,
            ttl_secs,
        }
    }

    /// The used-token store this challenger redeems tokens in.
    pub fn replay_store(&self) -> &dyn ReplayStore {
        &*self.replay
    }

    /// Issues a CAPTCHA of `kind` for `binding`.
    pub fn issue(&self, kind: CaptchaKind, binding: Binding) -> Result<Captcha, CaptchaError> {
        let mut rng = Rng::seeded();
        let (answer, png, question) = match kind {
            CaptchaKind::Image => {
                let answer: String = (0..ANSWER_LEN)
                    .map(|_| ALPHABET[rng.below(ALPHABET.len() as u32) as usize] as char)
                    .collect();
                let png = render_png(answer.as_bytes(), &mut rng)?;
                (answer, Some(png), None)
            }
            CaptchaKind::Text => {
                let (q, a) = arithmetic_question(&mut rng);
                (a, None, Some(q))
            }
        };
        Ok(Captcha {
            png,
            question,
            ..self.seal_answer(&answer, binding)
        })
    }

    /// The token for `answer` (answer kept only as a keyed hash).
    fn seal_answer(&self, answer: &str, binding: Binding) -> Captcha {
        let nonce = random_bytes::<16>();
        let expires_at = unix_now() + self.ttl_secs;
        let ring = self.keys.load();
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..16].copy_from_slice(&nonce);
        payload[16..24].copy_from_slice(&expires_at.to_be_bytes());
        payload[24..40].copy_from_slice(&binding.0);
        payload[40..].copy_from_slice(&answer_tag(ring.current(), &nonce, answer));
        Captcha {
            token: ring.seal(PURPOSE, &payload),
            expires_at,
            png: None,
            question: None,
        }
    }

    /// Checks an answer (case-insensitive, spaces ignored); on success the
    /// CAPTCHA is used up (awaits the replay store; a store failure
    /// refuses the answer). A wrong answer does not use it up.
    pub async fn verify(
        &self,
        token: &str,
        answer: &str,
        binding: Binding,
    ) -> Result<(), CaptchaError> {
        let now = unix_now();
        let redemption = self.check_token(token, binding, now)?;
        self.check_answer(token, answer)?;
        Ok(redemption.redeem(&*self.replay, now).await?)
    }

    /// Signature, expiry and binding of a CAPTCHA token (not the answer):
    /// what can be checked, and the token used up, before the form body
    /// with the answer has arrived.
    pub fn check_token(
        &self,
        token: &str,
        binding: Binding,
        now: u64,
    ) -> Result<Redemption, CaptchaError> {
        let payload = self.keys.load().open(PURPOSE, token)?;
        let payload: [u8; PAYLOAD_LEN] = payload.try_into().map_err(|_| TokenError::Malformed)?;
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&payload[16..24]);
        let expires_at = u64::from_be_bytes(exp);
        if now >= expires_at {
            return Err(TokenError::Expired.into());
        }
        if payload[24..40] != binding.0 {
            return Err(TokenError::WrongClient.into());
        }
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&payload[..16]);
        Ok(Redemption { nonce, expires_at })
    }

    /// Whether `answer` is the token's answer (constant time). Does not
    /// check expiry or binding: see [`CaptchaChallenger::check_token`].
    pub fn check_answer(&self, token: &str, answer: &str) -> Result<(), CaptchaError> {
        let ring = self.keys.load();
        let (payload, key) = ring.open_keyed(PURPOSE, token)?;
        if payload.len() != PAYLOAD_LEN {
            return Err(TokenError::Malformed.into());
        }
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&payload[..16]);
        let tag = answer_tag(key, &nonce, &normalise(answer));
        if !constant_time_eq(&tag, &payload[40..]) {
            return Err(CaptchaError::WrongAnswer);
        }
        Ok(())
    }
}

/// Keyed hash of a nonce and an answer, with the token's signing key.
fn answer_tag(key: &Key, nonce: &[u8; 16], answer: &str) -> [u8; 16] {
    let mut msg = [0u8; 16 + 32];
    msg[..16].copy_from_slice(nonce);
    let a = answer.as_bytes();
    let n = a.len().min(32);
    msg[16..16 + n].copy_from_slice(&a[..n]);
    let full = key.keyed_hash("captcha-answer", &msg[..16 + n]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

fn normalise(answer: &str) -> String {
    answer
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(32)
        .collect::<String>()
        .to_ascii_uppercase()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const NUMBER_WORDS: [&str; 13] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];

fn arithmetic_question(rng: &mut Rng) -> (String, String) {
    let a = 2 + rng.below(11) as usize;
    let b = 1 + rng.below(a as u32 - 1) as usize;
    if rng.below(2) == 0 {
        (
            format!(
                "What is {} plus {}? Answer with digits.",
                NUMBER_WORDS[a], NUMBER_WORDS[b]
            ),
            (a + b).to_string(),
        )
    } else {
        (
            format!(
                "What is {} minus {}? Answer with digits.",
                NUMBER_WORDS[a], NUMBER_WORDS[b]
            ),
            (a - b).to_string(),
        )
    }
}

/// xorshift64*, seeded from the OS: only shapes noise and offsets, never
/// secrets (answers use it too, but its seed is 64 fresh random bits per
/// CAPTCHA and nothing of its state is revealed except the image itself).
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        Rng(u64::from_le_bytes(random_bytes::<8>()) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }
}

/// 5×7 bitmaps, one byte per row, bit 4 is the leftmost pixel.
fn glyph(c: u8) -> [u8; 7] {
    match c {
        b'A' => [14, 17, 17, 31, 17, 17, 17],
        b'C' => [14, 17, 16, 16, 16, 17, 14],
        b'D' => [30, 17, 17, 17, 17, 17, 30],
        b'E' => [31, 16, 16, 30, 16, 16, 31],
        b'F' => [31, 16, 16, 30, 16, 16, 16],
        b'H' => [17, 17, 17, 31, 17, 17, 17],
        b'J' => [7, 2, 2, 2, 2, 18, 12],
        b'K' => [17, 18, 20, 24, 20, 18, 17],
        b'M' => [17, 27, 21, 21, 17, 17, 17],
        b'N' => [17, 25, 21, 19, 17, 17, 17],
        b'P' => [30, 17, 17, 30, 16, 16, 16],
        b'R' => [30, 17, 17, 30, 20, 18, 17],
        b'T' => [31, 4, 4, 4, 4, 4, 4],
        b'U' => [17, 17, 17, 17, 17, 17, 14],
        b'V' => [17, 17, 17, 17, 17, 10, 4],
        b'W' => [17, 17, 17, 21, 21, 21, 10],
        b'X' => [17, 17, 10, 4, 10, 17, 17],
        b'Y' => [17, 17, 10, 4, 4, 4, 4],
        b'3' => [30, 1, 1, 14, 1, 1, 30],
        b'4' => [2, 6, 10, 18, 31, 2, 2],
        b'6' => [14, 16, 16, 30, 17, 17, 14],
        b'7' => [31, 1, 2, 4, 8, 8, 8],
        b'9' => [14, 17, 17, 15, 1, 1, 14],
        _ => [0; 7],
    }
}

/// Renders the answer into a grayscale bitmap (0 = ink, 255 = paper).
fn render(answer: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut img = vec![235u8; WIDTH * HEIGHT];
    for (i, &c) in answer.iter().enumerate() {
        let x0 = 8 + i * 31 + rng.below(6) as usize;
        let y0 = 6 + rng.below(18) as usize;
        // Shear: each row shifts by up to ±1 px per two rows, per glyph.
        let shear = rng.below(3) as isize - 1;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                let dx = shear * (row as isize - 3) * SCALE as isize / 2;
                for sy in 0..SCALE {
                    for sx in 0..SCALE {
                        let x = (x0 + col * SCALE + sx) as isize + dx;
                        let y = y0 + row * SCALE + sy;
                        put(&mut img, x, y as isize, 30 + rng.below(60) as u8);
                    }
                }
            }
        }
    }
    add_noise(&mut img, rng);
    img
}

fn put(img: &mut [u8], x: isize, y: isize, v: u8) {
    if (0..WIDTH as isize).contains(&x) && (0..HEIGHT as isize).contains(&y) {
        img[y as usize * WIDTH + x as usize] = v;
    }
}

fn add_noise(img: &mut [u8], rng: &mut Rng) {
    for _ in 0..(WIDTH * HEIGHT / 9) {
        let i = rng.below(img.len() as u32) as usize;
        img[i] = rng.below(256) as u8;
    }
    for _ in 0..3 {
        let y0 = rng.below(HEIGHT as u32) as isize;
        let y1 = rng.below(HEIGHT as u32) as isize;
        for x in 0..WIDTH as isize {
            let y = y0 + (y1 - y0) * x / WIDTH as isize;
            put(img, x, y, 60);
        }
    }
}

fn render_png(answer: &[u8], rng: &mut Rng) -> Result<Vec<u8>, CaptchaError> {
    let pixels = render(answer, rng);
    let mut out = Vec::with_capacity(4096);
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH as u32, HEIGHT as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|_| CaptchaError::Encode)?;
        w.write_image_data(&pixels)
            .map_err(|_| CaptchaError::Encode)?;
        w.finish().map_err(|_| CaptchaError::Encode)?;
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::{Key, KeyRing};
    use crate::replay::MemoryReplayStore;
    use futures_util::FutureExt;

    fn challenger() -> CaptchaChallenger {
        let keys = Arc::new(KeyRing::new(Key::new("k1", &[3u8; 32]).unwrap()));
        CaptchaChallenger::new(keys, Arc::new(MemoryReplayStore::new(100)), 300)
    }

    fn b() -> Binding {
        Binding::new("192.0.2.44".parse().unwrap(), b"Mozilla/5.0")
    }

    #[test]
    fn every_answer_character_has_a_glyph() {
        for &c in ALPHABET {
            assert!(glyph(c).iter().any(|&r| r != 0), "{}", c as char);
        }
    }

    #[test]
    fn image_is_a_png_of_the_right_size() {
        let cap = challenger().issue(CaptchaKind::Image, b()).unwrap();
        let png_bytes = cap.png.unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let reader = decoder.read_info().unwrap();
        assert_eq!(reader.info().width as usize, WIDTH);
        assert_eq!(reader.info().height as usize, HEIGHT);
    }

    #[test]
    fn rendered_answer_leaves_ink_where_glyphs_are() {
        let mut rng = Rng(42);
        let ink = |img: &[u8]| img.iter().filter(|&&p| p < 100).count();
        let with_text = render(b"AMW49", &mut rng);
        let mut rng = Rng(42);
        let blank = render(b"     ", &mut rng);
        assert!(ink(&with_text) > ink(&blank) + 300);
    }

    #[test]
    fn text_question_answer_and_single_use() {
        let c = challenger();
        let cap = c.issue(CaptchaKind::Text, b()).unwrap();
        let q = cap.question.clone().unwrap();
        let words: Vec<&str> = q
            .trim_end_matches("? Answer with digits.")
            .split(' ')
            .collect();
        let num = |w: &str| NUMBER_WORDS.iter().position(|n| *n == w).unwrap();
        let (a, op, bb) = (num(words[2]), words[3], num(words[4]));
        let answer = if op == "plus" { a + bb } else { a - bb };
        assert_eq!(
            c.verify(&cap.token, "99", b()).now_or_never().unwrap(),
            Err(CaptchaError::WrongAnswer)
        );
        assert_eq!(
            c.verify(&cap.token, &format!(" {answer} "), b())
                .now_or_never()
                .unwrap(),
            Ok(())
        );
        assert_eq!(
            c.verify(&cap.token, &answer.to_string(), b())
                .now_or_never()
                .unwrap(),
            Err(CaptchaError::Token(TokenError::Replayed))
        );
    }

    #[test]
    fn image_answers_are_case_insensitive() {
        let c = challenger();
        let cap = c.seal_answer("AMW49", b());
        assert_eq!(
            c.verify(&cap.token, "amw 49", b()).now_or_never().unwrap(),
            Ok(())
        );
        let cap = c.seal_answer("AMW49", b());
        assert_eq!(
            c.verify(&cap.token, "AMW48", b()).now_or_never().unwrap(),
            Err(CaptchaError::WrongAnswer)
        );
    }

    #[test]
    fn debug_does_not_leak_token() {
        let cap = challenger().issue(CaptchaKind::Image, b()).unwrap();
        assert!(!format!("{cap:?}").contains(&cap.token));
    }
}
