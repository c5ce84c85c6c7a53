//! Consumer TOTP for MFA step-up: enrollment (pending secret, provisioning
//! URI, terminal QR), confirmation with a first code, disabling, and the
//! step-up check the gateway runs on sensitive routes.
//!
//! Secrets are sealed under the server secret (ChaCha20-Poly1305) before they
//! reach storage. A code is accepted once: its time step must be later than
//! the last accepted one, and the store records it atomically
//! ([`ConsumerTotpStore::claim_totp_step`]) so two gateway instances cannot
//! both accept it. Wrong codes count towards a lockout with exponential
//! backoff, so a stolen API key cannot be used to guess codes quickly.

use crate::admin::TotpEnrollment;
use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::model::{Actor, ConsumerTotp};
use crate::seal::Sealer;
use crate::secret::{base32_encode, SecretString, ServerSecret};
use crate::store::{Backend, NewAuditEvent, Result};
use crate::totp;
use std::sync::Arc;
use std::time::Duration;

/// Options for [`ConsumerTotpService`].
#[derive(Clone)]
pub struct ConsumerTotpOptions {
    /// Wrong codes allowed before lockouts start. Default 5.
    pub free_failures: u32,
    /// First lockout; doubles with each further wrong code. Default 30 s.
    pub base_lockout: Duration,
    /// Longest lockout. Default 15 min.
    pub max_lockout: Duration,
    /// Time source (tests use [`crate::ManualClock`]).
    pub clock: Arc<dyn Clock>,
}

impl Default for ConsumerTotpOptions {
    fn default() -> Self {
        ConsumerTotpOptions {
            free_failures: 5,
            base_lockout: Duration::from_secs(30),
            max_lockout: Duration::from_secs(15 * 60),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The result of checking a step-up code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpOutcome {
    /// The code is right and was not used before; it is now spent.
    Accepted,
    /// Wrong (or malformed) code; counted towards the lockout.
    Invalid,
    /// A right code whose time step was already used.
    Replayed,
    /// The consumer has no confirmed TOTP secret.
    NotEnrolled,
    /// Too many wrong codes: refused without checking until the lockout ends.
    Locked { retry_after_secs: u64 },
}

/// Where a consumer's enrollment stands (for admin listings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpStatus {
    NotEnrolled,
    /// Enrolled but not confirmed yet: step-up is not required.
    Pending,
    /// Confirmed: step-up codes are required. `pending` when a re-enrollment
    /// waits for confirmation (the old secret stays valid until then).
    Enabled {
        pending: bool,
    },
}

/// Consumer TOTP enrollment and step-up verification. Cheap to clone.
#[derive(Clone)]
pub struct ConsumerTotpService {
    backend: Arc<dyn Backend>,
    sealer: Arc<Sealer>,
    options: ConsumerTotpOptions,
}

impl std::fmt::Debug for ConsumerTotpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerTotpService")
            .finish_non_exhaustive()
    }
}

impl ConsumerTotpService {
    /// `secret` must be the same server secret on every instance sharing
    /// the backend (it keys the encryption of stored TOTP secrets).
    pub fn new(
        backend: Arc<dyn Backend>,
        secret: &ServerSecret,
        options: ConsumerTotpOptions,
    ) -> Result<ConsumerTotpService> {
        Ok(ConsumerTotpService {
            backend,
            sealer: Arc::new(Sealer::new(secret)?),
            options,
        })
    }

    fn now(&self) -> u64 {
        self.options.clock.now_secs()
    }

    /// Starts enrollment: a new secret, pending until [`confirm`](Self::confirm).
    /// A confirmed secret stays in force until the new one is confirmed.
    pub async fn enroll(&self, consumer_id: &str, actor: &Actor) -> Result<TotpEnrollment> {
        if self.backend.get_consumer(consumer_id).await?.is_none() {
            return Err(StoreError::NotFound(format!("consumer {consumer_id}")));
        }
        let now = self.now();
        let secret = totp::new_secret();
        let mut record = self
            .backend
            .get_consumer_totp(consumer_id)
            .await?
            .unwrap_or_else(|| empty_record(consumer_id, now));
        record.pending = Some(self.sealer.seal(consumer_id, &secret)?);
        record.updated_at = now;
        self.backend.put_consumer_totp(&record).await?;
        self.audit(actor, "consumer.totp_enroll", consumer_id)
            .await?;
        let uri = totp::provisioning_uri(consumer_id, &secret);
        let qr = totp::qr_terminal(&uri).unwrap_or_default();
        Ok(TotpEnrollment {
            secret_base32: SecretString::new(base32_encode(&secret)),
            uri: SecretString::new(uri),
            qr: SecretString::new(qr),
        })
    }

    /// Activates the pending secret if `code` is valid for it; `Ok(false)`
    /// for a wrong code. The confirming code's step counts as used.
    pub async fn confirm(&self, consumer_id: &str, code: &str, actor: &Actor) -> Result<bool> {
        let mut record = self.existing(consumer_id).await?;
        let Some(pending) = record.pending.clone() else {
            return Err(StoreError::Invalid("no TOTP enrollment in progress".into()));
        };
        let secret = self.sealer.open(consumer_id, &pending)?;
        let now = self.now();
        let Some(step) = totp::verify(&secret, code, now) else {
            return Ok(false);
        };
        record.secret = Some(pending);
        record.pending = None;
        record.last_step = Some(step.max(record.last_step.unwrap_or(0)));
        record.failed_attempts = 0;
        record.locked_until = None;
        record.updated_at = now;
        self.backend.put_consumer_totp(&record).await?;
        self.audit(actor, "consumer.totp_confirm", consumer_id)
            .await?;
        Ok(true)
    }

    /// Removes the consumer's TOTP (confirmed and pending); `false` if there
    /// was none. Step-up then follows the gateway's not-enrolled policy.
    pub async fn disable(&self, consumer_id: &str, actor: &Actor) -> Result<bool> {
        let removed = self.backend.delete_consumer_totp(consumer_id).await?;
        if removed {
            self.audit(actor, "consumer.totp_disable", consumer_id)
                .await?;
        }
        Ok(removed)
    }

    pub async fn status(&self, consumer_id: &str) -> Result<TotpStatus> {
        let record = self.backend.get_consumer_totp(consumer_id).await?;
        Ok(match record {
            None => TotpStatus::NotEnrolled,
            Some(r) if r.secret.is_some() => TotpStatus::Enabled {
                pending: r.pending.is_some(),
            },
            Some(r) if r.pending.is_some() => TotpStatus::Pending,
            Some(_) => TotpStatus::NotEnrolled,
        })
    }

    /// Whether step-up codes are required of this consumer.
    pub async fn is_enrolled(&self, consumer_id: &str) -> Result<bool> {
        Ok(matches!(
            self.status(consumer_id).await?,
            TotpStatus::Enabled { .. }
        ))
    }

    /// Checks a step-up code and, if right, spends its time step. The code
    /// is never logged or stored.
    pub async fn verify(&self, consumer_id: &str, code: &str) -> Result<StepUpOutcome> {
        let Some(record) = self.backend.get_consumer_totp(consumer_id).await? else {
            return Ok(StepUpOutcome::NotEnrolled);
        };
        let Some(sealed) = &record.secret else {
            return Ok(StepUpOutcome::NotEnrolled);
        };
        let now = self.now();
        if let Some(until) = record.locked_until.filter(|&u| u > now) {
            return Ok(StepUpOutcome::Locked {
                retry_after_secs: until - now,
            });
        }
        let secret = self.sealer.open(consumer_id, sealed)?;
        let Some(step) = totp::verify(&secret, code, now) else {
            self.record_failure(consumer_id, now).await?;
            return Ok(StepUpOutcome::Invalid);
        };
        // Cheap early answer; the store's atomic claim is the real check.
        if record.last_step.is_some_and(|last| step <= last) {
            return Ok(StepUpOutcome::Replayed);
        }
        match self.backend.claim_totp_step(consumer_id, step).await? {
            true => Ok(StepUpOutcome::Accepted),
            false => Ok(StepUpOutcome::Replayed),
        }
    }

    async fn record_failure(&self, consumer_id: &str, now: u64) -> Result<()> {
        let failures = self.backend.add_totp_failure(consumer_id).await?;
        let Some(secs) = lockout_secs(&self.options, failures) else {
            return Ok(());
        };
        self.backend
            .lock_totp(consumer_id, now.saturating_add(secs))
            .await?;
        let event = NewAuditEvent {
            at: now,
            actor: "system",
            action: "consumer.totp_locked",
            target: consumer_id,
            source_ip: None,
            detail: serde_json::json!({"failures": failures, "lock_secs": secs}),
        };
        self.backend.append_audit(event).await.map(|_| ())
    }

    async fn existing(&self, consumer_id: &str) -> Result<ConsumerTotp> {
        self.backend
            .get_consumer_totp(consumer_id)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("TOTP enrollment of consumer {consumer_id}"))
            })
    }

    async fn audit(&self, actor: &Actor, action: &str, consumer_id: &str) -> Result<()> {
        let event = NewAuditEvent {
            at: self.now(),
            actor: &actor.name,
            action,
            target: consumer_id,
            source_ip: actor.ip,
            detail: serde_json::Value::Null,
        };
        self.backend.append_audit(event).await.map(|_| ())
    }
}

/// Lockout after `failures` consecutive wrong codes, if any:
/// `base * 2^(failures - free - 1)`, capped (at least 1 s).
fn lockout_secs(options: &ConsumerTotpOptions, failures: u32) -> Option<u64> {
    let over = failures
        .checked_sub(options.free_failures)?
        .checked_sub(1)?;
    let factor = 1u64.checked_shl(over.min(40)).unwrap_or(u64::MAX);
    let secs = options.base_lockout.as_secs().saturating_mul(factor);
    Some(secs.min(options.max_lockout.as_secs()).max(1))
}

fn empty_record(consumer_id: &str, now: u64) -> ConsumerTotp {
    ConsumerTotp {
        consumer_id: consumer_id.to_string(),
        secret: None,
        pending: None,
        last_step: None,
        failed_attempts: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_starts_after_free_failures_doubles_and_caps() {
        let options = ConsumerTotpOptions::default();
        assert_eq!(lockout_secs(&options, 5), None);
        assert_eq!(lockout_secs(&options, 6), Some(30));
        assert_eq!(lockout_secs(&options, 7), Some(60));
        assert_eq!(lockout_secs(&options, 10), Some(480));
        assert_eq!(lockout_secs(&options, 11), Some(900));
        assert_eq!(lockout_secs(&options, u32::MAX), Some(900));
    }
}
