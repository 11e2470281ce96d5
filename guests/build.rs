//! Compiles the C guests with Debian's riscv cross compiler and packages each one as a
//! RISC Zero program binary (`R0BF`: user ELF + v1compat kernel) — exactly what risc0's own
//! guest builder emits and what Bonsai clients upload.

use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: &[(&str, &str)] = &[
    ("ECHO", "echo"),
    ("SPIN", "spin"),
    ("SHA_CHAIN", "sha-chain"),
    ("PANIC", "panic"),
    ("COMPOSE", "compose"),
    ("SET_BUILDER", "set-builder"),
];

const CFLAGS: &[&str] = &[
    "-march=rv32im",
    "-mabi=ilp32",
    "-O2",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-tree-loop-distribute-patterns",
    "-nostdlib",
    "-static",
    "-fno-pic",
    "-msmall-data-limit=0",
    "-Wall",
    "-Werror",
    "-nostartfiles",
    "-Wl,--no-relax",
    "-Wl,--build-id=none",
    "-Wl,--no-warn-rwx-segments",
];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=sdk");
    println!("cargo:rerun-if-changed=programs");
    println!("cargo:rerun-if-env-changed=TIFFIN_RISCV_CC");
    let cc = std::env::var("TIFFIN_RISCV_CC").unwrap_or_else(|_| "riscv64-unknown-elf-gcc".into());

    let mut generated = String::new();
    for (ident, name) in GUESTS {
        let user_elf = out.join(format!("{name}.elf"));
        compile(&cc, &root, name, &user_elf);
        let user = std::fs::read(&user_elf).unwrap();
        let blob =
            risc0_binfmt::ProgramBinary::new(&user, risc0_zkos_v1compat::V1COMPAT_ELF).encode();
        let image_id = risc0_binfmt::compute_image_id(&blob)
            .unwrap_or_else(|e| panic!("guest {name}: cannot compute image id: {e}"));
        let bin = out.join(format!("{name}.bin"));
        std::fs::write(&bin, &blob).unwrap();
        let words: Vec<String> = image_id.as_words().iter().map(|w| format!("{w:#010x}")).collect();
        generated.push_str(&format!(
            "/// The `{name}` guest.\npub const {ident}: Guest = Guest {{ name: \"{name}\", \
             program: include_bytes!({bin:?}), user_elf: include_bytes!({user_elf:?}), \
             image_id: [{}] }};\n",
            words.join(", ")
        ));
    }
    std::fs::write(out.join("guests.rs"), generated).unwrap();
}

fn compile(cc: &str, root: &Path, name: &str, output: &Path) {
    let sdk = root.join("sdk");
    let result = Command::new(cc)
        .args(CFLAGS)
        .arg(format!("-I{}", sdk.display()))
        .arg("-T")
        .arg(sdk.join("link.ld"))
        .arg(sdk.join("start.S"))
        .arg(sdk.join("tiffin.c"))
        .arg(root.join("programs").join(format!("{name}.c")))
        .arg("-lgcc")
        .arg("-o")
        .arg(output)
        .status();
    match result {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("compiling guest {name} with {cc} failed ({status})"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "TIFFIN-GUESTS-001: the RISC-V cross compiler `{cc}` is not installed. \
             Install Debian's package: `apt-get install gcc-riscv64-unknown-elf` \
             (or run scripts/setup), or point TIFFIN_RISCV_CC at one."
        ),
        Err(e) => panic!("running {cc} for guest {name}: {e}"),
    }
}
