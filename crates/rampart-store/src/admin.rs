//! Admin users (argon2id passwords, TOTP, lockout with exponential backoff),
//! admin API tokens and dashboard sessions.
//!
//! Credentials handed out here (tokens, session ids, CSRF tokens, TOTP
//! secrets) are returned once as [`SecretString`]; the store keeps HMAC
//! digests of tokens and session ids, never the values.

use crate::clock::{Clock, SystemClock};
use crate::error::{LoginError, StoreError, TokenError};
use crate::model::*;
use crate::secret::{base32_encode, is_base62, random_token, SecretString, ServerSecret};
use crate::store::{Backend, NewAuditEvent, Result};
use crate::totp;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    /// Memory in KiB. Default 19456 (19 MiB, the OWASP recommendation).
    pub memory_kib: u32,
    /// Passes. Default 2.
    pub iterations: u32,
    /// Lanes. Default 1.
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        HashCost {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashCost {
    /// Cheap parameters for tests only.
    pub fn insecure_for_tests() -> HashCost {
        HashCost {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }
}

/// Options for [`AdminService`].
#[derive(Clone)]
pub struct AdminOptions {
    pub hash_cost: HashCost,
    /// Failed logins allowed before lockouts start. Default 3.
    pub free_failures: u32,
    /// First lockout; doubles with each further failure. Default 2 s.
    pub base_lockout: Duration,
    /// Longest lockout. Default 15 min.
    pub max_lockout: Duration,
    /// Minimum password length. Default 12.
    pub min_password_len: usize,
    pub clock: Arc<dyn Clock>,
}

impl Default for AdminOptions {
    fn default() -> Self {
        AdminOptions {
            hash_cost: HashCost::default(),
            free_failures: 3,
            base_lockout: Duration::from_secs(2),
            max_lockout: Duration::from_secs(15 * 60),
            min_password_len: 12,
            clock: Arc::new(SystemClock),
        }
    }
}

/// A TOTP enrollment: show `uri`/`qr` to the user once, then confirm with a
/// code via [`AdminService::confirm_totp`].
pub struct TotpEnrollment {
    pub secret_base32: SecretString,
    pub uri: SecretString,
    /// The URI as a terminal QR code (contains the secret: show, don't log).
    pub qr: SecretString,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment(<redacted>)")
    }
}

/// A token just created; `token` is shown once.
#[derive(Debug)]
pub struct CreatedToken {
    pub token: SecretString,
    pub record: AdminToken,
}

/// A session just created: set `session_id` as an HttpOnly cookie and embed
/// `csrf_token` in pages.
#[derive(Debug)]
pub struct CreatedSession {
    pub session_id: SecretString,
    pub csrf_token: SecretString,
    pub session: Session,
}

const TOKEN_PREFIX: &str = "rat_";

/// Admin users, tokens and sessions. Cheap to clone.
#[derive(Clone)]
pub struct AdminService {
    backend: Arc<dyn Backend>,
    secret: ServerSecret,
    options: AdminOptions,
    /// Per-user login locks so failure counting and TOTP replay checks are
    /// not raced by parallel attempts on this instance.
    login_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// A hash verified for unknown usernames, so timing does not reveal
    /// which usernames exist.
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService").finish_non_exhaustive()
    }
}

impl AdminService {
    pub async fn new(
        backend: Arc<dyn Backend>,
        secret: ServerSecret,
        options: AdminOptions,
    ) -> Result<AdminService> {
        let dummy_hash = hash_password(options.hash_cost, random_token()).await?;
        Ok(AdminService {
            backend,
            secret,
            options,
            login_locks: Arc::default(),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    fn now(&self) -> u64 {
        self.options.clock.now_secs()
    }

    /// Creates an admin user with an argon2id password hash.
    pub async fn create_admin(
        &self,
        username: &str,
        password: &str,
        actor: &Actor,
    ) -> Result<AdminUser> {
        validate_username(username)?;
        self.check_password_policy(password)?;
        let now = self.now();
        let user = AdminUser {
            username: username.to_string(),
            password_hash: hash_password(self.options.hash_cost, password.to_string()).await?,
            totp_secret: None,
            totp_pending: None,
            totp_last_step: None,
            failed_logins: 0,
            locked_until: None,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        self.backend.insert_admin(&user).await?;
        self.audit(actor, "admin.create", username, serde_json::Value::Null)
            .await?;
        Ok(user)
    }

    /// Sets a new password (and clears any lockout).
    pub async fn set_password(&self, username: &str, password: &str, actor: &Actor) -> Result<()> {
        self.check_password_policy(password)?;
        let mut user = self.existing(username).await?;
        user.password_hash = hash_password(self.options.hash_cost, password.to_string()).await?;
        user.failed_logins = 0;
        user.locked_until = None;
        user.updated_at = self.now();
        self.backend.update_admin(&user).await?;
        self.audit(actor, "admin.password", username, serde_json::Value::Null)
            .await
    }

    pub async fn set_disabled(&self, username: &str, disabled: bool, actor: &Actor) -> Result<()> {
        let mut user = self.existing(username).await?;
        user.disabled = disabled;
        user.updated_at = self.now();
        self.backend.update_admin(&user).await?;
        self.audit(
            actor,
            "admin.disabled",
            username,
            serde_json::json!({"disabled": disabled}),
        )
        .await
    }

    pub async fn get_admin(&self, username: &str) -> Result<Option<AdminUser>> {
        self.backend.get_admin(username).await
    }

    pub async fn list_admins(&self) -> Result<Vec<AdminUser>> {
        self.backend.list_admins().await
    }

    /// Starts TOTP enrollment: a new secret, pending until confirmed.
    pub async fn enroll_totp(&self, username: &str, actor: &Actor) -> Result<TotpEnrollment> {
        let mut user = self.existing(username).await?;
        let secret = totp::new_secret();
        let uri = totp::provisioning_uri(username, &secret);
        let qr = totp::qr_terminal(&uri).unwrap_or_default();
        let enrollment = TotpEnrollment {
            secret_base32: SecretString::new(base32_encode(&secret)),
            uri: SecretString::new(uri),
            qr: SecretString::new(qr),
        };
        user.totp_pending = Some(secret);
        user.updated_at = self.now();
        self.backend.update_admin(&user).await?;
        self.audit(
            actor,
            "admin.totp_enroll",
            username,
            serde_json::Value::Null,
        )
        .await?;
        Ok(enrollment)
    }

    /// Activates the pending TOTP secret if `code` is valid for it.
    pub async fn confirm_totp(&self, username: &str, code: &str, actor: &Actor) -> Result<bool> {
        let mut user = self.existing(username).await?;
        let Some(pending) = user.totp_pending.clone() else {
            return Err(StoreError::Invalid("no TOTP enrollment in progress".into()));
        };
        let Some(step) = totp::verify(&pending, code, self.now()) else {
            return Ok(false);
        };
        user.totp_secret = Some(pending);
        user.totp_pending = None;
        user.totp_last_step = Some(step);
        user.updated_at = self.now();
        self.backend.update_admin(&user).await?;
        self.audit(
            actor,
            "admin.totp_confirm",
            username,
            serde_json::Value::Null,
        )
        .await?;
        Ok(true)
    }

    /// Checks password and (when enrolled) TOTP code. Locked accounts are
    /// refused before the password is looked at.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        totp_code: Option<&str>,
        ip: Option<std::net::IpAddr>,
    ) -> std::result::Result<AdminUser, LoginError> {
        let user_lock = self.login_lock(username);
        let _guard = user_lock.lock().await;
        let now = self.now();
        let Some(mut user) = self.backend.get_admin(username).await? else {
            let _ = verify_password(self.dummy_hash.to_string(), password.to_string()).await;
            self.audit_login(username, ip, "admin.login_failed").await?;
            return Err(LoginError::InvalidCredentials);
        };
        if let Some(until) = user.locked_until.filter(|&u| u > now) {
            return Err(LoginError::Locked {
                retry_after_secs: until - now,
            });
        }
        let password_ok = verify_password(user.password_hash.clone(), password.to_string()).await;
        let totp_step = match (&user.totp_secret, totp_code) {
            (None, _) => Some(None),
            (Some(secret), Some(code)) => totp::verify(secret, code, now)
                .filter(|step| user.totp_last_step.is_none_or(|last| *step > last))
                .map(Some),
            (Some(_), None) => None,
        };
        match (password_ok && !user.disabled, totp_step) {
            (true, Some(step)) => {
                user.failed_logins = 0;
                user.locked_until = None;
                user.totp_last_step = step.or(user.totp_last_step);
                self.backend.update_admin(&user).await?;
                self.audit_login(username, ip, "admin.login").await?;
                Ok(user)
            }
            _ => {
                self.record_failure(&mut user, now).await?;
                self.audit_login(username, ip, "admin.login_failed").await?;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    async fn record_failure(&self, user: &mut AdminUser, now: u64) -> Result<()> {
        user.failed_logins = user.failed_logins.saturating_add(1);
        if let Some(lock) = lockout_secs(&self.options, user.failed_logins) {
            user.locked_until = Some(now.saturating_add(lock));
        }
        self.backend.update_admin(user).await
    }

    fn login_lock(&self, username: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.login_locks.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: drop idle locks when the map grows (usernames are attacker input).
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(username.to_string()).or_default().clone()
    }

    /// Issues an admin API token; the token is returned once.
    pub async fn create_token(
        &self,
        username: &str,
        name: &str,
        scopes: Vec<TokenScope>,
        ttl: Option<Duration>,
        actor: &Actor,
    ) -> Result<CreatedToken> {
        self.existing(username).await?;
        if scopes.is_empty() {
            return Err(StoreError::Invalid(
                "a token needs at least one scope".into(),
            ));
        }
        let text = format!("{TOKEN_PREFIX}{}", random_token());
        let now = self.now();
        let record = AdminToken {
            token_id: text[TOKEN_PREFIX.len()..TOKEN_PREFIX.len() + 8].to_string(),
            digest: self.secret.digest(text.as_bytes()),
            username: username.to_string(),
            name: name.to_string(),
            scopes,
            created_at: now,
            expires_at: ttl.map(|t| now.saturating_add(t.as_secs())),
            revoked_at: None,
        };
        self.backend.put_token(&record).await?;
        self.audit(
            actor,
            "token.create",
            &record.token_id,
            serde_json::json!({"scopes": record.scopes}),
        )
        .await?;
        Ok(CreatedToken {
            token: SecretString::new(text),
            record,
        })
    }

    /// Checks a presented admin token (the owner must exist and be enabled).
    pub async fn verify_token(
        &self,
        presented: &str,
    ) -> std::result::Result<AdminToken, TokenVerifyError> {
        let body = presented
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenError::Malformed)?;
        if body.len() != crate::secret::BASE62_LEN_256 || !is_base62(body.as_bytes()) {
            return Err(TokenError::Malformed.into());
        }
        let digest = self.secret.digest(presented.as_bytes());
        let token = self
            .backend
            .get_token_by_digest(&digest)
            .await?
            .filter(|t| t.digest.ct_eq(&digest))
            .ok_or(TokenError::Unknown)?;
        if token.revoked_at.is_some() {
            return Err(TokenError::Revoked.into());
        }
        if token.expires_at.is_some_and(|e| self.now() >= e) {
            return Err(TokenError::Expired.into());
        }
        match self.backend.get_admin(&token.username).await? {
            Some(user) if !user.disabled => Ok(token),
            _ => Err(TokenError::Unknown.into()),
        }
    }

    pub async fn revoke_token(&self, token_id: &str, actor: &Actor) -> Result<()> {
        let mut token = self
            .backend
            .list_tokens()
            .await?
            .into_iter()
            .find(|t| t.token_id == token_id)
            .ok_or_else(|| StoreError::NotFound(format!("admin token {token_id}")))?;
        token.revoked_at.get_or_insert(self.now());
        self.backend.put_token(&token).await?;
        self.audit(actor, "token.revoke", token_id, serde_json::Value::Null)
            .await
    }

    pub async fn list_tokens(&self) -> Result<Vec<AdminToken>> {
        self.backend.list_tokens().await
    }

    /// Starts a dashboard session lasting `ttl`.
    pub async fn create_session(&self, username: &str, ttl: Duration) -> Result<CreatedSession> {
        let session_id = random_token();
        let csrf_token = random_token();
        let now = self.now();
        let session = Session {
            digest: self.secret.digest(session_id.as_bytes()),
            username: username.to_string(),
            csrf_token: csrf_token.clone(),
            created_at: now,
            expires_at: now.saturating_add(ttl.as_secs()),
        };
        self.backend.put_session(&session).await?;
        Ok(CreatedSession {
            session_id: SecretString::new(session_id),
            csrf_token: SecretString::new(csrf_token),
            session,
        })
    }

    /// The live session for a cookie value; `None` if unknown or expired.
    pub async fn get_session(&self, session_id: &str) -> Result<Option<Session>> {
        if session_id.len() != crate::secret::BASE62_LEN_256 || !is_base62(session_id.as_bytes()) {
            return Ok(None);
        }
        let digest = self.secret.digest(session_id.as_bytes());
        let session = self.backend.get_session(&digest).await?;
        Ok(session.filter(|s| s.expires_at > self.now()))
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, session_id: &str) -> Result<()> {
        let digest = self.secret.digest(session_id.as_bytes());
        self.backend.delete_session(&digest).await
    }

    /// Removes expired sessions (call periodically).
    pub async fn purge_sessions(&self) -> Result<u64> {
        self.backend.purge_sessions(self.now()).await
    }

    async fn existing(&self, username: &str) -> Result<AdminUser> {
        self.backend
            .get_admin(username)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("admin user {username}")))
    }

    fn check_password_policy(&self, password: &str) -> Result<()> {
        if password.chars().count() < self.options.min_password_len {
            return Err(StoreError::Invalid(format!(
                "password must be at least {} characters",
                self.options.min_password_len
            )));
        }
        Ok(())
    }

    async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let event = NewAuditEvent {
            at: self.now(),
            actor: &actor.name,
            action,
            target,
            source_ip: actor.ip,
            detail,
        };
        self.backend.append_audit(event).await.map(|_| ())
    }

    async fn audit_login(
        &self,
        username: &str,
        ip: Option<std::net::IpAddr>,
        action: &str,
    ) -> Result<()> {
        let actor = Actor::new(username, ip);
        self.audit(&actor, action, username, serde_json::Value::Null)
            .await
    }
}

/// [`AdminService::verify_token`] failed: a refusal or a storage error.
#[derive(Debug, thiserror::Error)]
pub enum TokenVerifyError {
    #[error(transparent)]
    Refused(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lockout length after `failures` consecutive failures, if any:
/// `base * 2^(failures - free - 1)`, capped.
pub fn lockout_secs(options: &AdminOptions, failures: u32) -> Option<u64> {
    let over = failures
        .checked_sub(options.free_failures)?
        .checked_sub(1)?;
    let factor = 1u64.checked_shl(over.min(40)).unwrap_or(u64::MAX);
    let secs = options.base_lockout.as_secs().saturating_mul(factor);
    Some(secs.min(options.max_lockout.as_secs()))
}

fn validate_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    match ok {
        true => Ok(()),
        false => Err(StoreError::Invalid(
            "username must be 1-64 characters of A-Z a-z 0-9 _ - . @".into(),
        )),
    }
}

fn argon2(cost: HashCost) -> Result<Argon2<'static>> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| StoreError::Invalid(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes on a blocking thread (argon2 is deliberately slow).
async fn hash_password(cost: HashCost, password: String) -> Result<String> {
    let hasher = argon2(cost)?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&crate::secret::random_bytes::<16>())
            .map_err(|_| StoreError::Backend("argon2 salt".into()))?;
        hasher
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| StoreError::Backend("argon2 hashing failed".into()))
    })
    .await
    .map_err(|_| StoreError::Backend("argon2 task failed".into()))?
}

/// Verifies with the parameters stored in the hash itself.
async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_doubles_after_free_failures_and_caps() {
        let options = AdminOptions::default();
        assert_eq!(lockout_secs(&options, 1), None);
        assert_eq!(lockout_secs(&options, 3), None);
        assert_eq!(lockout_secs(&options, 4), Some(2));
        assert_eq!(lockout_secs(&options, 5), Some(4));
        assert_eq!(lockout_secs(&options, 6), Some(8));
        assert_eq!(lockout_secs(&options, 100), Some(900));
        assert_eq!(lockout_secs(&options, u32::MAX), Some(900));
    }

    #[tokio::test]
    async fn argon2id_hash_verifies_only_the_right_password() {
        let hash = hash_password(
            HashCost::insecure_for_tests(),
            "correct horse battery".into(),
        )
        .await
        .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(hash.clone(), "correct horse battery".into()).await);
        assert!(!verify_password(hash.clone(), "correct horse battery!".into()).await);
        let other = hash_password(
            HashCost::insecure_for_tests(),
            "correct horse battery".into(),
        )
        .await
        .unwrap();
        assert_ne!(hash, other, "per-user random salt");
    }
}
