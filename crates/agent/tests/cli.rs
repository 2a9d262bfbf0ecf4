//! The command line of the real binary: errors are clear and exit codes mean something.

mod common;

use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(common::AGENT_BIN).args(args).output().unwrap()
}

#[test]
fn check_config_accepts_the_shipped_example_and_names_bad_keys() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/agent.toml");
    let out = agent(&["check-config", "--config", example]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("agent.toml");
    std::fs::write(
        &bad,
        "[server]\nurl = \"ws://127.0.0.1:1/ws\"\napi_key = \"A-B-1\"\n[metrics]\ninterval_seconds = 5\n",
    )
    .unwrap();
    let out = agent(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metrics.interval_seconds") && err.contains("10..=3600"),
        "{err}"
    );

    let out = agent(&["run", "--config", "/nonexistent/agent.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/agent.toml"));
}

#[test]
fn version_prints_name_and_version() {
    let out = agent(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("gururmm-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn install_without_systemd_says_so() {
    if std::path::Path::new("/run/systemd/system").exists() {
        // A machine with systemd would really install the unit: not in a test.
        return;
    }
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/agent.toml");
    let out = agent(&["install", "--config", example]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("systemd is not running"), "{err}");
    assert!(!std::path::Path::new("/etc/systemd/system/gururmm-agent.service").exists());
}

/// Plain ws:// to a host other than this machine is a config error naming the key, for
/// check-config and run alike, unless allow_insecure = true says the risk is accepted.
#[test]
fn plain_ws_to_a_remote_host_needs_allow_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    let path = file.to_str().unwrap();
    let server = "[server]\nurl = \"ws://example.com/ws\"\napi_key = \"A-B-1\"\n";
    std::fs::write(&file, server).unwrap();
    for command in ["check-config", "run"] {
        let out = agent(&[command, "--config", path]);
        assert_eq!(out.status.code(), Some(2), "{command}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("server.url")
                && err.contains("allow_insecure = true")
                && err.contains("example.com"),
            "{command}: {err}"
        );
    }
    std::fs::write(&file, format!("{server}allow_insecure = true\n")).unwrap();
    let out = agent(&["check-config", "--config", path]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    std::fs::write(
        &file,
        "[server]\nurl = \"ws://localhost:1/ws\"\napi_key = \"A-B-1\"\n",
    )
    .unwrap();
    let out = agent(&["check-config", "--config", path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "loopback needs no flag: {out:?}"
    );
}
