//! Signing keys that every gateway of a fleet shares and that rotate.
//!
//! Tokens (puzzles, CAPTCHAs, clearances) are signed with a [`KeyRing`]. A
//! per-process random key breaks as soon as a second replica serves the
//! client, so the ring is built from *epoch keys*: time is cut into epochs
//! of `period_secs`, each epoch has its own secret, the current epoch's key
//! signs, and the previous epoch's key still verifies (tokens issued just
//! before a rotation stay valid until they expire). The next epoch's key is
//! also accepted when known, so a node whose clock runs a little behind
//! still verifies tokens a faster node already signs with the new epoch.
//!
//! Where the epoch secrets come from:
//! * [`EmbeddedKeys`]: derived from a server secret given by the operator
//!   (HMAC-SHA256 with a label and the epoch number), so restarts and every
//!   node configured with the same secret agree without any store;
//! * [`crate::shared::RedisKeys`]: random secrets created in Redis by the
//!   first node that needs an epoch and read by the others.
//!
//! Challengers hold a [`KeyHandle`], a cheap shared pointer that the
//! refresher swaps atomically when the epoch changes.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use ring::hmac;

use crate::crypto::{unix_now, Key, KeyError, KeyRing};

/// Seconds since the Unix epoch, injectable for tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(unix_now)
}

/// The key ring in use, swapped atomically on rotation. Cloning shares it.
#[derive(Clone)]
pub struct KeyHandle(Arc<ArcSwap<KeyRing>>);

impl KeyHandle {
    pub fn new(ring: KeyRing) -> Self {
        KeyHandle(Arc::new(ArcSwap::from_pointee(ring)))
    }

    /// The ring now in use (a cheap reference count, no lock).
    pub fn load(&self) -> Arc<KeyRing> {
        self.0.load_full()
    }

    /// Replaces the ring for every holder of this handle.
    pub fn store(&self, ring: KeyRing) {
        self.0.store(Arc::new(ring));
    }
}

impl std::fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyHandle")
            .field(&self.load().current().id())
            .finish()
    }
}

impl From<KeyRing> for KeyHandle {
    fn from(ring: KeyRing) -> Self {
        KeyHandle::new(ring)
    }
}

impl From<Arc<KeyRing>> for KeyHandle {
    fn from(ring: Arc<KeyRing>) -> Self {
        KeyHandle(Arc::new(ArcSwap::new(ring)))
    }
}

/// Rotation settings shared by the key sources.
#[derive(Clone)]
pub struct RotationOptions {
    /// Length of an epoch; the signing key changes every period (default
    /// 24 h). Keep it at least as long as the clearance lifetime: a token
    /// verifies for at most one period after its epoch ends.
    pub period_secs: u64,
    /// How often the background refresher checks for a new epoch
    /// (default 60 s). A node notices a rotation at most this late; the
    /// next epoch's key is fetched ahead of time so this is harmless.
    pub refresh_secs: u64,
    /// Time source (default the system clock); tests inject their own.
    pub clock: Clock,
}

impl Default for RotationOptions {
    fn default() -> Self {
        RotationOptions {
            period_secs: 24 * 3600,
            refresh_secs: 60,
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for RotationOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationOptions")
            .field("period_secs", &self.period_secs)
            .field("refresh_secs", &self.refresh_secs)
            .finish_non_exhaustive()
    }
}

impl RotationOptions {
    /// The epoch containing `now`.
    pub fn epoch_at(&self, now: u64) -> u64 {
        now / self.period_secs.max(1)
    }

    pub(crate) fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_secs.max(1))
    }
}

/// Key id of an epoch's key, as it appears in tokens.
pub fn epoch_key_id(epoch: u64) -> String {
    format!("e{epoch}")
}

/// A ring signing with `current`'s key and verifying with the previous
/// and (when known) next epoch's keys. `secret_of` yields an epoch's
/// secret when this node knows it.
pub(crate) fn epoch_ring(
    current: u64,
    mut secret_of: impl FnMut(u64) -> Option<[u8; 32]>,
) -> Result<KeyRing, KeyError> {
    let signing = secret_of(current).ok_or(KeyError::ShortSecret)?;
    let mut ring = KeyRing::new(Key::new(&epoch_key_id(current), &signing)?);
    for epoch in [current.checked_sub(1), current.checked_add(1)]
        .into_iter()
        .flatten()
    {
        if let Some(secret) = secret_of(epoch) {
            ring = ring.with_previous(Key::new(&epoch_key_id(epoch), &secret)?);
        }
    }
    Ok(ring)
}

/// Epoch keys derived from one server secret: no store needed, and every
/// node (and every restart) given the same secret signs alike.
pub struct EmbeddedKeys {
    master: hmac::Key,
    options: RotationOptions,
    handle: KeyHandle,
}

impl std::fmt::Debug for EmbeddedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKeys")
            .field("options", &self.options)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Domain-separation label of derived epoch keys.
const DERIVE_LABEL: &[u8] = b"rampart-bot epoch signing key v1";

impl EmbeddedKeys {
    /// `server_secret`: at least 32 random bytes, the same on every node.
    pub fn new(server_secret: &[u8], options: RotationOptions) -> Result<Self, KeyError> {
        if server_secret.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        let master = hmac::Key::new(hmac::HMAC_SHA256, server_secret);
        let epoch = options.epoch_at((options.clock)());
        let ring = epoch_ring(epoch, |e| Some(derive(&master, e)))?;
        Ok(EmbeddedKeys {
            master,
            options,
            handle: KeyHandle::new(ring),
        })
    }

    /// The handle to give to the challengers and clearances.
    pub fn handle(&self) -> KeyHandle {
        self.handle.clone()
    }

    /// Rebuilds the ring for the current time (a no-op within an epoch).
    pub fn refresh(&self) {
        let epoch = self.options.epoch_at((self.options.clock)());
        if self.handle.load().current().id() == epoch_key_id(epoch) {
            return;
        }
        match epoch_ring(epoch, |e| Some(derive(&self.master, e))) {
            Ok(ring) => self.handle.store(ring),
            Err(e) => tracing::error!(error = %e, "epoch key derivation failed"),
        }
    }

    /// Refreshes every `refresh_secs` until the task is aborted (needs a
    /// Tokio runtime). Abort the returned handle on shutdown.
    pub fn spawn_refresher(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.options.refresh_interval());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.refresh();
            }
        })
    }
}

/// HMAC(master, label ‖ 0 ‖ epoch): a 32-byte secret per epoch.
fn derive(master: &hmac::Key, epoch: u64) -> [u8; 32] {
    let mut ctx = hmac::Context::with_key(master);
    ctx.update(DERIVE_LABEL);
    ctx.update(&[0]);
    ctx.update(&epoch.to_be_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::TokenError;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn clock_at(t: Arc<AtomicU64>) -> Clock {
        Arc::new(move || t.load(Ordering::SeqCst))
    }

    fn options(t: &Arc<AtomicU64>) -> RotationOptions {
        RotationOptions {
            period_secs: 100,
            refresh_secs: 1,
            clock: clock_at(t.clone()),
        }
    }

    #[test]
    fn same_secret_same_keys_across_nodes_and_restarts() {
        let t = Arc::new(AtomicU64::new(1_000));
        let a = EmbeddedKeys::new(&[7u8; 32], options(&t)).unwrap();
        let b = EmbeddedKeys::new(&[7u8; 32], options(&t)).unwrap();
        let token = a.handle().load().seal("clr", b"x");
        assert_eq!(b.handle().load().open("clr", &token).unwrap(), b"x");
        let other = EmbeddedKeys::new(&[8u8; 32], options(&t)).unwrap();
        assert_eq!(
            other.handle().load().open("clr", &token),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn rotation_keeps_previous_epoch_and_drops_older() {
        let t = Arc::new(AtomicU64::new(1_050));
        let keys = EmbeddedKeys::new(&[7u8; 32], options(&t)).unwrap();
        let handle = keys.handle();
        let old = handle.load().seal("clr", b"old");
        assert_eq!(handle.load().current().id(), "e10");
        t.store(1_150, Ordering::SeqCst);
        keys.refresh();
        assert_eq!(handle.load().current().id(), "e11");
        assert_eq!(handle.load().open("clr", &old).unwrap(), b"old");
        t.store(1_250, Ordering::SeqCst);
        keys.refresh();
        assert_eq!(handle.load().open("clr", &old), Err(TokenError::UnknownKey));
    }

    #[test]
    fn next_epoch_tokens_verify_on_a_slow_clock() {
        let t = Arc::new(AtomicU64::new(1_099));
        let slow = EmbeddedKeys::new(&[7u8; 32], options(&t)).unwrap();
        let t2 = Arc::new(AtomicU64::new(1_101));
        let fast = EmbeddedKeys::new(&[7u8; 32], options(&t2)).unwrap();
        let token = fast.handle().load().seal("clr", b"n");
        assert_eq!(slow.handle().load().open("clr", &token).unwrap(), b"n");
    }

    #[test]
    fn short_secret_refused_and_debug_redacted() {
        let t = Arc::new(AtomicU64::new(0));
        assert!(EmbeddedKeys::new(&[1u8; 8], options(&t)).is_err());
        let k = EmbeddedKeys::new(&[0xAB; 32], options(&t)).unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("171"));
    }
}
