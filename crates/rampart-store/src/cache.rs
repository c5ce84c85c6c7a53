//! The in-memory key cache every instance verifies against: HMAC digest ->
//! key, plus consumers. One read lock and two hash lookups per request; the
//! digest is already uniformly random (and attackers cannot steer HMAC
//! outputs without the server secret), so its first 8 bytes are the hash.

use crate::keyformat::KeyEnv;
use crate::model::{ApiKeyRecord, Consumer, ConsumerState};
use crate::secret::Digest;
use http::HeaderValue;
use ipnet::IpNet;
use rampart_core::IdentityHeaders;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Hashes a [`Digest`] by taking its first 8 bytes.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Digest hashes as one 32-byte slice (after its length prefix).
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(buf);
        }
    }

    fn write_usize(&mut self, _len: usize) {
        // The array length is constant: ignore it.
    }
}

type DigestMap<V> = HashMap<Digest, V, BuildHasherDefault<DigestHasher>>;

/// Usage noted on the request path, written later in one batch.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PendingUsage {
    pub at: u64,
    pub ip: Option<IpAddr>,
    pub dirty: bool,
}

/// A key record with the parts a verification hands out pre-shared.
pub(crate) struct CachedKey {
    pub record: ApiKeyRecord,
    pub key_id: Arc<str>,
    /// The key's own scopes and their header value; `None` = use the
    /// consumer's.
    pub scopes: Option<(Arc<[String]>, Option<HeaderValue>)>,
    pub rate_limit: Option<Arc<str>>,
    pub env: KeyEnv,
    pub usage: Mutex<PendingUsage>,
    /// What `usage` last noted, read without its lock.
    pub noted: UsageMirror,
}

/// The time and address a key's usage last noted, in atomics: most uses
/// repeat the last second and address, and then the request path needs
/// neither the lock nor a write. Updated only under the usage lock; a read
/// racing an update at worst takes the locked path for nothing, or skips a
/// note of the same second that the racing writer is making.
#[derive(Default)]
pub(crate) struct UsageMirror {
    at: AtomicU64,
    ip: [AtomicU64; 2],
}

impl UsageMirror {
    pub fn matches(&self, at: u64, ip: IpAddr) -> bool {
        let [hi, lo] = ip_words(ip);
        self.at.load(Ordering::Relaxed) == at
            && self.ip[0].load(Ordering::Relaxed) == hi
            && self.ip[1].load(Ordering::Relaxed) == lo
    }

    pub fn set(&self, at: u64, ip: IpAddr) {
        let [hi, lo] = ip_words(ip);
        self.ip[0].store(hi, Ordering::Relaxed);
        self.ip[1].store(lo, Ordering::Relaxed);
        self.at.store(at, Ordering::Relaxed);
    }
}

fn ip_words(ip: IpAddr) -> [u64; 2] {
    let v6 = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    let n = u128::from(v6);
    [(n >> 64) as u64, n as u64]
}

impl CachedKey {
    pub fn new(record: ApiKeyRecord) -> CachedKey {
        CachedKey {
            key_id: Arc::from(record.key_id.as_str()),
            scopes: (!record.scopes.is_empty()).then(|| {
                let header = IdentityHeaders::scopes_value(&record.scopes);
                (Arc::from(record.scopes.clone()), header)
            }),
            rate_limit: record.rate_limit.as_deref().map(Arc::from),
            env: record.env,
            usage: Mutex::new(PendingUsage::default()),
            noted: UsageMirror::default(),
            record,
        }
    }
}

pub(crate) struct CachedConsumer {
    pub id: Arc<str>,
    pub tier: Option<Arc<str>>,
    pub scopes: Arc<[String]>,
    /// Its id and scopes as upstream header values, rendered once.
    pub headers: IdentityHeaders,
    pub allowed_cidrs: Vec<IpNet>,
    pub active: bool,
}

impl CachedConsumer {
    pub fn new(c: &Consumer) -> CachedConsumer {
        CachedConsumer {
            id: Arc::from(c.id.as_str()),
            tier: c.tier.as_deref().map(Arc::from),
            scopes: Arc::from(c.scopes.clone()),
            headers: IdentityHeaders::of(&c.id, &c.scopes),
            allowed_cidrs: c.allowed_cidrs.clone(),
            active: c.state == ConsumerState::Active,
        }
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.allowed_cidrs.is_empty() || self.allowed_cidrs.iter().any(|net| net.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match IPv4 networks.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[derive(Default)]
pub(crate) struct Cache {
    pub by_digest: DigestMap<Arc<CachedKey>>,
    pub digest_of: HashMap<String, Digest>,
    pub consumers: HashMap<String, Arc<CachedConsumer>>,
}

impl Cache {
    pub fn build(consumers: &[Consumer], keys: Vec<ApiKeyRecord>) -> Cache {
        let mut cache = Cache::default();
        for c in consumers {
            cache.put_consumer(c);
        }
        for k in keys {
            cache.put_key(k);
        }
        cache
    }

    pub fn put_key(&mut self, record: ApiKeyRecord) {
        let previous = self
            .digest_of
            .remove(&record.key_id)
            .and_then(|d| self.by_digest.remove(&d));
        let entry = CachedKey::new(record);
        if let Some(old) = previous {
            // Keep usage noted but not yet flushed.
            *lock(&entry.usage) = *lock(&old.usage);
        }
        self.digest_of
            .insert(entry.record.key_id.clone(), entry.record.digest);
        self.by_digest.insert(entry.record.digest, Arc::new(entry));
    }

    pub fn remove_key(&mut self, key_id: &str) {
        if let Some(digest) = self.digest_of.remove(key_id) {
            self.by_digest.remove(&digest);
        }
    }

    pub fn put_consumer(&mut self, c: &Consumer) {
        self.consumers
            .insert(c.id.clone(), Arc::new(CachedConsumer::new(c)));
    }

    pub fn remove_consumer(&mut self, id: &str) {
        self.consumers.remove(id);
    }
}

/// Locks a mutex, recovering from poisoning (the data is plain values).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
