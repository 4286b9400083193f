//! The command line both harness binaries (`coldstart`, `cost`) share: where the
//! bootstraps and events are, how many runs, which scenarios, where the JSON and the
//! functions' log go. Each binary adds its own flags.

use std::path::PathBuf;

use anyhow::{bail, Context as _};

/// The shared flags' values.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonArgs {
    /// `--bin-dir`: holds `<function>/bootstrap`.
    pub bin_dir: PathBuf,
    /// `--events-dir`: holds `<function>/<case>.json`.
    pub events_dir: PathBuf,
    /// `--runs`.
    pub runs: usize,
    /// `--only NAME,...`: scenario or function names; empty for all.
    pub only: Vec<String>,
    /// `--json FILE`.
    pub json: Option<PathBuf>,
    /// `--log FILE`: the functions' stdout and stderr.
    pub log: Option<PathBuf>,
}

impl CommonArgs {
    /// Parses `argv` (without the program name): the shared flags here, any other through
    /// `own(flag, value)`, which answers `false` for a flag it does not know either.
    /// `source` names the file whose top documents the flags.
    pub fn parse(
        argv: impl IntoIterator<Item = String>,
        runs: usize,
        source: &str,
        mut own: impl FnMut(&str, &mut dyn FnMut() -> anyhow::Result<String>) -> anyhow::Result<bool>,
    ) -> anyhow::Result<CommonArgs> {
        let mut args = CommonArgs {
            bin_dir: PathBuf::from("target/lambda"),
            events_dir: PathBuf::from("events"),
            runs,
            only: Vec::new(),
            json: None,
            log: None,
        };
        let mut argv = argv.into_iter();
        while let Some(flag) = argv.next() {
            let mut value = || argv.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--bin-dir" => args.bin_dir = value()?.into(),
                "--events-dir" => args.events_dir = value()?.into(),
                "--runs" => args.runs = value()?.parse().context("--runs")?,
                "--only" => args.only = value()?.split(',').map(str::to_owned).collect(),
                "--json" => args.json = Some(value()?.into()),
                "--log" => args.log = Some(value()?.into()),
                other => {
                    if !own(other, &mut value)? {
                        bail!("unknown argument {other}; see the top of {source}");
                    }
                }
            }
        }
        Ok(args)
    }

    /// Whether `--only` lets the scenario `name` of `function` run.
    pub fn selects(&self, function: &str, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == function || o == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &str) -> Vec<String> {
        args.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn shared_flags_are_parsed_here_and_the_rest_by_the_binary() {
        let mut warm = 0;
        let args = CommonArgs::parse(
            argv("--runs 3 --warm 7 --only ably-token,publish --bin-dir /b --log l"),
            20,
            "x.rs",
            |flag, value| match flag {
                "--warm" => {
                    warm = value()?.parse()?;
                    Ok(true)
                }
                _ => Ok(false),
            },
        )
        .unwrap();
        assert_eq!(warm, 7);
        assert_eq!(args.runs, 3);
        assert_eq!(args.bin_dir, PathBuf::from("/b"));
        assert_eq!(args.events_dir, PathBuf::from("events"));
        assert_eq!(args.log, Some(PathBuf::from("l")));
        assert!(args.selects("ably-token", "token (bearer)"));
        assert!(args.selects("ably-publish", "publish"));
        assert!(!args.selects("ably-events", "webhook of 1 event"));

        let none = |_: &str, _: &mut dyn FnMut() -> anyhow::Result<String>| Ok(false);
        let defaults = CommonArgs::parse(argv(""), 20, "x.rs", none).unwrap();
        assert_eq!(defaults.runs, 20);
        assert!(defaults.selects("resume", "resume"));
        let err = CommonArgs::parse(argv("--bogus"), 20, "x.rs", none).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown argument --bogus; see the top of x.rs"
        );
        let err = CommonArgs::parse(argv("--runs"), 20, "x.rs", none).unwrap_err();
        assert_eq!(err.to_string(), "--runs needs a value");
    }
}
