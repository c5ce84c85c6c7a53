//! Secrets never appear in Debug output or error messages.

mod common;

use common::*;
use rampart_store::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn no_secret_in_any_debug_or_error_output() {
    let env = sqlite_env();
    let backend: Arc<dyn Backend> = Arc::new(env.store.clone());
    let ring = keyring(backend.clone(), env.clock.clone()).await;
    let admin = admin(backend, env.clock.clone()).await;
    ring.create_consumer(new_consumer("acme"), &actor())
        .await
        .unwrap();
    let key = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    let password = "hunter2hunter2hunter2";
    admin
        .create_admin("alice", password, &actor())
        .await
        .unwrap();
    let enrollment = admin.enroll_totp("alice", &actor()).await.unwrap();
    let token = admin
        .create_token("alice", "ci", vec![TokenScope::Read], None, &actor())
        .await
        .unwrap();
    let session = admin
        .create_session("alice", Duration::from_secs(60))
        .await
        .unwrap();
    let user = admin.get_admin("alice").await.unwrap().unwrap();
    let server_secret = secret();

    let secrets = [
        key.key.expose().to_string(),
        key.key.expose()[8..].to_string(),
        password.to_string(),
        enrollment.secret_base32.expose().to_string(),
        token.token.expose().to_string(),
        session.session_id.expose().to_string(),
        session.csrf_token.expose().to_string(),
        user.password_hash.clone(),
        "test-server-secret".to_string(),
    ];

    ring.revoke_key(&key.record.key_id, &actor()).await.unwrap();
    let key_errors: Vec<String> = [
        ring.verify(key.key.expose(), "10.0.0.1".parse().unwrap())
            .unwrap_err(),
        KeyError::Malformed,
        KeyError::Unknown,
        KeyError::Expired,
        KeyError::ConsumerDisabled,
        KeyError::IpNotAllowed,
    ]
    .iter()
    .map(|e| format!("{e} {e:?}"))
    .collect();
    let login_err = admin
        .login("alice", "wrong-password-123", None, None)
        .await
        .unwrap_err();
    let outputs = [
        format!("{key:?}"),
        format!("{:?}", key.record),
        format!("{} {:?}", key.key, key.key),
        format!("{user:?}"),
        format!("{enrollment:?}"),
        format!("{token:?}"),
        format!("{session:?}"),
        format!("{:?}", session.session),
        format!("{server_secret:?}"),
        format!("{ring:?} {admin:?} {:?}", env.store),
        format!("{login_err} {login_err:?}"),
        format!("{:?}", admin.verify_token("rat_zzz").await),
        key_errors.join(" "),
        format!("{:?}", ring.recent_audit(100).await.unwrap()),
    ];
    for output in &outputs {
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "secret leaked in: {output}"
            );
        }
    }
    // The redacted forms are there (so the test looks at the right output).
    assert!(outputs[2].contains("<redacted>"));
    assert!(outputs[3].contains("<redacted>"));
}
