//! The command line both harness binaries (`coldstart`, `cost`) share: where the
//! bootstraps and events are, which scenarios, where the JSON and the functions' log go.
//! Each binary flattens these into its own `clap` parser and adds its own flags
//! (`--runs` among them: the two default differently).

use std::path::PathBuf;

/// The shared flags.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct CommonArgs {
    /// Holds `<function>/bootstrap`.
    #[arg(long, default_value = "target/lambda")]
    pub bin_dir: PathBuf,
    /// Holds `<function>/<case>.json`.
    #[arg(long, default_value = "events")]
    pub events_dir: PathBuf,
    /// Scenario or function names to run, comma-separated; all when absent.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub only: Vec<String>,
    /// Writes the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Appends the functions' stdout and stderr to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

impl CommonArgs {
    /// Whether `--only` lets the scenario `name` of `function` run.
    pub fn selects(&self, function: &str, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == function || o == name)
    }
}

/// A count of at least 1 (`--runs`, `--warm`, ...).
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(err) => Err(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::Parser;

    use super::*;

    /// A binary's parser: the shared flags and one of its own.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long, default_value_t = 20, value_parser = positive)]
        runs: usize,
        #[arg(long, default_value_t = 0)]
        warm: usize,
    }

    fn parse(args: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("x").chain(args.split_whitespace()))
    }

    #[test]
    fn shared_flags_are_parsed_here_and_the_rest_by_the_binary() {
        let cli =
            parse("--runs 3 --warm 7 --only ably-token,publish --bin-dir /b --log l").unwrap();
        assert_eq!(cli.warm, 7);
        assert_eq!(cli.runs, 3);
        let args = cli.common;
        assert_eq!(args.bin_dir, PathBuf::from("/b"));
        assert_eq!(args.events_dir, PathBuf::from("events"));
        assert_eq!(args.log, Some(PathBuf::from("l")));
        assert!(args.selects("ably-token", "token (bearer)"));
        assert!(args.selects("ably-publish", "publish"));
        assert!(!args.selects("ably-events", "webhook of 1 event"));

        let defaults = parse("").unwrap();
        assert_eq!(defaults.runs, 20);
        assert_eq!(defaults.common.bin_dir, PathBuf::from("target/lambda"));
        assert!(defaults.common.selects("resume", "resume"));
        assert_eq!(
            parse("--bogus").unwrap_err().kind(),
            ErrorKind::UnknownArgument
        );
        assert_eq!(parse("--runs").unwrap_err().kind(), ErrorKind::InvalidValue);
        let zero = parse("--runs 0").unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::ValueValidation);
        assert!(zero.to_string().contains("must be at least 1"), "{zero}");
    }
}
