//! `bench`: placeholder.
use std::path::PathBuf;
pub struct Config { pub quick: bool, pub out: PathBuf, pub bin_dir: PathBuf }
pub fn run(_cfg: &Config) -> Result<(), String> { Err("not yet".into()) }
