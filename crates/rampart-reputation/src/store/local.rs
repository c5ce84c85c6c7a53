//! Single-node store: everything in memory, bans and offence counts saved to a JSON file.
//!
//! The file (`<data_dir>/bans.json`) is rewritten after every change through a temporary file,
//! `fsync` and rename, so a crash leaves either the old or the new version, never half of one.
//! Memory is bounded: when a table is full the oldest entries make room.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{BanStore, StoreError, StoreFuture};
use crate::ban::{prune_expired, BanIndex, BanInfo, BanMap};
use crate::threat::decayed;

/// Name of the ban file inside the data directory.
pub const BAN_FILE: &str = "bans.json";

/// Options of [`LocalBanStore`].
#[derive(Clone, Debug)]
pub struct LocalStoreOptions {
    /// Directory for `bans.json`; `None` keeps bans in memory only. Default `None`.
    pub data_dir: Option<PathBuf>,
    /// Most bans kept; past it the ban expiring soonest is dropped. Default 100 000.
    pub max_bans: usize,
    /// Most clients with a score or offence count; past it the least recently seen 10 %
    /// are forgotten. Default 1 000 000.
    pub max_tracked: usize,
}

impl Default for LocalStoreOptions {
    fn default() -> Self {
        LocalStoreOptions {
            data_dir: None,
            max_bans: 100_000,
            max_tracked: 1_000_000,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Offence {
    count: u32,
    last_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Score {
    value: f64,
    at_ms: u64,
}

#[derive(Default)]
struct State {
    bans: BanMap,
    scores: HashMap<IpNet, Score>,
    offences: HashMap<IpNet, Offence>,
}

/// What `bans.json` holds.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    bans: Vec<BanInfo>,
    offences: Vec<(IpNet, Offence)>,
}

/// In-memory ban store with optional file persistence.
pub struct LocalBanStore {
    options: LocalStoreOptions,
    state: Mutex<State>,
    index: BanIndex,
}

impl std::fmt::Debug for LocalBanStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBanStore")
            .field("data_dir", &self.options.data_dir)
            .field("bans", &self.index.len())
            .finish()
    }
}

impl LocalBanStore {
    /// Opens the store, loading `bans.json` from the data directory when present (expired
    /// entries are dropped). A missing file is an empty store; an unreadable or corrupt one is
    /// an error, so bans are never silently lost.
    pub fn open(options: LocalStoreOptions, now_ms: u64) -> Result<LocalBanStore, StoreError> {
        let mut state = State::default();
        if let Some(path) = ban_file(&options) {
            if let Some(snapshot) = read_snapshot(&path)? {
                state.bans = snapshot.bans.into_iter().map(|b| (b.target, b)).collect();
                state.offences = snapshot.offences.into_iter().collect();
                prune_expired(&mut state.bans, now_ms);
            }
        }
        let store = LocalBanStore {
            options,
            index: BanIndex::new(),
            state: Mutex::new(state),
        };
        store.index.replace(store.lock().bans.values());
        Ok(store)
    }

    /// An in-memory store with default limits.
    pub fn in_memory() -> LocalBanStore {
        LocalBanStore {
            options: LocalStoreOptions::default(),
            index: BanIndex::new(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rebuilds the index and rewrites the file after a ban-table change.
    fn commit_bans(&self, state: &State) -> Result<(), StoreError> {
        self.index.replace(state.bans.values());
        self.persist(state)
    }

    fn persist(&self, state: &State) -> Result<(), StoreError> {
        let Some(path) = ban_file(&self.options) else {
            return Ok(());
        };
        let snapshot = Snapshot {
            version: 1,
            bans: state.bans.values().cloned().collect(),
            offences: state.offences.iter().map(|(k, v)| (*k, *v)).collect(),
        };
        write_atomically(&path, &snapshot).inspect_err(|error| {
            tracing::error!(%error, "cannot save bans");
            metrics::counter!("rampart_reputation_persist_errors_total").increment(1);
        })
    }

    fn ban_now(&self, ban: BanInfo) -> Result<(), StoreError> {
        let mut state = self.lock();
        prune_expired(&mut state.bans, ban.created_ms);
        if !state.bans.contains_key(&ban.target) && state.bans.len() >= self.options.max_bans {
            evict_soonest_expiring(&mut state.bans);
        }
        state.bans.insert(ban.target, ban);
        self.commit_bans(&state)
    }

    fn unban_now(&self, target: IpNet) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let removed = state.bans.remove(&target.trunc()).is_some();
        if removed {
            self.commit_bans(&state)?;
        }
        Ok(removed)
    }

    fn add_points_now(&self, key: IpNet, points: f64, now_ms: u64, half_life_ms: u64) -> f64 {
        let mut state = self.lock();
        let limit = self.options.max_tracked;
        if !state.scores.contains_key(&key) && state.scores.len() >= limit {
            forget_oldest(&mut state.scores, |score| score.at_ms);
        }
        let score = state.scores.entry(key).or_insert(Score {
            value: 0.0,
            at_ms: now_ms,
        });
        let value = decayed(
            score.value,
            now_ms.saturating_sub(score.at_ms),
            half_life_ms,
        ) + points;
        *score = Score {
            value,
            at_ms: now_ms.max(score.at_ms),
        };
        value
    }

    fn record_offence_now(
        &self,
        key: IpNet,
        now_ms: u64,
        memory_ms: u64,
    ) -> Result<u32, StoreError> {
        let mut state = self.lock();
        if !state.offences.contains_key(&key) && state.offences.len() >= self.options.max_tracked {
            state
                .offences
                .retain(|_, o| now_ms.saturating_sub(o.last_ms) < memory_ms);
            forget_oldest(&mut state.offences, |offence| offence.last_ms);
        }
        let entry = state.offences.entry(key).or_insert(Offence {
            count: 0,
            last_ms: now_ms,
        });
        let forgotten = now_ms.saturating_sub(entry.last_ms) >= memory_ms;
        entry.count = if forgotten {
            1
        } else {
            entry.count.saturating_add(1)
        };
        entry.last_ms = now_ms;
        let count = entry.count;
        self.persist(&state)?;
        Ok(count)
    }
}

impl BanStore for LocalBanStore {
    fn is_banned(&self, ip: IpAddr, now_ms: u64) -> Option<BanInfo> {
        self.index.lookup(ip, now_ms)
    }

    fn list(&self, now_ms: u64) -> Vec<BanInfo> {
        self.index.active(now_ms)
    }

    fn add_points(
        &self,
        key: IpNet,
        points: f64,
        now_ms: u64,
        half_life_ms: u64,
    ) -> StoreFuture<'_, f64> {
        let value = self.add_points_now(key, points, now_ms, half_life_ms);
        Box::pin(async move { Ok(value) })
    }

    fn score(&self, key: IpNet, now_ms: u64, half_life_ms: u64) -> StoreFuture<'_, f64> {
        let value = self.lock().scores.get(&key).map_or(0.0, |score| {
            decayed(
                score.value,
                now_ms.saturating_sub(score.at_ms),
                half_life_ms,
            )
        });
        Box::pin(async move { Ok(value) })
    }

    fn clear_score(&self, key: IpNet) -> StoreFuture<'_, ()> {
        self.lock().scores.remove(&key);
        Box::pin(async { Ok(()) })
    }

    fn record_offence(&self, key: IpNet, now_ms: u64, memory_ms: u64) -> StoreFuture<'_, u32> {
        let result = self.record_offence_now(key, now_ms, memory_ms);
        Box::pin(async move { result })
    }

    fn ban(&self, ban: BanInfo) -> StoreFuture<'_, ()> {
        let result = self.ban_now(ban);
        Box::pin(async move { result })
    }

    fn unban(&self, target: IpNet) -> StoreFuture<'_, bool> {
        let result = self.unban_now(target);
        Box::pin(async move { result })
    }
}

fn ban_file(options: &LocalStoreOptions) -> Option<PathBuf> {
    options.data_dir.as_ref().map(|dir| dir.join(BAN_FILE))
}

fn file_error(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read_snapshot(path: &Path) -> Result<Option<Snapshot>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(file_error(path, error)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| file_error(path, format!("corrupt: {error}")))
}

/// Writes `<path>.tmp`, syncs it, renames it over `path`, then syncs the directory.
fn write_atomically(path: &Path, snapshot: &Snapshot) -> Result<(), StoreError> {
    let json = serde_json::to_vec(snapshot).map_err(|error| file_error(path, error))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|error| file_error(dir, error))?;
    let temp = path.with_extension("json.tmp");
    let mut file = fs::File::create(&temp).map_err(|error| file_error(&temp, error))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|error| file_error(&temp, error))?;
    fs::rename(&temp, path).map_err(|error| file_error(path, error))?;
    // Make the rename itself durable; not all platforms allow syncing a directory.
    if let Ok(dir_handle) = fs::File::open(dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(())
}

fn evict_soonest_expiring(bans: &mut BanMap) {
    let soonest = bans
        .values()
        .min_by_key(|ban| ban.expires_ms)
        .map(|ban| ban.target);
    if let Some(target) = soonest {
        bans.remove(&target);
        metrics::counter!("rampart_reputation_bans_evicted_total").increment(1);
    }
}

/// Drops the least recently touched tenth of a full table (amortises the O(n) scan).
fn forget_oldest<V>(table: &mut HashMap<IpNet, V>, touched_ms: impl Fn(&V) -> u64) {
    let mut times: Vec<u64> = table.values().map(&touched_ms).collect();
    let cut = times.len() / 10;
    if cut == 0 {
        table.clear();
        return;
    }
    let (_, cutoff, _) = times.select_nth_unstable(cut);
    let cutoff = *cutoff;
    table.retain(|_, value| touched_ms(value) > cutoff);
}
