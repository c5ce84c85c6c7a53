//! `rampart`: run the gateway, check a config, print the version.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use rampart::cli;

/// The hot path allocates a few small objects per request; mimalloc's
/// per-thread heaps serve them faster than glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "rampart", about = "rampart: an API security gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// The TOML config file.
        #[arg(long, short, required_unless_present = "demo", conflicts_with = "demo")]
        config: Option<PathBuf>,
        /// Run the built-in demo: the gateway on 127.0.0.1:8080 in front of a
        /// sample JSON API, admin on 127.0.0.1:9901.
        #[arg(long)]
        demo: bool,
    },
    /// Validate a config file (and the files it names) without running it.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the version.
    Version,
    /// Operator commands: keys, consumers, bans, admin users and tokens.
    #[command(flatten)]
    Ops(cli::OpsCommand),
    /// WAF rule sets: load and report, run CRS's regression tests.
    Waf {
        #[command(subcommand)]
        command: WafCommand,
    },
}

#[derive(Subcommand)]
enum WafCommand {
    /// Load a CRS folder (plus extra rule files); print rule counts and any
    /// rule that could not be compiled.
    Check {
        /// CRS folder (with crs-setup.conf[.example] and rules/).
        #[arg(long)]
        crs: PathBuf,
        /// Extra rule files loaded after CRS.
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
    },
    /// Run CRS's go-ftw regression tests in process; the last line is
    /// `conformance: N passed, M failed[, K skipped]`.
    Conformance {
        #[arg(long)]
        crs: PathBuf,
        /// Test folder (default: CRS/tests/regression/tests).
        #[arg(long)]
        tests: Option<PathBuf>,
        /// go-ftw overrides file: tests to skip, each with a reason.
        #[arg(long)]
        overrides: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    rampart::allocator::tune();
    let command = Cli::parse().command;
    if !matches!(command, Command::Run { .. }) {
        exit_quietly_when_output_closes();
    }
    match command {
        Command::Version => {
            println!("rampart {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Check { config } => check(&config),
        Command::Ops(command) => cli::run(command),
        Command::Waf { command } => {
            let result = match command {
                WafCommand::Check { crs, rules } => rampart::waf_cli::check(&crs, &rules),
                WafCommand::Conformance {
                    crs,
                    tests,
                    overrides,
                } => rampart::waf_cli::conformance(&crs, tests.as_deref(), overrides.as_deref()),
            };
            match result {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("rampart: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run { config, demo } => {
            let loaded = match (&config, demo) {
                (Some(path), _) => rampart_config::load(path),
                (None, _) => rampart::demo_config(),
            };
            let loaded = match loaded {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            match rampart::run(loaded, config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rampart: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let result = rampart_config::load(path).and_then(|loaded| {
        let c = &loaded.config;
        let summary = format!(
            "{} listener(s), {} route(s), {} upstream(s)",
            c.listeners.len(),
            c.routes.len(),
            c.upstreams.len()
        );
        let workers = rampart_gateway::worker_count(c.server.workers);
        let services = rampart_gateway::services::Services::default();
        // JWKS sources start their loaders on a runtime; this one is dropped
        // (and the loaders with it) as soon as the check is done.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                rampart_config::ConfigErrors::from(rampart_config::ConfigError::new(
                    "",
                    e.to_string(),
                ))
            })?;
        let _entered = runtime.enter();
        rampart_gateway::snapshot::Snapshot::build(std::sync::Arc::new(loaded), workers, &services)
            .map(|_| summary)
    });
    match result {
        Ok(summary) => {
            println!("{}: ok ({summary})", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// One-shot commands print to stdout, which may be a pipe the reader closes
/// early (`rampart keys list | head -1`). Rust ignores SIGPIPE, so a print
/// to the closed pipe would panic; the default action ends the command
/// quietly instead, as for any Unix tool. Sockets are unaffected (Rust
/// sends with MSG_NOSIGNAL). Not for `run`: a server whose log pipe closes
/// must keep serving.
fn exit_quietly_when_output_closes() {
    // SAFETY: called once at start, before any other thread exists;
    // restoring a signal's default action has no other precondition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
