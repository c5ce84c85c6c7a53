//! The rampart binary's wiring: logging, the control runtime, the sample API,
//! the gateway, the admin listener, signals. The only place `anyhow` is used.

pub mod allocator;
pub mod sample_api;
pub mod waf_cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use rampart_config::{LoadedConfig, LogFormat};
use rampart_gateway::control::{self, Control};
use rampart_gateway::Gateway;

pub mod cli;

/// The demo config shipped in `examples/demo.toml`, built in.
pub const DEMO_CONFIG: &str = include_str!("../../../examples/demo.toml");

/// Loads the built-in demo config.
pub fn demo_config() -> Result<LoadedConfig, rampart_config::ConfigErrors> {
    rampart_config::parse(
        DEMO_CONFIG,
        Some(std::path::Path::new("<built-in demo>")),
        |n| std::env::var(n).ok(),
    )
}

/// Sets up `tracing` from the config (`RUST_LOG` overrides the level).
pub fn init_logging(cfg: &rampart_config::Log) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Everything started by [`start`], for `run` and for tests.
pub struct Running {
    pub gateway: std::sync::Arc<Gateway>,
    pub control: std::sync::Arc<Control>,
    pub admin: Option<SocketAddr>,
    pub sample_api: Option<SocketAddr>,
}

/// Starts the sample API (if configured), the gateway, reload triggers and
/// the admin listener on the current tokio runtime.
pub async fn start(cfg: LoadedConfig, config_path: Option<PathBuf>) -> anyhow::Result<Running> {
    let sample_api = match &cfg.config.sample_api {
        Some(s) => {
            let addr: SocketAddr = s.listen.parse().context("sample_api.listen")?;
            Some(
                sample_api::spawn(addr)
                    .await
                    .with_context(|| format!("cannot start the sample API on {addr}"))?,
            )
        }
        None => None,
    };
    let watch = cfg.config.server.watch;
    let admin_cfg = cfg.config.admin.clone();
    let mut services = rampart_gateway::services::Services::start(&cfg.config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = &cfg.config.store;
    let secret = cli::bootstrap::load_or_create_server_secret(
        &store.data_dir,
        store.secret_file.as_deref(),
    )?;
    services.identity = Some(
        rampart_gateway::services::Identity::open(&cfg.config, secret)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let gateway =
        Gateway::start_with(cfg, Arc::new(services)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let control = Control::new(gateway.clone(), config_path);
    control.spawn_sighup();
    if watch {
        control
            .spawn_watch()
            .context("cannot watch the config file")?;
    }
    let admin = if admin_cfg.enabled {
        let addr: SocketAddr = admin_cfg.listen.parse().context("admin.listen")?;
        Some(
            rampart_gateway::admin::serve(addr, control.clone())
                .await
                .with_context(|| format!("cannot start the admin listener on {addr}"))?,
        )
    } else {
        None
    };
    Ok(Running {
        gateway,
        control,
        admin,
        sample_api,
    })
}

/// Runs until SIGINT/SIGTERM, then drains.
pub fn run(cfg: LoadedConfig, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    init_logging(&cfg.config.log);
    let drain = cfg.config.server.drain_timeout.0;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("rampart-control")
        .build()?;
    rt.block_on(async move {
        let running = start(cfg, config_path).await?;
        control::stop_signal().await;
        running.gateway.shutdown(drain).await;
        Ok(())
    })
}
