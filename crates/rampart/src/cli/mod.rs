//! Operator commands: `rampart keys|consumers|bans|admin …`.
//!
//! Day-to-day commands talk to a running gateway's admin API over HTTP
//! ([`client`]); the bootstrap commands (`admin create-user`,
//! `admin confirm-totp`, `admin token create --config`) work directly on
//! the embedded store named by the config file ([`bootstrap`]), so the first
//! admin and token can be made before anything is running.

pub mod bootstrap;
pub mod client;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use client::AdminClient;

/// The operator command groups, flattened into the binary's commands.
#[derive(Subcommand, Debug)]
pub enum OpsCommand {
    /// API keys (over the admin API).
    Keys {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// API consumers (over the admin API).
    Consumers {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ConsumersCommand,
    },
    /// IP bans (over the admin API).
    Bans {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: BansCommand,
    },
    /// API discovery: what the routes with `discovery = true` have seen.
    Discover {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: DiscoverCommand,
    },
    /// Admin users, tokens and the audit log.
    Admin {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum DiscoverCommand {
    /// Print the draft OpenAPI 3.1 document learnt from traffic.
    Export,
    /// Compare what was learnt with a route's OpenAPI spec: shadow
    /// endpoints (seen, undocumented) and unseen ones (documented, never seen).
    Diff {
        /// The route whose `openapi.spec` to compare with.
        #[arg(long)]
        route: String,
    },
}

/// Where the admin API is and how to authenticate to it.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Admin API base URL.
    #[arg(
        long = "admin",
        global = true,
        env = "RAMPART_ADMIN",
        default_value = "http://127.0.0.1:9901"
    )]
    pub admin_url: String,
    /// Admin token (prefer the environment variable: arguments are visible
    /// to other local users).
    #[arg(
        long,
        global = true,
        env = "RAMPART_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List keys (all, or one consumer's).
    List {
        #[arg(long)]
        consumer: Option<String>,
    },
    /// Create a key; the key is printed once.
    Create {
        /// The consumer the key belongs to.
        #[arg(long)]
        consumer: String,
        /// A label for operators ("ci", "mobile app").
        #[arg(long, default_value = "")]
        name: String,
        /// live or test.
        #[arg(long, default_value = "live")]
        env: String,
        /// Key scopes (repeatable); none = the consumer's.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Quota: a tier name or a limit such as 100/s.
        #[arg(long)]
        rate_limit: Option<String>,
        /// Lifetime in seconds; none = no expiry.
        #[arg(long)]
        ttl_secs: Option<u64>,
    },
    /// Show one key (never its secret).
    Show { key_id: String },
    /// Issue a successor; the old key works for --grace-secs more.
    Rotate {
        key_id: String,
        #[arg(long, default_value_t = 0)]
        grace_secs: u64,
    },
    /// Revoke a key now.
    Revoke { key_id: String },
}

#[derive(Subcommand, Debug)]
pub enum ConsumersCommand {
    /// List consumers.
    List,
    /// Create a consumer.
    Create {
        #[arg(long)]
        name: String,
        /// The id (default: random).
        #[arg(long)]
        id: Option<String>,
        /// Quota tier the rate limiter reads.
        #[arg(long)]
        tier: Option<String>,
        /// Scopes for keys that set none (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Networks the consumer may call from (repeatable).
        #[arg(long = "allow-cidr")]
        allowed_cidrs: Vec<String>,
    },
    /// Show one consumer.
    Show { id: String },
    /// Disable a consumer: its keys stop working at once.
    Disable { id: String },
    /// Enable a consumer.
    Enable { id: String },
    /// TOTP for MFA step-up on sensitive routes (`step_up`).
    Totp {
        #[command(subcommand)]
        command: ConsumerTotpCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum BansCommand {
    /// List active bans.
    List,
    /// Ban an IP or CIDR.
    Add {
        target: String,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
        #[arg(long, default_value = "manual")]
        reason: String,
    },
    /// Remove a ban (IP or CIDR, as listed).
    Remove { target: String },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an admin user directly in the store (password from stdin) and
    /// start TOTP enrollment.
    CreateUser {
        #[arg(long)]
        config: PathBuf,
        name: String,
        /// Read the password from the first line of stdin without a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Finish TOTP enrollment with a code from the authenticator app.
    ConfirmTotp {
        #[arg(long)]
        config: PathBuf,
        name: String,
        #[arg(long)]
        code: String,
    },
    /// Admin API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// List admin users.
    Users,
    /// Show the newest audit log entries.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token (printed once). With --config it is made directly in
    /// the store for --user; otherwise over the API for the caller.
    Create {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The token's owner (with --config).
        #[arg(long)]
        user: Option<String>,
        /// read or write (write implies read).
        #[arg(long, default_value = "read")]
        scope: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[arg(long)]
        ttl_secs: Option<u64>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { token_id: String },
}

#[derive(Subcommand, Debug)]
pub enum ConsumerTotpCommand {
    /// Start enrollment: prints the provisioning URI and a QR code (once).
    Enroll { id: String },
    /// Finish enrollment with a current code from the authenticator.
    Confirm {
        id: String,
        #[arg(long)]
        code: String,
    },
    /// Remove the consumer's TOTP.
    Disable { id: String },
    /// Show whether the consumer has TOTP.
    Status { id: String },
}

/// Runs an operator command and maps the outcome to an exit code.
pub fn run(command: OpsCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rampart: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: OpsCommand) -> anyhow::Result<()> {
    match command {
        OpsCommand::Keys { api, command } => keys(&api, command).await,
        OpsCommand::Consumers { api, command } => consumers(&api, command).await,
        OpsCommand::Bans { api, command } => bans(&api, command).await,
        OpsCommand::Admin { api, command } => admin(&api, command).await,
        OpsCommand::Discover { api, command } => discover(&api, command).await,
    }
}

async fn discover(api: &ApiArgs, command: DiscoverCommand) -> anyhow::Result<()> {
    let client = AdminClient::operations(api)?;
    let value = match command {
        DiscoverCommand::Export => client.get("/admin/discovery").await?,
        DiscoverCommand::Diff { route } => {
            let path = format!("/admin/discovery/diff?route={}", client::encode(&route));
            client.get(&path).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

const KEY_COLUMNS: &[&str] = &[
    "key_id",
    "consumer_id",
    "env",
    "name",
    "expires_at",
    "revoked_at",
    "rotated_to",
];
const CONSUMER_COLUMNS: &[&str] = &["id", "name", "tier", "state", "scopes"];
const BAN_COLUMNS: &[&str] = &["target", "reason", "source", "expires_ms"];

async fn keys(api: &ApiArgs, command: KeysCommand) -> anyhow::Result<()> {
    let client = AdminClient::new(api)?;
    match command {
        KeysCommand::List { consumer } => {
            let path = match consumer {
                Some(c) => format!("/api/keys?consumer={}", client::encode(&c)),
                None => "/api/keys".into(),
            };
            let v = client.get(&path).await?;
            output::table(api.json, &v, "keys", KEY_COLUMNS);
        }
        KeysCommand::Create {
            consumer,
            name,
            env,
            scopes,
            rate_limit,
            ttl_secs,
        } => {
            let body = json!({"name": name, "env": env, "scopes": scopes, "rate_limit": rate_limit, "ttl_secs": ttl_secs});
            let path = format!("/api/consumers/{}/keys", client::encode(&consumer));
            let v = client.post(&path, body).await?;
            output::secret_once(api.json, &v, "key", "key_id");
        }
        KeysCommand::Show { key_id } => {
            let v = client
                .get(&format!("/api/keys/{}", client::encode(&key_id)))
                .await?;
            output::record(api.json, &v);
        }
        KeysCommand::Rotate { key_id, grace_secs } => {
            let path = format!("/api/keys/{}/rotate", client::encode(&key_id));
            let v = client
                .post(&path, json!({"grace_secs": grace_secs}))
                .await?;
            output::secret_once(api.json, &v, "key", "key_id");
        }
        KeysCommand::Revoke { key_id } => {
            let path = format!("/api/keys/{}/revoke", client::encode(&key_id));
            let v = client.post(&path, json!({})).await?;
            output::record(api.json, &v);
        }
    }
    Ok(())
}

async fn consumers(api: &ApiArgs, command: ConsumersCommand) -> anyhow::Result<()> {
    let client = AdminClient::new(api)?;
    let v = match command {
        ConsumersCommand::List => {
            let v = client.get("/api/consumers").await?;
            output::table(api.json, &v, "consumers", CONSUMER_COLUMNS);
            return Ok(());
        }
        ConsumersCommand::Create {
            name,
            id,
            tier,
            scopes,
            allowed_cidrs,
        } => {
            let body = json!({"name": name, "id": id, "tier": tier, "scopes": scopes, "allowed_cidrs": allowed_cidrs});
            client.post("/api/consumers", body).await?
        }
        ConsumersCommand::Show { id } => {
            client
                .get(&format!("/api/consumers/{}", client::encode(&id)))
                .await?
        }
        ConsumersCommand::Disable { id } => {
            client
                .post(
                    &format!("/api/consumers/{}/disable", client::encode(&id)),
                    json!({}),
                )
                .await?
        }
        ConsumersCommand::Enable { id } => {
            client
                .post(
                    &format!("/api/consumers/{}/enable", client::encode(&id)),
                    json!({}),
                )
                .await?
        }
        ConsumersCommand::Totp { command } => return consumer_totp(api, &client, command).await,
    };
    output::record(api.json, &v);
    Ok(())
}

async fn consumer_totp(
    api: &ApiArgs,
    client: &AdminClient,
    command: ConsumerTotpCommand,
) -> anyhow::Result<()> {
    let path = |id: &str| format!("/api/consumers/{}/totp", client::encode(id));
    let v = match command {
        ConsumerTotpCommand::Enroll { id } => {
            let v = client.post(&path(&id), json!({})).await?;
            if !api.json {
                println!("{}", v["provisioning_uri"].as_str().unwrap_or_default());
                println!("{}", v["qr"].as_str().unwrap_or_default());
                eprintln!("scan it now: it is shown only once; then `rampart consumers totp confirm {id} --code <code>`");
                return Ok(());
            }
            v
        }
        ConsumerTotpCommand::Confirm { id, code } => {
            client
                .post(&format!("{}/confirm", path(&id)), json!({ "code": code }))
                .await?
        }
        ConsumerTotpCommand::Disable { id } => client.delete(&path(&id)).await?,
        ConsumerTotpCommand::Status { id } => client.get(&path(&id)).await?,
    };
    output::record(api.json, &v);
    Ok(())
}

async fn bans(api: &ApiArgs, command: BansCommand) -> anyhow::Result<()> {
    let client = AdminClient::new(api)?;
    match command {
        BansCommand::List => {
            let v = client.get("/api/bans").await?;
            output::table(api.json, &v, "bans", BAN_COLUMNS);
        }
        BansCommand::Add {
            target,
            ttl_secs,
            reason,
        } => {
            let body = json!({"target": target, "ttl_secs": ttl_secs, "reason": reason});
            output::record(api.json, &client.post("/api/bans", body).await?);
        }
        BansCommand::Remove { target } => {
            let path = format!("/api/bans?target={}", client::encode(&target));
            output::record(api.json, &client.delete(&path).await?);
        }
    }
    Ok(())
}

async fn admin(api: &ApiArgs, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser {
            config,
            name,
            password_stdin,
        } => bootstrap::create_user(&config, &name, password_stdin).await,
        AdminCommand::ConfirmTotp { config, name, code } => {
            bootstrap::confirm_totp(&config, &name, &code).await
        }
        AdminCommand::Token { command } => token(api, command).await,
        AdminCommand::Users => {
            let v = AdminClient::new(api)?.get("/api/users").await?;
            output::table(
                api.json,
                &v,
                "users",
                &[
                    "username",
                    "totp_enabled",
                    "disabled",
                    "failed_logins",
                    "locked_until",
                ],
            );
            Ok(())
        }
        AdminCommand::Audit { limit } => {
            let v = AdminClient::new(api)?
                .get(&format!("/api/audit?limit={limit}"))
                .await?;
            output::table(
                api.json,
                &v,
                "entries",
                &["id", "at", "actor", "action", "target", "source_ip"],
            );
            Ok(())
        }
    }
}

async fn token(api: &ApiArgs, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            config: Some(config),
            user,
            scope,
            name,
            ttl_secs,
        } => {
            let user = user.ok_or_else(|| anyhow::anyhow!("--user is required with --config"))?;
            bootstrap::create_token(&config, &user, &scope, &name, ttl_secs, api.json).await
        }
        TokenCommand::Create {
            config: None,
            scope,
            name,
            ttl_secs,
            ..
        } => {
            let body = json!({"name": name, "scopes": [scope], "ttl_secs": ttl_secs});
            let v = AdminClient::new(api)?.post("/api/tokens", body).await?;
            output::secret_once(api.json, &v, "token", "token_id");
            Ok(())
        }
        TokenCommand::List => {
            let v = AdminClient::new(api)?.get("/api/tokens").await?;
            output::table(
                api.json,
                &v,
                "tokens",
                &[
                    "token_id",
                    "username",
                    "name",
                    "scopes",
                    "expires_at",
                    "revoked_at",
                ],
            );
            Ok(())
        }
        TokenCommand::Revoke { token_id } => {
            let path = format!("/api/tokens/{}/revoke", client::encode(&token_id));
            let v: Value = AdminClient::new(api)?.post(&path, json!({})).await?;
            output::record(api.json, &v);
            Ok(())
        }
    }
}
