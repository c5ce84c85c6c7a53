//! Proof-of-work puzzles: issue, solve, verify.
//!
//! A puzzle is a signed token carrying a random nonce, the difficulty (in
//! leading zero bits), an expiry and the client binding. The client finds a
//! counter such that `SHA-256(token ":" counter)` starts with `difficulty`
//! zero bits (counter in decimal ASCII). The server keeps nothing at issue
//! time; at verify time it checks the signature, expiry, binding and the
//! work, then records the nonce in a [`ReplayStore`] so a solution is
//! accepted once.

use std::sync::Arc;

use crate::binding::Binding;
use crate::crypto::{random_bytes, sha256, unix_now, TokenError};
use crate::keys::KeyHandle;
use crate::replay::ReplayStore;

const PURPOSE: &str = "pow";
const PAYLOAD_LEN: usize = 16 + 1 + 8 + 16;
/// Difficulty above this is refused at issue (a browser would need hours).
pub const MAX_DIFFICULTY: u8 = 32;

/// An issued puzzle, ready to send to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Puzzle {
    /// The signed token the client hashes and sends back.
    pub token: String,
    pub difficulty: u8,
    pub expires_at: u64,
}

/// Why a solution was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    #[error("puzzle token refused: {0}")]
    Token(#[from] TokenError),
    #[error("solution does not meet the difficulty")]
    InsufficientWork,
    #[error("solution is not a decimal counter")]
    BadSolution,
}

/// Issues and verifies puzzles.
#[derive(Clone)]
pub struct PowChallenger {
    keys: KeyHandle,
    replay: Arc<dyn ReplayStore>,
    ttl_secs: u64,
}

/// A solution that passed every check but the single-use one: the nonce to
/// consume in the [`ReplayStore`] and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redemption {
    pub nonce: [u8; 16],
    pub expires_at: u64,
}

impl Redemption {
    /// Uses the token up: `Ok` the first time, `Replayed` after, the store
    /// error (fail closed) when the store cannot answer.
    pub async fn redeem(self, store: &dyn ReplayStore, now: u64) -> Result<(), TokenError> {
        match store.consume(self.nonce, self.expires_at, now).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(TokenError::Replayed),
            Err(e) => {
                crate::shared::record_store_error("replay");
                tracing::warn!(error = %e, "replay store failed; challenge must be solved again");
                Err(TokenError::StoreUnavailable)
            }
        }
    }
}

impl std::fmt::Debug for PowChallenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowChallenger")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl PowChallenger {
    /// `ttl_secs`: how long a puzzle may be worked on (e.g. 120). `keys`:
    /// an `Arc<KeyRing>` (fixed keys) or a rotating [`KeyHandle`].
    pub fn new(keys: impl Into<KeyHandle>, replay: Arc<dyn ReplayStore>, ttl_secs: u64) -> Self {
        PowChallenger {
            keys: keys.into(),
            replay,
            ttl_secs,
        }
    }

    /// The used-token store this challenger redeems solutions in.
    pub fn replay_store(&self) -> &dyn ReplayStore {
        &*self.replay
    }

    /// A new puzzle for the client with `binding`.
    pub fn issue(&self, binding: Binding, difficulty: u8) -> Puzzle {
        self.issue_at(binding, difficulty, unix_now())
    }

    pub fn issue_at(&self, binding: Binding, difficulty: u8, now: u64) -> Puzzle {
        let difficulty = difficulty.min(MAX_DIFFICULTY);
        let expires_at = now + self.ttl_secs;
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..16].copy_from_slice(&random_bytes::<16>());
        payload[16] = difficulty;
        payload[17..25].copy_from_slice(&expires_at.to_be_bytes());
        payload[25..].copy_from_slice(&binding.0);
        Puzzle {
            token: self.keys.load().seal(PURPOSE, &payload),
            difficulty,
            expires_at,
        }
    }

    /// Checks a solution for `binding`; on success the puzzle is used up
    /// (awaits the replay store; a store failure refuses the solution).
    pub async fn verify(
        &self,
        token: &str,
        solution: &str,
        binding: Binding,
    ) -> Result<(), PowError> {
        self.verify_at(token, solution, binding, unix_now()).await
    }

    pub async fn verify_at(
        &self,
        token: &str,
        solution: &str,
        binding: Binding,
        now: u64,
    ) -> Result<(), PowError> {
        let redemption = self.check_at(token, solution, binding, now)?;
        Ok(redemption.redeem(&*self.replay, now).await?)
    }

    /// Every check except single use (signature, expiry, binding, work):
    /// synchronous, no store.
    pub fn check_at(
        &self,
        token: &str,
        solution: &str,
        binding: Binding,
        now: u64,
    ) -> Result<Redemption, PowError> {
        let payload = self.keys.load().open(PURPOSE, token)?;
        let payload: [u8; PAYLOAD_LEN] = payload.try_into().map_err(|_| TokenError::Malformed)?;
        let difficulty = payload[16];
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&payload[17..25]);
        let expires_at = u64::from_be_bytes(exp);
        if now >= expires_at {
            return Err(TokenError::Expired.into());
        }
        if payload[25..] != binding.0 {
            return Err(TokenError::WrongClient.into());
        }
        let counter: u64 = parse_counter(solution)?;
        if leading_zero_bits(&work_hash(token, counter)) < difficulty as u32 {
            return Err(PowError::InsufficientWork);
        }
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&payload[..16]);
        Ok(Redemption { nonce, expires_at })
    }
}

fn parse_counter(s: &str) -> Result<u64, PowError> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PowError::BadSolution);
    }
    s.parse().map_err(|_| PowError::BadSolution)
}

/// `SHA-256(token ":" counter)`, the hash the client must make small.
pub fn work_hash(token: &str, counter: u64) -> [u8; 32] {
    let mut buf = Vec::with_capacity(token.len() + 21);
    buf.extend_from_slice(token.as_bytes());
    buf.push(b':');
    buf.extend_from_slice(counter.to_string().as_bytes());
    sha256(&buf)
}

/// Number of leading zero bits of a hash.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for &b in hash {
        if b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// Finds a counter solving `token` at `difficulty` (for tests and SDKs).
/// Returns the counter as the decimal string to send back.
pub fn solve(token: &str, difficulty: u8) -> String {
    let mut ctx_prefix = ring::digest::Context::new(&ring::digest::SHA256);
    ctx_prefix.update(token.as_bytes());
    ctx_prefix.update(b":");
    let mut digits = itoa_buf::new();
    for counter in 0u64.. {
        let mut ctx = ctx_prefix.clone();
        ctx.update(digits.format(counter));
        if leading_zero_bits(ctx.finish().as_ref()) >= difficulty as u32 {
            return counter.to_string();
        }
    }
    unreachable!("u64 counter space exhausted")
}

/// Tiny decimal formatter reused across the solve loop (no allocation per try).
mod itoa_buf {
    pub struct Buf([u8; 20]);
    pub fn new() -> Buf {
        Buf([0; 20])
    }
    impl Buf {
        pub fn format(&mut self, mut n: u64) -> &[u8] {
            let mut i = self.0.len();
            loop {
                i -= 1;
                self.0[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    return &self.0[i..];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Key, KeyRing};
    use crate::replay::MemoryReplayStore;
    use futures_util::FutureExt;

    fn challenger() -> PowChallenger {
        let keys = Arc::new(KeyRing::new(Key::new("k1", &[9u8; 32]).unwrap()));
        PowChallenger::new(keys, Arc::new(MemoryReplayStore::new(1000)), 120)
    }

    fn binding() -> Binding {
        Binding::new("203.0.113.5".parse().unwrap(), b"sdk/1.0")
    }

    #[test]
    fn solved_puzzle_verifies_once() {
        let c = challenger();
        let p = c.issue(binding(), 8);
        let s = solve(&p.token, p.difficulty);
        assert!(leading_zero_bits(&work_hash(&p.token, s.parse().unwrap())) >= 8);
        assert_eq!(
            c.verify(&p.token, &s, binding()).now_or_never().unwrap(),
            Ok(())
        );
        assert_eq!(
            c.verify(&p.token, &s, binding()).now_or_never().unwrap(),
            Err(PowError::Token(TokenError::Replayed))
        );
    }

    #[test]
    fn wrong_work_client_or_time_is_refused() {
        let c = challenger();
        let p = c.issue_at(binding(), 12, 1000);
        let s = solve(&p.token, 12);
        let bad = (0u64..)
            .find(|n| leading_zero_bits(&work_hash(&p.token, *n)) < 12)
            .unwrap();
        assert_eq!(
            c.verify_at(&p.token, &bad.to_string(), binding(), 1001)
                .now_or_never()
                .unwrap(),
            Err(PowError::InsufficientWork)
        );
        let other = Binding::new("198.51.100.5".parse().unwrap(), b"sdk/1.0");
        assert_eq!(
            c.verify_at(&p.token, &s, other, 1001)
                .now_or_never()
                .unwrap(),
            Err(PowError::Token(TokenError::WrongClient))
        );
        assert_eq!(
            c.verify_at(&p.token, &s, binding(), 1120)
                .now_or_never()
                .unwrap(),
            Err(PowError::Token(TokenError::Expired))
        );
        assert_eq!(
            c.verify_at(&p.token, "12abc", binding(), 1001)
                .now_or_never()
                .unwrap(),
            Err(PowError::BadSolution)
        );
        assert_eq!(
            c.verify_at(&p.token, &s, binding(), 1001)
                .now_or_never()
                .unwrap(),
            Ok(())
        );
    }

    #[test]
    fn leading_zeros_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x0f]), 20);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }
}
