//! Where settings come from: a flag, else its `TIDEGATE_*` environment variable, else its
//! key in the `--config` TOML file, else its default. Every flag has both, named after its
//! long form (`--shard-memory-bytes`: `TIDEGATE_SHARD_MEMORY_BYTES`, `shard-memory-bytes`),
//! so there is one name to learn per setting and clap's own parsers check every value,
//! wherever it came from.
//!
//! clap puts flags above environment variables by itself; the file goes below both by
//! adding to the command line only the keys that neither a flag nor the environment set.

use super::Config;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Arguments that are not settings: where settings come from, or what to do instead of
/// serving. No environment variable or file key sets them, except `config`'s variable.
const NOT_SETTINGS: [&str; 4] = ["config", "check-config", "help", "version"];

/// One setting in effect, as `--check-config` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The long flag's name, which is also its key in the file.
    pub key: String,
    /// As given (or the default), before parsing.
    pub values: Vec<String>,
    /// "flag", "environment", "file" or "default".
    pub source: &'static str,
}

impl Config {
    /// The configuration of this process: its arguments, environment and `--config` file.
    /// A mistake in any of them ends the process with clap's message (status 2).
    pub fn load() -> (Config, Vec<Setting>) {
        Config::load_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// As [`Config::load`], from these arguments (the program name first).
    pub fn load_from<I, T>(args: I) -> Result<(Config, Vec<Setting>), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let given = command().try_get_matches_from(&args)?;
        let (from_file, file_keys) = match given.get_one::<PathBuf>("config") {
            Some(path) => file_arguments(path, &given)
                .map_err(|message| command().error(ErrorKind::InvalidValue, message))?,
            None => (Vec::new(), Vec::new()),
        };
        // The file's settings first, so that a flag would follow them; none of them is
        // also a flag or an environment variable (see `file_arguments`).
        let mut all = args[..1].to_vec();
        all.extend(from_file);
        all.extend_from_slice(&args[1.min(args.len())..]);
        let matches = command().try_get_matches_from(all)?;
        let settings = settings(&matches, &given, &file_keys);
        Ok((Config::from_arg_matches(&matches)?, settings))
    }
}

/// The command line `Config` describes, each flag with its environment variable.
pub fn command() -> Command {
    Config::command().mut_args(|arg| match arg.get_long() {
        Some(long) if long != "check-config" => {
            let variable = format!("TIDEGATE_{}", long.to_ascii_uppercase().replace('-', "_"));
            arg.env(variable)
        }
        _ => arg,
    })
}

/// The file's settings as `--key=value` arguments, leaving out those a flag or an
/// environment variable sets; and the keys the file gives.
fn file_arguments(path: &Path, given: &ArgMatches) -> Result<(Vec<OsString>, Vec<String>), String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {name}: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("--config {name}: not TOML: {e}"))?;
    let command = command();
    let mut arguments = Vec::new();
    for (key, value) in &table {
        let unknown = || {
            format!(
                "--config {name}: unknown key {key:?} (a key is a flag's long name, such as \
                 shard-memory-bytes; `tidegate --help` lists them)"
            )
        };
        if NOT_SETTINGS.contains(&key.as_str()) {
            return Err(format!(
                "--config {name}: {key:?} cannot be set in the file"
            ));
        }
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(key))
            .ok_or_else(unknown)?;
        let source = given.value_source(arg.get_id().as_str());
        if matches!(
            source,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let wrong = |what: &str| format!("--config {name}: {key} must be {what}");
        let values = match value {
            toml::Value::Array(items) if matches!(arg.get_action(), ArgAction::Append) => {
                items.iter().map(scalar).collect::<Option<Vec<_>>>()
            }
            toml::Value::Array(_) => return Err(wrong("one value, not a list")),
            single => scalar(single).map(|one| vec![one]),
        }
        .ok_or_else(|| wrong("a string, a number or true/false"))?;
        if !arg.get_action().takes_values() {
            // A switch such as --allow-unauthenticated: present when true.
            match values.as_slice() {
                [yes] if yes == "true" => arguments.push(format!("--{key}").into()),
                [no] if no == "false" => {}
                _ => return Err(wrong("true or false")),
            }
            continue;
        }
        arguments.extend(values.iter().map(|v| format!("--{key}={v}").into()));
    }
    Ok((arguments, table.keys().cloned().collect()))
}

/// A TOML value as a flag's text: strings as they are, numbers and booleans written out.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Every setting that has a value, and where it came from.
fn settings(matches: &ArgMatches, given: &ArgMatches, file_keys: &[String]) -> Vec<Setting> {
    command()
        .get_arguments()
        .filter_map(|arg| {
            let key = arg.get_long()?;
            if NOT_SETTINGS.contains(&key) {
                return None;
            }
            let id = arg.get_id().as_str();
            let values: Vec<String> = matches
                .get_raw(id)?
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let source = match given.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                _ if file_keys.iter().any(|k| k == key) => "file",
                _ => "default",
            };
            Some(Setting {
                key: key.to_string(),
                values,
                source,
            })
        })
        .collect()
}

impl std::fmt::Display for Setting {
    /// A line of a valid `--config` file, with where the value came from.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted: Vec<String> = self
            .values
            .iter()
            .map(|v| toml::Value::String(v.clone()).to_string())
            .collect();
        match quoted.as_slice() {
            [one] => write!(f, "{} = {one}", self.key)?,
            many => write!(f, "{} = [{}]", self.key, many.join(", "))?,
        }
        write!(f, "  # {}", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("tidegate-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write config file");
        path
    }

    fn load(args: &[&str]) -> Result<(Config, Vec<Setting>), String> {
        let mut argv = vec!["tidegate"];
        argv.extend_from_slice(args);
        Config::load_from(argv).map_err(|e| e.to_string())
    }

    #[test]
    fn the_file_fills_what_flags_leave_open() {
        let path = file(
            "fills",
            "shards = 3\nshard-memory-bytes = \"1GiB\"\nallow-unauthenticated = true\n\
             auto-create-topics = false\nlistener = [\"A=PLAINTEXT://127.0.0.1:0\", \
             \"B=PLAINTEXT://127.0.0.1:0\"]\nnode-id-base = 5\n",
        );
        let path = path.to_str().expect("utf-8 path");
        let (config, settings) = load(&["--config", path, "--node-id-base", "9"]).expect("load");
        assert_eq!(config.shards, Some(3));
        assert_eq!(config.shard_memory_bytes, Some(1 << 30));
        assert!(config.allow_unauthenticated && !config.auto_create_topics);
        assert_eq!(config.listeners.len(), 2);
        assert_eq!(config.node_id_base, 9, "a flag wins over the file");
        let source = |key: &str| settings.iter().find(|s| s.key == key).map(|s| s.source);
        assert_eq!(source("shards"), Some("file"));
        assert_eq!(source("node-id-base"), Some("flag"));
        assert_eq!(source("max-in-flight"), Some("default"));
        let line = settings
            .iter()
            .find(|s| s.key == "listener")
            .map(ToString::to_string);
        assert_eq!(
            line.as_deref(),
            Some(
                r#"listener = ["A=PLAINTEXT://127.0.0.1:0", "B=PLAINTEXT://127.0.0.1:0"]  # file"#
            )
        );
    }

    #[test]
    fn one_value_can_hold_several_listeners() {
        // As TIDEGATE_LISTENER would: an environment variable is one value.
        let (config, _) = load(&["--listener=A=PLAINTEXT://127.0.0.1:0,B=SSL://127.0.0.1:0"])
            .expect("two listeners");
        let names: Vec<_> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
    }

    #[test]
    fn file_mistakes_name_the_key() {
        let refused = |text: &str, says: &str| {
            let path = file("bad", text);
            let error = load(&["--config", path.to_str().expect("utf-8")]).expect_err(text);
            assert!(error.contains(says), "{text}: {error}");
        };
        refused(
            "shard_memory_bytes = \"1GiB\"\n",
            "unknown key \"shard_memory_bytes\"",
        );
        refused("shards = \"many\"\n", "--shards");
        refused("shards = [1, 2]\n", "shards must be one value");
        refused("allow-unauthenticated = 1\n", "true or false");
        refused("config = \"other.toml\"\n", "cannot be set in the file");
        refused("shards = \n", "not TOML");
        assert!(load(&["--config", "/nonexistent/tidegate.toml"]).is_err());
    }
}
