//! The control side: where reloads come from (SIGHUP, file changes, the admin
//! API) and the signals that stop the gateway.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use rampart_config::ConfigErrors;
use tokio::sync::{mpsc, Mutex};

use crate::Gateway;

/// A gateway together with the file it was loaded from.
pub struct Control {
    pub gateway: Arc<Gateway>,
    pub config_path: Option<PathBuf>,
    /// Serialises reloads: two triggers at once must not interleave.
    lock: Mutex<()>,
}

impl Control {
    pub fn new(gateway: Arc<Gateway>, config_path: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Control {
            gateway,
            config_path,
            lock: Mutex::new(()),
        })
    }

    /// Re-reads the config file and applies it; errors leave the old config.
    pub async fn reload_from_disk(&self) -> Result<(), ConfigErrors> {
        let _guard = self.lock.lock().await;
        let Some(path) = self.config_path.clone() else {
            return Err(rampart_config::ConfigError::new(
                "",
                "this gateway runs on a built-in config and has no file to reload",
            )
            .into());
        };
        let loaded = tokio::task::spawn_blocking(move || rampart_config::load(&path))
            .await
            .map_err(|e| {
                ConfigErrors::from(rampart_config::ConfigError::new(
                    "",
                    format!("reload task failed: {e}"),
                ))
            })?;
        match loaded {
            Ok(l) => self.gateway.reload(l),
            Err(e) => {
                self.gateway.reload_failed(e.clone());
                Err(e)
            }
        }
    }

    /// Reloads on SIGHUP (Unix).
    pub fn spawn_sighup(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!(target: "rampart::config", "SIGHUP: reloading");
                let _ = me.reload_from_disk().await;
            }
        });
    }

    /// Watches the config file and every TLS file it names; reloads on change.
    /// Changes are debounced so an editor's write-rename dance reloads once.
    pub fn spawn_watch(self: &Arc<Self>) -> notify::Result<()> {
        let Some(path) = self.config_path.clone() else {
            return Ok(());
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev {
                if !ev.kind.is_access() {
                    let _ = tx.send(());
                }
            }
        })?;
        let mut watched = Vec::new();
        for file in self.watched_files(&path) {
            // Watch folders, not files: editors replace files, which drops file watches.
            if let Some(dir) = file.parent() {
                if !watched.contains(&dir.to_path_buf()) {
                    watcher.watch(dir, RecursiveMode::NonRecursive)?;
                    watched.push(dir.to_path_buf());
                }
            }
        }
        let me = self.clone();
        let files = self.watched_files(&path);
        tokio::spawn(async move {
            let _watcher = watcher; // lives as long as the task
            let mut last = fingerprint(&files);
            while rx.recv().await.is_some() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                while rx.try_recv().is_ok() {}
                let now = fingerprint(&files);
                if now != last {
                    last = now;
                    tracing::info!(target: "rampart::config", "config or certificate file changed: reloading");
                    let _ = me.reload_from_disk().await;
                }
            }
        });
        Ok(())
    }

    fn watched_files(&self, config: &std::path::Path) -> Vec<PathBuf> {
        let mut files = vec![config.to_path_buf()];
        let snap = self.gateway.snapshot();
        for l in snap.config.config.listeners.values() {
            if let Some(tls) = &l.tls {
                for c in &tls.certificates {
                    files.push(c.cert.clone());
                    files.push(c.key.clone());
                }
                if let Some(ca) = &tls.client_auth {
                    files.push(ca.ca.clone());
                }
            }
        }
        files
    }
}

/// Modification times and sizes: reload only when something really changed.
fn fingerprint(files: &[PathBuf]) -> Vec<Option<(std::time::SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}
