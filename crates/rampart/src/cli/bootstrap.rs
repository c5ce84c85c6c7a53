//! Bootstrap commands on the embedded store, without a running gateway:
//! the first admin user, TOTP confirmation, and admin tokens. Also where
//! the server secret (the HMAC key for every stored credential digest) is
//! found or created.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use rampart_store::{Actor, AdminOptions, AdminService, ServerSecret, SqliteStore, TokenScope};
use serde_json::json;

/// The server secret's file name inside the data folder.
pub const SECRET_FILE_NAME: &str = "server.secret";

/// Where the embedded store lives, from the config's `[store]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    pub data_dir: PathBuf,
    /// `None` = `<data_dir>/server.secret`, created on first use.
    pub secret_file: Option<PathBuf>,
}

impl StoreLocation {
    /// The config's `[store]` (defaults included), with paths as the
    /// gateway itself reads them (relative to the working directory).
    pub fn from_config(config: &Path) -> anyhow::Result<StoreLocation> {
        let loaded = rampart_config::load(config).map_err(|e| anyhow!("{e}"))?;
        let store = loaded.config.store;
        Ok(StoreLocation {
            data_dir: store.data_dir,
            secret_file: store.secret_file,
        })
    }

    /// The server secret: `secret_file` if set, else the data folder's.
    pub fn server_secret(&self) -> anyhow::Result<ServerSecret> {
        load_or_create_server_secret(&self.data_dir, self.secret_file.as_deref())
    }
}

/// Loads the server secret. With `secret_file` the file must exist (its
/// whole content is the key, at least 32 bytes). Without it the secret is
/// `<data_dir>/server.secret`: 32 random bytes, created with mode 0600 when
/// missing. Errors never include the secret.
pub fn load_or_create_server_secret(
    data_dir: &Path,
    secret_file: Option<&Path>,
) -> anyhow::Result<ServerSecret> {
    let path = match secret_file {
        Some(p) => p.to_path_buf(),
        None => {
            let p = data_dir.join(SECRET_FILE_NAME);
            create_secret_file(data_dir, &p)?;
            p
        }
    };
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    ServerSecret::new(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Writes 32 random bytes to `path` unless it exists. `create_new` makes a
/// concurrent first start keep whichever file was written first.
fn create_secret_file(data_dir: &Path, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if path.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    let secret = rampart_store::secret::random_bytes::<32>();
    file.write_all(&secret)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Opens the admin service on the config's embedded store.
async fn open_admin(config: &Path) -> anyhow::Result<AdminService> {
    let location = StoreLocation::from_config(config)?;
    let secret = location.server_secret()?;
    let dir = location.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
        .await
        .context("opening the store")?
        .with_context(|| format!("cannot open the store in {}", location.data_dir.display()))?;
    AdminService::new(Arc::new(store), secret, AdminOptions::default())
        .await
        .context("starting the admin service")
}

/// The local operator, for the audit log.
fn cli_actor() -> Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Actor::new(format!("cli:{user}"), None)
}

/// `rampart admin create-user`: creates the user and starts TOTP
/// enrollment, printing the provisioning URI and a terminal QR code.
pub async fn create_user(config: &Path, name: &str, password_stdin: bool) -> anyhow::Result<()> {
    let password = read_password(password_stdin)?;
    let admin = open_admin(config).await?;
    let actor = cli_actor();
    admin
        .create_admin(name, &password, &actor)
        .await
        .context("cannot create the admin user")?;
    let enrollment = admin
        .enroll_totp(name, &actor)
        .await
        .context("cannot start TOTP enrollment")?;
    println!("admin user {name} created");
    println!("scan this in an authenticator app, then run");
    println!(
        "  rampart admin confirm-totp --config {} {name} --code <6 digits>",
        config.display()
    );
    println!("{}", enrollment.uri.expose());
    println!("{}", enrollment.qr.expose());
    Ok(())
}

/// `rampart admin confirm-totp`: activates the pending TOTP secret.
pub async fn confirm_totp(config: &Path, name: &str, code: &str) -> anyhow::Result<()> {
    let admin = open_admin(config).await?;
    let ok = admin
        .confirm_totp(name, code, &cli_actor())
        .await
        .context("cannot confirm TOTP")?;
    if !ok {
        bail!("the code is not valid for the pending TOTP secret; check the device clock and try again");
    }
    println!("TOTP enabled for {name}: logins now need a code");
    Ok(())
}

/// `rampart admin token create --config`: a token made directly in the store.
pub async fn create_token(
    config: &Path,
    user: &str,
    scope: &str,
    name: &str,
    ttl_secs: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let scope = match scope {
        "read" => TokenScope::Read,
        "write" => TokenScope::Write,
        other => bail!("unknown scope {other:?}: use read or write"),
    };
    let admin = open_admin(config).await?;
    let ttl = ttl_secs.map(Duration::from_secs);
    let created = admin
        .create_token(user, name, vec![scope], ttl, &cli_actor())
        .await
        .context("cannot create the token")?;
    if json {
        let v = json!({"token_id": created.record.token_id, "token": created.token.expose(), "scopes": created.record.scopes});
        println!("{v:#}");
    } else {
        println!("token_id: {}", created.record.token_id);
        println!("token: {}", created.token.expose());
        eprintln!("store the token now: it is shown only once");
    }
    Ok(())
}

/// Reads a password: the first line of stdin; on a terminal with a prompt
/// and echo turned off.
fn read_password(no_prompt: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let interactive = !no_prompt && stdin.is_terminal();
    if interactive {
        eprint!("password: ");
        let _ = std::io::stderr().flush();
    }
    let _echo = interactive.then(EchoOff::new);
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    if interactive {
        eprintln!();
    }
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password given on stdin");
    }
    Ok(password)
}

/// Turns terminal echo off for its lifetime.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed, then filled,
        // termios struct; failures leave the terminal unchanged.
        unsafe {
            let mut term: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut term) != 0 {
                return EchoOff(None);
            }
            let saved = term;
            term.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
            }
        }
    }
}
