//! What an operator sees of configuration: `--version` naming the commit, `--check-config`
//! judging a setup without starting, and flags, `TIDEGATE_*` variables and a `--config`
//! file giving the same running gateway, flags first, then the environment, then the file.

use crate::common::*;
use kafka_protocol::messages::MetadataRequest;
use std::path::PathBuf;
use std::process::{Command, Output};

fn tidegate(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidegate"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run tidegate")
}

fn config_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("tidegate-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write config file");
    path
}

/// `--check-config`: exit code, settings printed, what it said on stderr.
fn check(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut all = vec!["--check-config"];
    all.extend_from_slice(args);
    let out = tidegate(&all, env);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The node ids Metadata advertises: `--node-id-base` and one per shard.
fn node_ids(server: &Server) -> Vec<i32> {
    let metadata = server.client().call(&MetadataRequest::default(), 12);
    let mut ids: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort();
    ids
}

#[test]
fn version_names_the_commit_built_from() {
    let out = tidegate(&["--version"], &[]);
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let prefix = format!("tidegate {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line:?}"));
    let head = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    match head {
        // Built from this checkout: its commit (the build script follows HEAD).
        Some(head) => assert_eq!(commit, head),
        None => assert_eq!(commit, "unknown"),
    }
}

#[test]
fn check_config_passes_a_good_file_and_names_what_is_wrong() {
    let good = config_file(
        "good",
        "shards = 2\nnode-id-base = 7\nshard-memory-bytes = \"256MiB\"\n\
         auto-create-topics = false\nsasl-mechanisms = [\"PLAIN\"]\n",
    );
    let good = good.to_str().expect("utf-8 path");
    let (code, settings, stderr) = check(&["--config", good], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    for line in [
        "shards = \"2\"  # file",
        "shard-memory-bytes = \"256MiB\"  # file",
        "auto-create-topics = \"false\"  # file",
        "max-in-flight = \"64\"  # default",
    ] {
        assert!(
            settings.lines().any(|l| l == line),
            "{line:?} not in\n{settings}"
        );
    }
    // What it prints is a config file giving the same settings.
    let again = config_file(
        "printed",
        &settings
            .lines()
            .filter(|l| !l.ends_with("# default"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let (code, reprinted, stderr) = check(&["--config", again.to_str().expect("utf-8")], &[]);
    assert_eq!((code, reprinted), (Some(0), settings), "{stderr}");

    let refused = |text: &str, says: &str| {
        let path = config_file("bad", text);
        let (code, _, stderr) = check(&["--config", path.to_str().expect("utf-8")], &[]);
        assert_eq!(code, Some(2), "{text}: {stderr}");
        assert!(stderr.contains(says), "{text}: {says:?} not in {stderr}");
    };
    refused(
        "shard_memory_bytes = \"1GiB\"\n",
        "unknown key \"shard_memory_bytes\"",
    );
    refused("shards = 0\n", "--shards must be at least 1");
    refused("shards = \"several\"\n", "--shards");
    // Start-up's own checks, without starting: the certificate files are read.
    refused(
        "listener = [\"S=SSL://127.0.0.1:0\"]\nssl-certificate = \"/nonexistent/c.pem\"\n\
         ssl-key = \"/nonexistent/k.pem\"\n",
        "/nonexistent/c.pem",
    );
    let (code, _, stderr) = check(&["--config", "/nonexistent/tidegate.toml"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn flags_environment_and_file_give_the_same_running_gateway() {
    let file = config_file("same", "shards = 2\nnode-id-base = 7\n");
    let file = file.to_str().expect("utf-8 path");
    let by_flags = Server::start_with_env(&["--shards", "2", "--node-id-base", "7"], &[]);
    let by_env = Server::start_with_env(
        &[],
        &[("TIDEGATE_SHARDS", "2"), ("TIDEGATE_NODE_ID_BASE", "7")],
    );
    let by_file = Server::start_with_env(&["--config", file], &[]);
    for server in [&by_flags, &by_env, &by_file] {
        assert_eq!(node_ids(server), [7, 8]);
        assert_eq!(server.brokers.len(), 2);
    }
    // And --check-config says so, naming where each came from.
    let settings = |args: &[&str], env: &[(&str, &str)]| {
        let (code, printed, stderr) = check(args, env);
        assert_eq!(code, Some(0), "{stderr}");
        let values: Vec<String> = printed
            .lines()
            .map(|l| l.split("  #").next().unwrap_or(l).to_string())
            .collect();
        (values, printed)
    };
    let (flags, _) = settings(&["--shards", "2", "--node-id-base", "7"], &[]);
    let (env, printed) = settings(
        &[],
        &[("TIDEGATE_SHARDS", "2"), ("TIDEGATE_NODE_ID_BASE", "7")],
    );
    assert!(
        printed.contains("node-id-base = \"7\"  # environment"),
        "{printed}"
    );
    let (from_file, printed) = settings(&["--config", file], &[]);
    assert!(
        printed.contains("node-id-base = \"7\"  # file"),
        "{printed}"
    );
    assert_eq!(flags, env);
    assert_eq!(flags, from_file);
}

#[test]
fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
    let file = config_file("precedence", "node-id-base = 5\nshards = 1\n");
    let file = file.to_str().expect("utf-8 path");
    let env = [("TIDEGATE_NODE_ID_BASE", "6")];
    let server = Server::start_with_env(&["--config", file, "--node-id-base", "7"], &env);
    assert_eq!(node_ids(&server), [7]);
    let server = Server::start_with_env(&["--config", file], &env);
    assert_eq!(node_ids(&server), [6]);
    let server = Server::start_with_env(&["--config", file], &[]);
    assert_eq!(node_ids(&server), [5]);
}

/// The cells of a README.md table row (`\|` inside a cell is a literal bar).
fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().expect("a cell").push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("a cell").push(c),
        }
    }
    cells.iter().map(|c| c.trim().to_string()).collect()
}

#[test]
fn every_flag_has_a_row_in_the_readme_with_its_default() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let rows: Vec<Vec<String>> = readme
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(cells)
        .collect();
    let command = tidegate::config::Config::command();
    let mut checked = 0;
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        if matches!(long, "help" | "version") {
            continue;
        }
        let flag = format!("`--{long}");
        let row = rows
            .iter()
            .find(|cells| {
                cells[0].split(", ").any(|named| {
                    named == format!("{flag}`") || named.starts_with(&format!("{flag} "))
                })
            })
            .unwrap_or_else(|| panic!("--{long} has no row in README.md's flags table"));
        for default in arg.get_default_values() {
            let default = format!("`{}`", default.to_string_lossy());
            assert!(
                row.get(1).is_some_and(|cell| cell.contains(&default)),
                "README.md gives --{long} the default {:?}, not {default}",
                row.get(1)
            );
        }
        checked += 1;
    }
    assert!(checked > 40, "only {checked} flags found");
}
