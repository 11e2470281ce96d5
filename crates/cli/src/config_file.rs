//! `tiffin.toml`: every subcommand's flags from a file (`--config` / `TIFFIN_CONFIG`), under
//! flags and environment variables: flag > environment > file > default.
//!
//! ```toml
//! data_dir = "/var/lib/tiffin"     # top level: every subcommand that has the flag
//! [up]                             # one table per subcommand, its flags' long names
//! po2 = 18
//! max_input_size = "256MiB"
//! ```
//!
//! The file is read with the `toml` crate and applied through clap itself: each key the
//! command line and the environment left unset becomes the flag it names, so a value from the
//! file is parsed and checked exactly as the flag would be. A key no flag has is an error that
//! names it. `tiffin config print <subcommand> [flags]` shows each setting with its source.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// The subcommand-level keys of a config file that apply to one invocation.
#[derive(Debug, Default, PartialEq)]
pub struct FileSettings {
    /// Flag long name → its values (several for a repeatable flag).
    pub values: BTreeMap<String, Vec<String>>,
}

/// Where the config file is: `tiffin --config PATH …` (before the subcommand: after it,
/// `--config` is the subcommand's own, e.g. the broker's `broker.toml`), else `TIFFIN_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if !a.starts_with('-') || a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("TIFFIN_CONFIG").filter(|p| !p.is_empty()).map(PathBuf::from)
}

/// A TOML value as the text of a flag value (arrays: one per element).
fn flag_values(key: &str, v: &toml::Value) -> Result<Vec<String>> {
    Ok(match v {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Integer(i) => vec![i.to_string()],
        toml::Value::Float(f) => vec![f.to_string()],
        toml::Value::Boolean(b) => vec![b.to_string()],
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(flag_values(key, item)?);
            }
            out
        }
        other => bail!("config key {key:?}: a {} is not a flag value", other.type_str()),
    })
}

/// The settings for `sub` from the parsed file: top-level keys every subcommand with that flag
/// takes, then the `[sub]` table over them. Unknown tables and keys are errors naming them.
pub fn settings_for(file: &toml::Table, root: &Command, sub: &str) -> Result<FileSettings> {
    let subs: Vec<&Command> = root.get_subcommands().collect();
    let has_flag = |cmd: &Command, key: &str| flag(cmd, key).is_some();
    let mut values = BTreeMap::new();
    for (key, v) in file {
        if let toml::Value::Table(table) = v {
            let Some(cmd) = subs.iter().find(|c| c.get_name() == key) else {
                bail!("unknown table [{key}] in the config file: tables are subcommands");
            };
            if let Some((k, _)) = table.iter().find(|(k, _)| !has_flag(cmd, k)) {
                let flag = k.replace('_', "-");
                bail!(
                    "unknown key {k:?} in [{key}] of the config file: `tiffin {key}` has no --{flag}"
                );
            }
            continue;
        }
        if !subs.iter().any(|c| has_flag(c, key)) {
            let flag = key.replace('_', "-");
            bail!("unknown key {key:?} in the config file: no subcommand has --{flag}");
        }
        if let Some(cmd) = subs.iter().find(|c| c.get_name() == sub)
            && has_flag(cmd, key)
        {
            values.insert(key.clone(), flag_values(key, v)?);
        }
    }
    if let Some(toml::Value::Table(table)) = file.get(sub) {
        for (k, v) in table {
            values.insert(k.clone(), flag_values(k, v)?);
        }
    }
    Ok(FileSettings { values })
}

/// The named (non-positional) argument of `cmd` whose long name is `key` (`_` or `-`).
fn flag<'a>(cmd: &'a Command, key: &str) -> Option<&'a clap::Arg> {
    let long = key.replace('_', "-");
    cmd.get_arguments().find(|a| a.get_long() == Some(long.as_str()))
}

/// Reads and parses the file.
pub fn read(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("parsing the config file {} (TOML)", path.display()))
}

/// `args` with the file's settings for the invoked subcommand added as flags, except those the
/// command line or the environment already set. Returns the new arguments and the ids of the
/// flags the file set.
pub fn apply(
    root: &Command,
    args: Vec<OsString>,
    file: &toml::Table,
) -> Result<(Vec<OsString>, Vec<String>)> {
    let first = root.clone().ignore_errors(true).try_get_matches_from(&args).ok();
    let Some((sub, matches)) = first.as_ref().and_then(ArgMatches::subcommand) else {
        return Ok((args, Vec::new()));
    };
    let cmd = root.find_subcommand(sub).expect("a parsed subcommand exists");
    let settings = settings_for(file, root, sub)?;
    let Some(at) = args.iter().position(|a| a == sub) else { return Ok((args, Vec::new())) };
    let mut added = Vec::new();
    let mut from_file = Vec::new();
    for (key, values) in &settings.values {
        let arg = flag(cmd, key).expect("settings_for checked every key");
        let id = arg.get_id().as_str();
        let given = matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if given {
            continue;
        }
        let long = arg.get_long().expect("flags have long names");
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => {
                if values.iter().any(|v| v == "true") {
                    added.push(OsString::from(format!("--{long}")));
                }
            }
            _ => added.extend(values.iter().map(|v| OsString::from(format!("--{long}={v}")))),
        }
        from_file.push(id.to_string());
    }
    let mut out = args;
    out.splice(at + 1..at + 1, added);
    Ok((out, from_file))
}

/// One line per flag of the invoked subcommand: `key = "value"  # source`, secrets hidden.
pub fn describe(
    cmd: &Command,
    matches: &ArgMatches,
    from_file: &[String],
    path: Option<&Path>,
) -> String {
    let mut out = String::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if long == "help" || long == "version" {
            continue;
        }
        let key = long.replace('-', "_");
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            _ if from_file.iter().any(|f| f == id) => match path {
                Some(p) => format!("file {}", p.display()),
                None => "file".into(),
            },
            Some(ValueSource::CommandLine) => "flag".into(),
            Some(ValueSource::EnvVariable) => {
                format!(
                    "environment {}",
                    arg.get_env().map(|e| e.to_string_lossy()).unwrap_or_default()
                )
            }
            Some(ValueSource::DefaultValue) => "default".into(),
            _ => "unset".into(),
        };
        let shown = if values.is_empty() {
            out.push_str(&format!("# {key}  (unset)\n"));
            continue;
        } else if arg.is_hide_env_values_set() {
            "\"<hidden>\"".to_string()
        } else if values.len() == 1 {
            toml::Value::String(values[0].clone()).to_string()
        } else {
            toml::Value::Array(values.into_iter().map(toml::Value::String).collect()).to_string()
        };
        out.push_str(&format!("{key} = {shown}  # {source}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction, Command};

    use super::*;

    fn cli() -> Command {
        let up = Command::new("up")
            .arg(Arg::new("po2").long("po2").env("TEST_CFG_PO2").default_value("20"))
            .arg(Arg::new("data_dir").long("data-dir").default_value("./tiffin-data"))
            .arg(Arg::new("verbose").long("verbose").action(ArgAction::SetTrue))
            .arg(Arg::new("peer").long("peer").action(ArgAction::Append));
        let agent = Command::new("agent")
            .arg(Arg::new("data_dir").long("data-dir"))
            .arg(Arg::new("kinds").long("kinds"));
        Command::new("tiffin").subcommand(up).subcommand(agent)
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn file(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let f =
            file("data_dir = \"/srv\"\n[up]\npo2 = 18\nverbose = true\npeer = [\"a\", \"b\"]\n");
        let (args, from_file) = apply(&cli(), os(&["tiffin", "up", "--po2", "16"]), &f).unwrap();
        let m = cli().get_matches_from(args);
        let (_, up) = m.subcommand().unwrap();
        assert_eq!(up.get_one::<String>("po2").unwrap(), "16", "the flag wins");
        assert_eq!(up.get_one::<String>("data_dir").unwrap(), "/srv", "top-level key applies");
        assert!(up.get_flag("verbose"));
        let peers: Vec<&String> = up.get_many("peer").unwrap().collect();
        assert_eq!(peers, ["a", "b"]);
        assert!(!from_file.contains(&"po2".to_string()));
        assert!(from_file.contains(&"data_dir".to_string()));
    }

    #[test]
    fn unknown_keys_and_tables_are_named() {
        let err = settings_for(&file("[up]\npo3 = 1\n"), &cli(), "up").unwrap_err().to_string();
        assert!(err.contains("\"po3\"") && err.contains("[up]"), "{err}");
        let err = settings_for(&file("[down]\npo2 = 1\n"), &cli(), "up").unwrap_err().to_string();
        assert!(err.contains("[down]"), "{err}");
        let err = settings_for(&file("colour = 1\n"), &cli(), "up").unwrap_err().to_string();
        assert!(err.contains("\"colour\""), "{err}");
        let err = settings_for(&file("[up]\npo2 = { a = 1 }\n"), &cli(), "up").unwrap_err();
        assert!(err.to_string().contains("table"), "{err}");
        // A top-level key another subcommand has is fine, and not applied here.
        let s = settings_for(&file("kinds = \"prove\"\n"), &cli(), "up").unwrap();
        assert!(s.values.is_empty());
    }

    #[test]
    fn the_path_comes_from_the_flag_anywhere() {
        assert_eq!(config_path(&os(&["t", "--config", "a.toml", "up"])), Some("a.toml".into()));
        assert_eq!(config_path(&os(&["t", "--config=b.toml", "up"])), Some("b.toml".into()));
        // After the subcommand it is the subcommand's own flag (the broker's broker.toml).
        let broker = os(&["t", "broker", "--config", "broker.toml"]);
        assert_eq!(config_path(&broker), std::env::var_os("TIFFIN_CONFIG").map(PathBuf::from));
    }

    #[test]
    fn describe_names_each_source() {
        let f = file("[up]\ndata_dir = \"/srv\"\n");
        let (args, from_file) = apply(&cli(), os(&["tiffin", "up", "--po2", "16"]), &f).unwrap();
        let m = cli().get_matches_from(args);
        let (_, up) = m.subcommand().unwrap();
        let root = cli();
        let text = describe(root.find_subcommand("up").unwrap(), up, &from_file, None);
        assert!(text.contains("po2 = \"16\"  # flag"), "{text}");
        assert!(text.contains("data_dir = \"/srv\"  # file"), "{text}");
        assert!(text.contains("verbose = \"false\"  # default"), "{text}");
    }
}
