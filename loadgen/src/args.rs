//! A small command-line parser: `--name VALUE`, `--name=VALUE` and bare `--flag`s.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A command line loadgen cannot run: what is wrong with it.
#[derive(Debug)]
pub struct Usage(pub String);

pub struct Args {
    command: String,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    /// Parses `argv` (without the program name) for `command`, which accepts the options
    /// `valued` (that take a value) and `flags` (that do not).
    pub fn parse(
        command: &str,
        argv: &[String],
        valued: &[&str],
        flags: &[&str],
    ) -> Result<Args, Usage> {
        let mut options = Vec::new();
        let mut rest = argv.iter();
        while let Some(arg) = rest.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
                _ => (arg.as_str(), None),
            };
            if flags.contains(&name) && inline.is_none() {
                options.push((name.to_string(), None));
            } else if valued.contains(&name) {
                let value = match inline {
                    Some(value) => value,
                    None => rest
                        .next()
                        .ok_or_else(|| Usage(format!("{command}: {name} needs a value")))?
                        .clone(),
                };
                options.push((name.to_string(), Some(value)));
            } else {
                let why = format!("{command}: unknown argument {arg:?} (see loadgen --help)");
                return Err(Usage(why));
            }
        }
        Ok(Args {
            command: command.to_string(),
            options,
        })
    }

    pub fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    /// Every value given for `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<String> {
        self.all(name).pop()
    }

    /// The value of `name` parsed as a `T`, or `default`; must lie in `range`.
    pub fn get<T>(&self, name: &str, default: T, range: RangeInclusive<T>) -> Result<T, Usage>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        let Some(text) = self.value(name) else {
            return Ok(default);
        };
        let command = &self.command;
        let value: T = text
            .parse()
            .map_err(|_| Usage(format!("{command}: {name} {text:?} is not a number")))?;
        if !range.contains(&value) {
            let (low, high) = (range.start(), range.end());
            return Err(Usage(format!(
                "{command}: {name} must be between {low} and {high}"
            )));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_values_flags_and_repeats() {
        let a = Args::parse(
            "x",
            &argv("--clients 5 --csv --server-arg --workers --server-arg=9"),
            &["--clients", "--server-arg"],
            &["--csv"],
        )
        .unwrap();
        assert!(a.flag("--csv"));
        assert_eq!(a.get("--clients", 1usize, 1..=10).ok(), Some(5));
        assert_eq!(a.get("--rate", 7.5f64, 0.0..=10.0).ok(), Some(7.5));
        assert_eq!(a.all("--server-arg"), vec!["--workers", "9"]);
    }

    #[test]
    fn rejects_bad_input() {
        let spec: (&[&str], &[&str]) = (&["--clients"], &["--csv"]);
        assert!(Args::parse("x", &argv("--bogus"), spec.0, spec.1).is_err());
        assert!(Args::parse("x", &argv("--clients"), spec.0, spec.1).is_err());
        let a = Args::parse("x", &argv("--clients ten"), spec.0, spec.1).unwrap();
        assert!(
            a.get("--clients", 1usize, 1..=10)
                .err()
                .is_some_and(|e| e.0.contains("not a number"))
        );
        let a = Args::parse("x", &argv("--clients 11"), spec.0, spec.1).unwrap();
        assert!(
            a.get("--clients", 1usize, 1..=10)
                .err()
                .is_some_and(|e| e.0.contains("between"))
        );
    }
}
