//! The `rampart` binary: `check` on every shipped example and on broken
//! files, `version`, and the demo serving its sample API through the gateway.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
}

fn examples() -> PathBuf {
    Path::new(
        &std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../examples")
}

#[test]
fn check_passes_on_every_example() {
    let mut n = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = bin()
                .args(["check", "--config"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("));
            n += 1;
        }
    }
    assert!(n >= 3, "expected the demo, api and tls examples");
}

fn check_text(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, text).unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).replace(dir.path().to_str().unwrap(), "DIR"),
    )
}

#[test]
fn check_fails_with_file_line_key_and_expectation() {
    let good = std::fs::read_to_string(examples().join("api.toml")).unwrap();
    let (ok, err) = check_text(&good.replace(
        "upstream = \"api\"\nrequest_limits = { max_body_bytes = \"1MiB\"",
        "upstream = \"apii\"\nrequest_limits = { max_body_bytes = \"1MiB\"",
    ));
    assert!(!ok);
    assert!(err.contains("DIR/broken.toml:"), "{err}");
    assert!(
        err.contains("routes[1].upstream: upstream \"apii\" is not defined"),
        "{err}"
    );

    let (ok, err) =
        check_text(&good.replace("balance = \"least_connections\"", "balance = \"fastest\""));
    assert!(!ok);
    assert!(err.contains("upstreams.api.balance"), "{err}");
    assert!(
        err.contains("round_robin"),
        "names what was expected: {err}"
    );

    let (ok, err) = check_text(&good.replace("drain_timeout = \"30s\"", "drain_timout = \"30s\""));
    assert!(!ok);
    assert!(
        err.contains("broken.toml:7: server.drain_timout: unknown field"),
        "{err}"
    );
}

#[test]
fn check_reports_unreadable_certificates_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("bad.key"), "not a key").unwrap();
    let cfg = "[listeners.s]\naddress = \"127.0.0.1:0\"\n[listeners.s.tls]\ncertificates = [{ cert = \"bad.pem\", key = \"bad.key\", server_names = [\"a.test\"] }]\n\
               [upstreams.u]\nservers = [\"127.0.0.1:1\"]\n[[routes]]\nname = \"r\"\nupstream = \"u\"\n";
    let path = dir.path().join("tls.toml");
    std::fs::write(&path, cfg).unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("tls.toml:4: listeners.s.tls.certificates[0].cert: no certificate found"),
        "{err}"
    );
}

#[test]
fn version_and_help() {
    let out = bin().arg("version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("rampart "));
    let out = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check", "version"] {
        assert!(help.contains(cmd), "{help}");
    }
    let out = bin().args(["run", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--demo"));
}

/// Kills the child on drop so a failing test leaves nothing running.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_sample_api_through_the_gateway() {
    // The demo's fixed ports, rewritten to free ones so tests never collide.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (gw_port, admin_port, api_port) = (free(), free(), free());
    let text = rampart::DEMO_CONFIG
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gw_port}"))
        .replace("127.0.0.1:9901", &format!("127.0.0.1:{admin_port}"))
        .replace("127.0.0.1:18080", &format!("127.0.0.1:{api_port}"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.toml");
    std::fs::write(&path, text).unwrap();
    let _child = Child(
        bin()
            .args(["run", "--config"])
            .arg(&path)
            // The demo's store folder is relative: keep it in the temp dir.
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{gw_port}");
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", gw_port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the demo never listened");
    let users = common::get(&format!("{base}/api/users")).await;
    assert_eq!(users.status, 200);
    assert_eq!(users.json()[0]["name"], "Alice Liddell");
    let login = common::send(
        common::req("POST", &format!("{base}/api/login"))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                br#"{"username":"alice","password":"wonderland"}"#,
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(login.status, 200);
    let attack = common::get(&format!("{base}/api/users?id=1%27%20OR%20%271%27=%271")).await;
    assert_eq!(attack.status, 403);
    assert_eq!(attack.json()["reason"], "waf_blocked");
    let internal = common::get(&format!("{base}/api/internal/users")).await;
    assert_eq!(internal.status, 403);
    assert_eq!(internal.json()["reason"], "ip_not_allowed");
    let upload = common::send(
        common::req("POST", &format!("{base}/api/echo/upload"))
            .body(http_body_util::Full::new(bytes::Bytes::from(vec![
                b'a';
                4096
            ])))
            .unwrap(),
    )
    .await;
    assert_eq!(upload.status, 413);
}

#[test]
fn built_in_demo_config_loads() {
    let demo = rampart::demo_config().expect("the built-in demo config is valid");
    assert_eq!(demo.config.listeners["public"].address, "127.0.0.1:8080");
    assert!(demo.config.sample_api.is_some());
}

fn crs() -> PathBuf {
    Path::new(
        &std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora/crs")
}

#[test]
fn waf_check_loads_crs_with_no_unsupported_rule() {
    let out = bin()
        .args(["waf", "check", "--crs"])
        .arg(crs())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("unsupported rules: 0"), "{stdout}");
    let rules: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rules: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(rules > 500, "{stdout}");
}

#[test]
fn waf_check_reports_a_broken_extra_rule_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("custom.conf");
    std::fs::write(&bad, "# custom rules\nSecRule ARGS \"@rx x\" \"id:100001,phase:2,pass\"\nSecRuule ARGS \"@rx y\" \"id:100002\"\n").unwrap();
    let out = bin()
        .args(["waf", "check", "--crs"])
        .arg(crs())
        .arg("--rules")
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("custom.conf:3"), "{err}");
}

#[test]
fn waf_conformance_prints_the_summary_last() {
    // One rule file's tests, through a folder shaped like CRS's test tree.
    let dir = tempfile::tempdir().unwrap();
    let group = "REQUEST-911-METHOD-ENFORCEMENT";
    std::os::unix::fs::symlink(
        crs().join("tests/regression/tests").join(group),
        dir.path().join(group),
    )
    .unwrap();
    let out = bin()
        .args(["waf", "conformance", "--crs"])
        .arg(crs())
        .arg("--tests")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("conformance: ") && last.contains(" passed, 0 failed"),
        "{stdout}"
    );
    assert!(out.status.success());
    // An empty folder is an error, not a vacuous pass.
    let empty = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["waf", "conformance", "--crs"])
        .arg(crs())
        .arg("--tests")
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tests found"));
}

#[test]
fn waf_conformance_passes_all_of_crs_through_engine_and_front_door() {
    // The whole go-ftw suite: engine expectations in process, status-only
    // tests on the wire against an in-process gateway.
    let out = bin()
        .args(["waf", "conformance", "--crs"])
        .arg(crs())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    assert_eq!(last, "conformance: 5045 passed, 0 failed", "{stdout}");
    assert!(out.status.success());
}

#[test]
fn output_to_a_closed_pipe_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // The reader is gone before the command writes: its first print fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = bin()
        .arg("version")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}
