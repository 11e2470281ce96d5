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
        println!("{:<10} {}  {} bytes", g.name, g.image_id_hex(), g.program.len());
        if let Some(dir) = &args.export {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{}.bin", g.name));
            std::fs::write(&path, g.program).with_context(|| format!("writing {path:?}"))?;
        }
    }
    Ok(())
}
