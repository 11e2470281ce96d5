//! `tiffin samples`: the bundled C guests, so a newcomer has something to prove.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use tiffin_guests::{ALL, Guest};

#[derive(Args)]
pub struct SamplesArgs {
    /// Write each sample's program binary (`<name>.bin`) into this directory.
    #[arg(long, env = "TIFFIN_SAMPLES_EXPORT")]
    export: Option<PathBuf>,
}

/// Which program and input to run: shared by `tiffin prove` and `tiffin session submit`.
#[derive(Args)]
pub struct GuestArgs {
    /// The guest program binary (R0BF). Use --sample for a bundled guest instead.
    program: Option<PathBuf>,
    /// A bundled sample guest (see `tiffin samples`).
    #[arg(long, conflicts_with = "program")]
    sample: Option<String>,
    /// Read the guest input from this file.
    #[arg(long, conflicts_with = "input_hex")]
    input: Option<PathBuf>,
    /// The guest input as hex.
    #[arg(long)]
    input_hex: Option<String>,
}

impl GuestArgs {
    /// The program's bytes and a label for messages (its path or sample name).
    pub fn program(&self) -> Result<(Vec<u8>, String)> {
        match (&self.program, &self.sample) {
            (Some(path), None) => Ok((
                std::fs::read(path).with_context(|| format!("reading {path:?}"))?,
                path.display().to_string(),
            )),
            (None, Some(name)) => Ok((find(name)?.program.to_vec(), format!("sample {name}"))),
            _ => bail!("give a program path or --sample NAME"),
        }
    }

    /// Where provers can fetch the program: `file://` of the program path, or
    /// `tiffin-sample://NAME` for a bundled sample.
    pub fn program_url(&self) -> Result<String> {
        match (&self.program, &self.sample) {
            (Some(path), None) => {
                let path =
                    std::fs::canonicalize(path).with_context(|| format!("reading {path:?}"))?;
                Ok(format!("file://{}", path.display()))
            }
            (None, Some(name)) => Ok(format!("tiffin-sample://{}", find(name)?.name)),
            _ => bail!("give a program path or --sample NAME"),
        }
    }

    /// The input bytes (empty when neither --input nor --input-hex is given).
    pub fn input(&self) -> Result<Vec<u8>> {
        Ok(match (&self.input, &self.input_hex) {
            (Some(path), _) => std::fs::read(path).with_context(|| format!("reading {path:?}"))?,
            (None, Some(h)) => hex::decode(h.trim()).context("--input-hex is not valid hex")?,
            (None, None) => Vec::new(),
        })
    }
}

/// Looks a sample up by name, listing the valid names when it is unknown.
pub fn find(name: &str) -> Result<&'static Guest> {
    match ALL.iter().find(|g| g.name == name) {
        Some(g) => Ok(g),
        None => {
            let names: Vec<_> = ALL.iter().map(|g| g.name).collect();
            bail!("unknown sample guest {name:?}; available: {}", names.join(", "))
        }
    }
}

pub fn run(args: SamplesArgs) -> Result<()> {
    for g in ALL {
        println!("{:<12} {}  {} bytes", g.name, g.image_id_hex(), g.program.len());
        if let Some(dir) = &args.export {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{}.bin", g.name));
            std::fs::write(&path, g.program).with_context(|| format!("writing {path:?}"))?;
        }
    }
    Ok(())
}
