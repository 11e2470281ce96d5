//! Sample guests for tests, benchmarks and demos.
//!
//! The guests are C programs (see `guests/programs`) built against our tiny SDK in
//! `guests/sdk`, because risc0's Rust guest toolchain cannot be installed on our machines.
//! Each is exposed as a RISC Zero *program binary* (the bytes a client uploads) plus its
//! image id, so tests can check receipts against the id without recomputing it.

/// A packaged guest program.
#[derive(Clone, Copy, Debug)]
pub struct Guest {
    /// Short name, e.g. `spin`.
    pub name: &'static str,
    /// The `R0BF` program binary: user ELF combined with risc0's v1compat kernel.
    pub program: &'static [u8],
    /// The bare user-mode ELF, before packaging (useful for negative tests).
    pub user_elf: &'static [u8],
    /// The image id as risc0 digest words.
    pub image_id: [u32; 8],
}

impl Guest {
    /// The image id as bytes (the digest's words, little-endian): what guests and the proof
    /// market's contracts hash.
    pub fn image_id_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        for (chunk, word) in bytes.chunks_mut(4).zip(self.image_id) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// The image id as the 64-character hex string Bonsai clients use.
    pub fn image_id_hex(&self) -> String {
        self.image_id.iter().flat_map(|w| w.to_le_bytes()).map(|b| format!("{b:02x}")).collect()
    }
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// All sample guests, for listing in the CLI.
pub const ALL: &[Guest] = &[ECHO, SPIN, SHA_CHAIN, PANIC, COMPOSE, SET_BUILDER];

/// Encodes the `spin` guest's input: burn about `cycles` cycles.
pub fn spin_input(cycles: u32) -> Vec<u8> {
    cycles.to_le_bytes().to_vec()
}

/// Encodes the `set-builder` guest's input: the claims `(image id, journal)` it verifies by
/// composition, in leaf order.
pub fn set_builder_input(claims: &[([u8; 32], &[u8])]) -> Vec<u8> {
    let mut v = (claims.len() as u32).to_le_bytes().to_vec();
    for (image_id, journal) in claims {
        v.extend_from_slice(image_id);
        v.extend_from_slice(&(journal.len() as u32).to_le_bytes());
        v.extend_from_slice(journal);
    }
    v
}

/// Encodes the `sha-chain` guest's input.
pub fn sha_chain_input(rounds: u32, data: &[u8]) -> Vec<u8> {
    let mut v = rounds.to_le_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_r0bf_with_distinct_image_ids() {
        for g in ALL {
            assert_eq!(&g.program[..4], b"R0BF", "{} is not a program binary", g.name);
            assert_eq!(&g.user_elf[..4], b"\x7fELF");
            assert_eq!(g.image_id_hex().len(), 64);
        }
        let mut ids: Vec<_> = ALL.iter().map(|g| g.image_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len());
    }
}
