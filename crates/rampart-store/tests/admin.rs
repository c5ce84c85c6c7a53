//! Admin users, TOTP, lockout, tokens and sessions against the embedded store.

mod common;

use common::*;
use rampart_store::totp;
use rampart_store::*;
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

async fn setup() -> (Env, AdminService) {
    let env = sqlite_env();
    let admin = admin(Arc::new(env.store.clone()), env.clock.clone()).await;
    admin
        .create_admin("alice", PASSWORD, &actor())
        .await
        .unwrap();
    (env, admin)
}

#[tokio::test]
async fn password_login_succeeds_and_wrong_password_fails() {
    let (_env, admin) = setup().await;
    let user = admin.login("alice", PASSWORD, None, None).await.unwrap();
    assert_eq!(user.username, "alice");
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(matches!(
        admin.login("alice", "wrong password!!", None, None).await,
        Err(LoginError::InvalidCredentials)
    ));
    assert!(matches!(
        admin.login("mallory", PASSWORD, None, None).await,
        Err(LoginError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn short_passwords_and_bad_usernames_are_refused() {
    let (_env, admin) = setup().await;
    assert!(matches!(
        admin.create_admin("bob", "short", &actor()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        admin.create_admin("bob smith", PASSWORD, &actor()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        admin.create_admin("alice", PASSWORD, &actor()).await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn lockout_backs_off_exponentially_and_resets_on_success() {
    let (env, admin) = setup().await;
    for _ in 0..3 {
        let r = admin.login("alice", "bad password 123", None, None).await;
        assert!(matches!(r, Err(LoginError::InvalidCredentials)));
    }
    // Fourth failure starts a 2 s lockout.
    let _ = admin.login("alice", "bad password 123", None, None).await;
    match admin.login("alice", PASSWORD, None, None).await {
        Err(LoginError::Locked { retry_after_secs }) => assert_eq!(retry_after_secs, 2),
        other => panic!("expected lockout, got {other:?}"),
    }
    env.clock.advance(2);
    // Fifth failure: 4 s.
    let _ = admin.login("alice", "bad password 123", None, None).await;
    match admin.login("alice", PASSWORD, None, None).await {
        Err(LoginError::Locked { retry_after_secs }) => assert_eq!(retry_after_secs, 4),
        other => panic!("expected lockout, got {other:?}"),
    }
    env.clock.advance(4);
    let user = admin.login("alice", PASSWORD, None, None).await.unwrap();
    assert_eq!(user.failed_logins, 0);
    assert_eq!(user.locked_until, None);
}

#[tokio::test]
async fn totp_is_required_once_confirmed_and_replay_is_refused() {
    let (env, admin) = setup().await;
    let enrollment = admin.enroll_totp("alice", &actor()).await.unwrap();
    assert!(enrollment
        .uri
        .expose()
        .starts_with("otpauth://totp/rampart:alice?secret="));
    assert!(enrollment.uri.expose().ends_with("&issuer=rampart"));
    assert!(!enrollment.qr.expose().is_empty());
    let secret = rampart_store::secret::base32_decode(enrollment.secret_base32.expose()).unwrap();
    let now = env.clock.now_secs();
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| totp::code_at(&secret, *t))
        .collect();
    let wrong = (0..4u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap();
    assert!(!admin.confirm_totp("alice", &wrong, &actor()).await.unwrap());
    assert!(admin
        .confirm_totp("alice", &totp::code_at(&secret, now), &actor())
        .await
        .unwrap());

    // The confirming code's step is used: the same code cannot log in.
    let same = totp::code_at(&secret, now);
    assert!(admin
        .login("alice", PASSWORD, Some(&same), None)
        .await
        .is_err());
    // Password alone is no longer enough.
    assert!(admin.login("alice", PASSWORD, None, None).await.is_err());

    env.clock.advance(30);
    let next = totp::code_at(&secret, env.clock.now_secs());
    admin
        .login("alice", PASSWORD, Some(&next), None)
        .await
        .unwrap();
    // Replay of the code just used is refused.
    assert!(matches!(
        admin.login("alice", PASSWORD, Some(&next), None).await,
        Err(LoginError::InvalidCredentials)
    ));
    // A code from one step ahead (clock drift) is accepted.
    let ahead = totp::code_at(&secret, env.clock.now_secs() + 30);
    admin
        .login("alice", PASSWORD, Some(&ahead), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn admin_tokens_verify_expire_and_revoke() {
    let (env, admin) = setup().await;
    let created = admin
        .create_token(
            "alice",
            "ci",
            vec![TokenScope::Read],
            Some(Duration::from_secs(100)),
            &actor(),
        )
        .await
        .unwrap();
    let token = admin.verify_token(created.token.expose()).await.unwrap();
    assert!(token.allows(TokenScope::Read));
    assert!(!token.allows(TokenScope::Write));
    assert!(matches!(
        admin.verify_token("rat_short").await,
        Err(TokenVerifyError::Refused(TokenError::Malformed))
    ));
    env.clock.advance(100);
    assert!(matches!(
        admin.verify_token(created.token.expose()).await,
        Err(TokenVerifyError::Refused(TokenError::Expired))
    ));
    let forever = admin
        .create_token("alice", "ops", vec![TokenScope::Write], None, &actor())
        .await
        .unwrap();
    assert!(admin
        .verify_token(forever.token.expose())
        .await
        .unwrap()
        .allows(TokenScope::Read));
    admin
        .revoke_token(&forever.record.token_id, &actor())
        .await
        .unwrap();
    assert!(matches!(
        admin.verify_token(forever.token.expose()).await,
        Err(TokenVerifyError::Refused(TokenError::Revoked))
    ));
}

#[tokio::test]
async fn sessions_expire_and_delete() {
    let (env, admin) = setup().await;
    let created = admin
        .create_session("alice", Duration::from_secs(600))
        .await
        .unwrap();
    let session = admin
        .get_session(created.session_id.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.username, "alice");
    assert!(session.csrf_matches(created.csrf_token.expose()));
    assert!(!session.csrf_matches("forged"));
    assert!(admin.get_session("not-a-session").await.unwrap().is_none());
    env.clock.advance(600);
    assert!(admin
        .get_session(created.session_id.expose())
        .await
        .unwrap()
        .is_none());
    let second = admin
        .create_session("alice", Duration::from_secs(600))
        .await
        .unwrap();
    admin
        .delete_session(second.session_id.expose())
        .await
        .unwrap();
    assert!(admin
        .get_session(second.session_id.expose())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn logins_are_audited() {
    let (env, admin) = setup().await;
    let _ = admin
        .login(
            "alice",
            "bad password 123",
            None,
            Some("10.9.9.9".parse().unwrap()),
        )
        .await;
    let events = env.store_audit().await;
    assert_eq!(events[0].action, "admin.login_failed");
    assert_eq!(events[0].source_ip, Some("10.9.9.9".parse().unwrap()));
    assert!(!format!("{events:?}").contains("bad password"));
}

trait AuditAccess {
    async fn store_audit(&self) -> Vec<AuditEvent>;
}

impl AuditAccess for Env {
    async fn store_audit(&self) -> Vec<AuditEvent> {
        use rampart_store::store::AuditLog;
        self.store.recent_audit(10).await.unwrap()
    }
}
