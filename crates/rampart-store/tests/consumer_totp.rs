//! Consumer TOTP (MFA step-up) on both backends: enrollment, confirmation,
//! wrong / right / replayed codes, lockout, disabling, sealing at rest.
//! Redis tests use a real server.

mod common;

use common::*;
use rampart_store::secret::base32_decode;
use rampart_store::store::{ConsumerStore, ConsumerTotpStore};
use rampart_store::totp;
use rampart_store::*;
use std::sync::Arc;

struct Fixture {
    backend: Arc<dyn Backend>,
    clock: Arc<ManualClock>,
    svc: ConsumerTotpService,
}

fn options(clock: Arc<ManualClock>) -> ConsumerTotpOptions {
    ConsumerTotpOptions {
        clock,
        ..ConsumerTotpOptions::default()
    }
}

async fn fixture(backend: Arc<dyn Backend>) -> Fixture {
    let clock = Arc::new(ManualClock::new(T0));
    let ring = keyring(backend.clone(), clock.clone()).await;
    ring.create_consumer(new_consumer("acme"), &actor())
        .await
        .unwrap();
    let svc = ConsumerTotpService::new(backend.clone(), &secret(), options(clock.clone())).unwrap();
    Fixture {
        backend,
        clock,
        svc,
    }
}

/// Enrolls and confirms `acme`; returns its raw secret.
async fn enrolled(f: &Fixture) -> Vec<u8> {
    let enrollment = f.svc.enroll("acme", &actor()).await.unwrap();
    let secret = base32_decode(enrollment.secret_base32.expose()).unwrap();
    let code = totp::code_at(&secret, f.clock.now_secs());
    assert!(f.svc.confirm("acme", &code, &actor()).await.unwrap());
    secret
}

fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn wrong_right_replayed(f: Fixture) {
    let secret = enrolled(&f).await;
    f.clock.advance(totp::STEP_SECS);
    let code = totp::code_at(&secret, f.clock.now_secs());
    assert_eq!(
        f.svc.verify("acme", &wrong(&code)).await.unwrap(),
        StepUpOutcome::Invalid
    );
    assert_eq!(
        f.svc.verify("acme", &code).await.unwrap(),
        StepUpOutcome::Accepted
    );
    assert_eq!(
        f.svc.verify("acme", &code).await.unwrap(),
        StepUpOutcome::Replayed
    );
    // An older step (still inside the drift window) is a replay too.
    let previous = totp::code_at(&secret, f.clock.now_secs() - totp::STEP_SECS);
    assert_eq!(
        f.svc.verify("acme", &previous).await.unwrap(),
        StepUpOutcome::Replayed
    );
    f.clock.advance(totp::STEP_SECS);
    let next = totp::code_at(&secret, f.clock.now_secs());
    assert_eq!(
        f.svc.verify("acme", &next).await.unwrap(),
        StepUpOutcome::Accepted
    );
}

async fn enrollment_lifecycle(f: Fixture) {
    assert_eq!(f.svc.status("acme").await.unwrap(), TotpStatus::NotEnrolled);
    assert!(matches!(
        f.svc.enroll("ghost", &actor()).await,
        Err(StoreError::NotFound(_))
    ));
    let enrollment = f.svc.enroll("acme", &actor()).await.unwrap();
    assert!(enrollment
        .uri
        .expose()
        .starts_with("otpauth://totp/rampart:acme?secret="));
    assert!(enrollment.qr.expose().lines().count() > 10);
    assert_eq!(f.svc.status("acme").await.unwrap(), TotpStatus::Pending);
    assert!(!f.svc.is_enrolled("acme").await.unwrap());
    let secret = base32_decode(enrollment.secret_base32.expose()).unwrap();
    let code = totp::code_at(&secret, T0);
    // Pending is not enough for step-up.
    assert_eq!(
        f.svc.verify("acme", &code).await.unwrap(),
        StepUpOutcome::NotEnrolled
    );
    assert!(!f
        .svc
        .confirm("acme", &wrong(&code), &actor())
        .await
        .unwrap());
    assert!(f.svc.confirm("acme", &code, &actor()).await.unwrap());
    assert!(f.svc.is_enrolled("acme").await.unwrap());
    // The confirming code is spent.
    assert_eq!(
        f.svc.verify("acme", &code).await.unwrap(),
        StepUpOutcome::Replayed
    );

    // Re-enrolling keeps the confirmed secret until the new one is confirmed.
    let again = f.svc.enroll("acme", &actor()).await.unwrap();
    assert_eq!(
        f.svc.status("acme").await.unwrap(),
        TotpStatus::Enabled { pending: true }
    );
    f.clock.advance(totp::STEP_SECS);
    let old_code = totp::code_at(&secret, f.clock.now_secs());
    assert_eq!(
        f.svc.verify("acme", &old_code).await.unwrap(),
        StepUpOutcome::Accepted
    );
    assert_ne!(again.secret_base32, enrollment.secret_base32);

    assert!(f.svc.disable("acme", &actor()).await.unwrap());
    assert!(!f.svc.disable("acme", &actor()).await.unwrap());
    assert_eq!(
        f.svc.verify("acme", &old_code).await.unwrap(),
        StepUpOutcome::NotEnrolled
    );
    let actions: Vec<String> = f
        .backend
        .recent_audit(20)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("consumer.totp"))
        .map(|e| format!("{} {} {}", e.action, e.target, e.actor))
        .collect();
    assert_eq!(
        actions,
        [
            "consumer.totp_disable acme ops",
            "consumer.totp_enroll acme ops",
            "consumer.totp_confirm acme ops",
            "consumer.totp_enroll acme ops",
        ]
    );
}

async fn lockout_after_wrong_codes(f: Fixture) {
    let secret = enrolled(&f).await;
    f.clock.advance(totp::STEP_SECS);
    let code = totp::code_at(&secret, f.clock.now_secs());
    for _ in 0..6 {
        assert_eq!(
            f.svc.verify("acme", &wrong(&code)).await.unwrap(),
            StepUpOutcome::Invalid
        );
    }
    // Locked: even the right code is refused without being checked.
    assert_eq!(
        f.svc.verify("acme", &code).await.unwrap(),
        StepUpOutcome::Locked {
            retry_after_secs: 30
        }
    );
    let audit = f.backend.recent_audit(1).await.unwrap();
    assert_eq!(audit[0].action, "consumer.totp_locked");
    assert_eq!(audit[0].detail["failures"], 6);
    f.clock.advance(30);
    let code = totp::code_at(&secret, f.clock.now_secs());
    assert_eq!(
        f.svc.verify("acme", &code).await.unwrap(),
        StepUpOutcome::Accepted
    );
    let record = f.backend.get_consumer_totp("acme").await.unwrap().unwrap();
    assert_eq!(record.failed_attempts, 0, "success resets the count");
    assert_eq!(record.locked_until, None);
}

async fn secrets_are_sealed_and_redacted(f: Fixture) {
    let secret = enrolled(&f).await;
    let b32 = rampart_store::secret::base32_encode(&secret);
    let record = f.backend.get_consumer_totp("acme").await.unwrap().unwrap();
    let sealed = record.secret.clone().unwrap();
    assert!(sealed.0.starts_with("v1:"));
    assert!(!sealed.0.contains(&b32));
    let debug = format!("{record:?} {:?}", f.svc);
    assert!(!debug.contains(&b32) && !debug.contains(&sealed.0));
    assert!(debug.contains("enabled: true"));
    // A different server secret cannot open it: a clear error, no panic.
    let other = ServerSecret::new(&[9u8; 32]).unwrap();
    let svc =
        ConsumerTotpService::new(f.backend.clone(), &other, options(f.clock.clone())).unwrap();
    let code = totp::code_at(&secret, f.clock.now_secs() + totp::STEP_SECS);
    let err = svc.verify("acme", &code).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)));
    assert!(!err.to_string().contains(&b32));
}

fn sqlite() -> (tempfile::TempDir, Arc<dyn Backend>) {
    let env = sqlite_env();
    (env.dir, Arc::new(env.store))
}

#[tokio::test]
async fn sqlite_wrong_right_and_replayed_codes() {
    let (_dir, backend) = sqlite();
    wrong_right_replayed(fixture(backend).await).await;
}

#[tokio::test]
async fn sqlite_enrollment_lifecycle_and_audit() {
    let (_dir, backend) = sqlite();
    enrollment_lifecycle(fixture(backend).await).await;
}

#[tokio::test]
async fn sqlite_lockout_after_wrong_codes() {
    let (_dir, backend) = sqlite();
    lockout_after_wrong_codes(fixture(backend).await).await;
}

#[tokio::test]
async fn sqlite_secrets_are_sealed_and_redacted() {
    let (_dir, backend) = sqlite();
    secrets_are_sealed_and_redacted(fixture(backend).await).await;
}

async fn redis_backend(url: &str) -> Arc<dyn Backend> {
    Arc::new(RedisStore::connect(RedisOptions::new(url)).await.unwrap())
}

#[tokio::test]
async fn redis_wrong_right_and_replayed_codes() {
    let redis = rampart_testkit::RedisServer::start();
    wrong_right_replayed(fixture(redis_backend(&redis.url()).await).await).await;
}

#[tokio::test]
async fn redis_enrollment_lifecycle_and_audit() {
    let redis = rampart_testkit::RedisServer::start();
    enrollment_lifecycle(fixture(redis_backend(&redis.url()).await).await).await;
}

#[tokio::test]
async fn redis_lockout_after_wrong_codes() {
    let redis = rampart_testkit::RedisServer::start();
    lockout_after_wrong_codes(fixture(redis_backend(&redis.url()).await).await).await;
}

#[tokio::test]
async fn redis_secrets_are_sealed_and_redacted() {
    let redis = rampart_testkit::RedisServer::start();
    secrets_are_sealed_and_redacted(fixture(redis_backend(&redis.url()).await).await).await;
}

/// Two gateway instances (separate connections) present the same code at
/// the same moment, many times over: exactly one may accept it each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_instances_cannot_both_accept_one_code() {
    let redis = rampart_testkit::RedisServer::start();
    let f = fixture(redis_backend(&redis.url()).await).await;
    let secret = enrolled(&f).await;
    let other = ConsumerTotpService::new(
        redis_backend(&redis.url()).await,
        &common::secret(),
        options(f.clock.clone()),
    )
    .unwrap();
    for _ in 0..20 {
        f.clock.advance(totp::STEP_SECS);
        let code = totp::code_at(&secret, f.clock.now_secs());
        let (a, b) = tokio::join!(
            tokio::spawn({
                let svc = f.svc.clone();
                let code = code.clone();
                async move { svc.verify("acme", &code).await.unwrap() }
            }),
            tokio::spawn({
                let svc = other.clone();
                async move { svc.verify("acme", &code).await.unwrap() }
            }),
        );
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| *o != StepUpOutcome::Accepted);
        assert_eq!(outcomes, [StepUpOutcome::Accepted, StepUpOutcome::Replayed]);
    }
}

/// A database written by the previous release (schema 1, with data) gains
/// the `consumer_totp` table on open and keeps its consumers.
#[tokio::test]
async fn sqlite_schema_1_database_upgrades_to_consumer_totp() {
    let dir = tempfile::tempdir().unwrap();
    {
        let f = fixture(Arc::new(SqliteStore::open(dir.path()).unwrap())).await;
        enrolled(&f).await;
    }
    let conn = rusqlite::Connection::open(dir.path().join("rampart.db")).unwrap();
    conn.execute_batch("DROP TABLE consumer_totp; DELETE FROM schema_version WHERE version = 2;")
        .unwrap();
    assert_eq!(
        rampart_store::sqlite::migrations::current_version(&conn).unwrap(),
        1
    );
    drop(conn);

    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(store.get_consumer("acme").await.unwrap().is_some());
    assert!(store.get_consumer_totp("acme").await.unwrap().is_none());
    let svc = ConsumerTotpService::new(Arc::new(store), &secret(), ConsumerTotpOptions::default())
        .unwrap();
    assert!(svc.enroll("acme", &actor()).await.is_ok());
}
