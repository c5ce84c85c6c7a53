//! `FeedSet`: several named allow/deny feeds compiled into tries, reloaded when files change.
//!
//! Lookups read an `arc-swap`ped snapshot, so they never wait for a reload. A reload re-reads
//! only the files whose modification time or size changed, rebuilds the tries off to the side
//! and swaps them in whole. A file that vanishes or cannot be read during a reload keeps its
//! last good entries (logged and counted); only the initial load treats it as an error.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use ipnet::IpNet;

use crate::feed::{parse_feed, BadLine, FeedEntry, FeedFormat};
use crate::trie::IpTrie;

/// Feed files larger than this are refused (a runaway download must not eat the heap).
pub const MAX_FEED_BYTES: u64 = 256 * 1024 * 1024;

/// What a match on a list means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListAction {
    /// Trusted: an allow match wins over every deny list (and the lead may skip other checks).
    Allow,
    /// Blocked.
    Deny,
}

/// One feed to load.
#[derive(Clone, Debug)]
pub struct FeedSpec {
    /// Name used in matches, logs and metric labels (e.g. `spamhaus_drop`).
    pub name: String,
    /// File to read.
    pub path: PathBuf,
    /// File format; `Auto` guesses per load.
    pub format: FeedFormat,
    /// Allow or deny.
    pub action: ListAction,
}

/// The answer of [`FeedSet::check`]: which list matched and why. Cloning is cheap (no heap).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// Name of the feed that matched.
    pub list: Arc<str>,
    /// Allow or deny.
    pub action: ListAction,
    /// The most specific prefix of that action's lists containing the address.
    pub net: IpNet,
    /// The feed's annotation for the entry (e.g. `SBL123`), if any.
    pub reason: Option<Arc<str>>,
}

/// Parse statistics of one feed, for metrics and logs.
#[derive(Clone, Debug)]
pub struct FeedStats {
    /// Feed name.
    pub name: Arc<str>,
    /// File path.
    pub path: PathBuf,
    /// Entries accepted at the last successful load.
    pub entries: usize,
    /// Malformed lines skipped at the last successful load.
    pub bad_lines: usize,
    /// The first bad lines of that load, for logs.
    pub bad_line_samples: Vec<BadLine>,
    /// Format used (after auto-detection).
    pub format: FeedFormat,
    /// When the entries in use were read.
    pub loaded_at: SystemTime,
    /// Error of the latest failed reload, cleared by the next successful one.
    pub last_error: Option<String>,
}

/// Errors of the initial load.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The file could not be read.
    #[error("feed {name}: cannot read {path}: {source}")]
    Read {
        /// Feed name.
        name: String,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FEED_BYTES`].
    #[error("feed {name}: {path} is {size} bytes, above the {MAX_FEED_BYTES}-byte limit")]
    TooLarge {
        /// Feed name.
        name: String,
        /// Path.
        path: PathBuf,
        /// Size found.
        size: u64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

struct FeedState {
    spec: FeedSpec,
    name: Arc<str>,
    stamp: FileStamp,
    entries: Arc<Vec<FeedEntry>>,
    stats: FeedStats,
}

#[derive(Clone)]
struct Tagged {
    list: Arc<str>,
    reason: Option<Arc<str>>,
}

#[derive(Default)]
struct Compiled {
    allow: IpTrie<Tagged>,
    deny: IpTrie<Tagged>,
}

/// Several feeds, compiled for lookup. Share it as `Arc<FeedSet>`.
pub struct FeedSet {
    feeds: Mutex<Vec<FeedState>>,
    compiled: ArcSwap<Compiled>,
}

impl std::fmt::Debug for FeedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSet")
            .field("feeds", &self.stats().len())
            .finish()
    }
}

impl FeedSet {
    /// Reads and compiles every feed. Fails when a file is missing, unreadable or too large;
    /// malformed lines are skipped and reported in [`FeedSet::stats`] and the log.
    pub fn load(specs: Vec<FeedSpec>) -> Result<FeedSet, FeedError> {
        let mut feeds = Vec::with_capacity(specs.len());
        for spec in specs {
            let (stamp, entries, stats) = read_feed(&spec)?;
            feeds.push(FeedState {
                name: stats.name.clone(),
                spec,
                stamp,
                entries: Arc::new(entries),
                stats,
            });
        }
        let compiled = compile(&feeds);
        feeds.iter().for_each(|feed| publish_stats(&feed.stats));
        Ok(FeedSet {
            feeds: Mutex::new(feeds),
            compiled: ArcSwap::from_pointee(compiled),
        })
    }

    /// An empty set (no feeds configured): every check answers `None`.
    pub fn empty() -> FeedSet {
        FeedSet {
            feeds: Mutex::new(Vec::new()),
            compiled: ArcSwap::from_pointee(Compiled::default()),
        }
    }

    /// Looks `ip` up: the most specific allow match if any, else the most specific deny match.
    /// Lock-free and allocation-free.
    pub fn check(&self, ip: IpAddr) -> Option<Match> {
        let compiled = self.compiled.load();
        let hit = |trie: &IpTrie<Tagged>, action| {
            trie.lookup(ip).map(|(net, tag)| Match {
                list: tag.list.clone(),
                action,
                net,
                reason: tag.reason.clone(),
            })
        };
        hit(&compiled.allow, ListAction::Allow).or_else(|| hit(&compiled.deny, ListAction::Deny))
    }

    /// Re-reads feeds whose file changed (mtime or size) and swaps in new tries when any did.
    /// Returns the names of the feeds that were reloaded.
    pub fn reload_if_changed(&self) -> Vec<Arc<str>> {
        self.reload(false)
    }

    /// Re-reads every feed regardless of file stamps (interval refresh, admin "reload").
    pub fn reload_all(&self) -> Vec<Arc<str>> {
        self.reload(true)
    }

    /// Current per-feed statistics.
    pub fn stats(&self) -> Vec<FeedStats> {
        let feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        feeds.iter().map(|feed| feed.stats.clone()).collect()
    }

    /// Starts a tokio task polling the files every `poll` and forcing a full re-read every
    /// `force_every` (if set). The task stops when the returned handle is aborted.
    pub fn spawn_reloader(
        self: &Arc<Self>,
        poll: Duration,
        force_every: Option<Duration>,
    ) -> tokio::task::JoinHandle<()> {
        let set = Arc::clone(self);
        tokio::spawn(async move {
            let mut last_full = tokio::time::Instant::now();
            let mut ticker = tokio::time::interval(poll);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let force = force_every.is_some_and(|every| last_full.elapsed() >= every);
                if force {
                    last_full = tokio::time::Instant::now();
                }
                let set = Arc::clone(&set);
                // File reads block; keep them off the async workers.
                let _ = tokio::task::spawn_blocking(move || set.reload(force)).await;
            }
        })
    }

    fn reload(&self, force: bool) -> Vec<Arc<str>> {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reloaded = Vec::new();
        for feed in feeds.iter_mut() {
            if reload_one(feed, force) {
                reloaded.push(feed.name.clone());
            }
        }
        if !reloaded.is_empty() {
            self.compiled.store(Arc::new(compile(&feeds)));
        }
        reloaded
    }
}

/// Reloads one feed when due; keeps the old entries on failure. True when entries changed.
fn reload_one(feed: &mut FeedState, force: bool) -> bool {
    let changed = match stamp_of(&feed.spec.path) {
        Ok(stamp) => force || stamp != feed.stamp,
        Err(_) => true, // let read_feed produce the error message
    };
    if !changed {
        return false;
    }
    match read_feed(&feed.spec) {
        Ok((stamp, entries, stats)) => {
            tracing::info!(feed = %feed.name, entries = stats.entries, bad_lines = stats.bad_lines, "ip feed reloaded");
            publish_stats(&stats);
            feed.stamp = stamp;
            feed.entries = Arc::new(entries);
            feed.stats = stats;
            true
        }
        Err(error) => {
            tracing::warn!(feed = %feed.name, %error, "ip feed reload failed; keeping the previous entries");
            metrics::counter!("rampart_reputation_feed_reload_errors_total", "feed" => feed.name.to_string())
                .increment(1);
            feed.stats.last_error = Some(error.to_string());
            false
        }
    }
}

fn stamp_of(path: &Path) -> std::io::Result<FileStamp> {
    let meta = fs::metadata(path)?;
    Ok(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

fn read_feed(spec: &FeedSpec) -> Result<(FileStamp, Vec<FeedEntry>, FeedStats), FeedError> {
    let read_error = |source| FeedError::Read {
        name: spec.name.clone(),
        path: spec.path.clone(),
        source,
    };
    let stamp = stamp_of(&spec.path).map_err(read_error)?;
    if stamp.len > MAX_FEED_BYTES {
        return Err(FeedError::TooLarge {
            name: spec.name.clone(),
            path: spec.path.clone(),
            size: stamp.len,
        });
    }
    let bytes = fs::read(&spec.path).map_err(read_error)?;
    // Invalid UTF-8 turns into replacement characters, which then fail as bad lines.
    let text = String::from_utf8_lossy(&bytes);
    let parsed = parse_feed(&text, spec.format, &spec.path.display().to_string());
    for bad in &parsed.bad_lines {
        tracing::warn!(feed = %spec.name, "skipping malformed feed line: {bad}");
    }
    let stats = FeedStats {
        name: Arc::from(spec.name.as_str()),
        path: spec.path.clone(),
        entries: parsed.entries.len(),
        bad_lines: parsed.bad_line_count,
        bad_line_samples: parsed.bad_lines,
        format: parsed.format,
        loaded_at: SystemTime::now(),
        last_error: None,
    };
    Ok((stamp, parsed.entries, stats))
}

fn publish_stats(stats: &FeedStats) {
    let feed = stats.name.to_string();
    metrics::gauge!("rampart_reputation_feed_entries", "feed" => feed.clone())
        .set(stats.entries as f64);
    metrics::gauge!("rampart_reputation_feed_bad_lines", "feed" => feed)
        .set(stats.bad_lines as f64);
}

/// Builds both tries. For a prefix listed by several feeds of one action, the first feed wins.
fn compile(feeds: &[FeedState]) -> Compiled {
    let mut compiled = Compiled::default();
    for feed in feeds {
        let trie = match feed.spec.action {
            ListAction::Allow => &mut compiled.allow,
            ListAction::Deny => &mut compiled.deny,
        };
        for entry in feed.entries.iter() {
            if trie.get_exact(entry.net).is_none() {
                let tag = Tagged {
                    list: feed.name.clone(),
                    reason: entry.reason.clone(),
                };
                trie.insert(entry.net, tag);
            }
        }
    }
    compiled
}
