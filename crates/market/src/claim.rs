//! Claim digests: what a receipt proves, reduced to 32 bytes (RISC Zero's `ReceiptClaim::ok`
//! digest). The market's contracts and the set-builder guest compute the same bytes.

use alloy::primitives::{B256, b256};
use sha2::{Digest, Sha256};

/// `sha256("risc0.ReceiptClaim")`.
pub const RECEIPT_CLAIM_TAG: B256 =
    b256!("cb1fefcd1f2d9a64975cbbbf6e161e2914434b0cbb9960b84df5d717e86b48af");
/// `sha256("risc0.Output")`.
pub const OUTPUT_TAG: B256 =
    b256!("77eafeb366a78b47747de0d7bb176284085ff5564887009a5be63da32d3559d4");
/// Digest of the post state of every halted execution (`pc = 0`, zero Merkle root).
pub const SYSTEM_STATE_ZERO: B256 =
    b256!("a3acc27117418996340b84e5a90f3ef4c49d22c79e44aad822ec9c313e1eb8e2");

/// RISC Zero's tagged-struct hash: `sha256(sha256(tag) || digests || words as u32 LE ||
/// count of digests as u16 LE)`.
pub fn tagged_struct(tag: &str, digests: &[B256], words: &[u32]) -> B256 {
    let mut hasher = Sha256::new();
    hasher.update(Sha256::digest(tag.as_bytes()));
    for digest in digests {
        hasher.update(digest);
    }
    for word in words {
        hasher.update(word.to_le_bytes());
    }
    hasher.update((digests.len() as u16).to_le_bytes());
    B256::from_slice(&hasher.finalize())
}

/// The SHA-256 digest of a journal, as RISC Zero and the market compute it.
pub fn journal_digest(journal: &[u8]) -> B256 {
    B256::from_slice(&Sha256::digest(journal))
}

/// The claim digest of an execution of `image_id` that halted with exit code 0, read no input,
/// made no unresolved assumptions and committed a journal with digest `journal_digest`.
pub fn claim_digest(image_id: B256, journal_digest: B256) -> B256 {
    let output = tagged_struct("risc0.Output", &[journal_digest, B256::ZERO], &[]);
    tagged_struct("risc0.ReceiptClaim", &[B256::ZERO, image_id, SYSTEM_STATE_ZERO, output], &[0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_the_digests_of_their_definitions() {
        assert_eq!(RECEIPT_CLAIM_TAG, B256::from_slice(&Sha256::digest(b"risc0.ReceiptClaim")));
        assert_eq!(OUTPUT_TAG, B256::from_slice(&Sha256::digest(b"risc0.Output")));
        assert_eq!(SYSTEM_STATE_ZERO, tagged_struct("risc0.SystemState", &[B256::ZERO], &[0]));
    }

    #[test]
    fn claim_digest_depends_on_image_and_journal() {
        let image = B256::repeat_byte(1);
        let journal = journal_digest(b"hello");
        let claim = claim_digest(image, journal);
        assert_ne!(claim, claim_digest(B256::repeat_byte(2), journal));
        assert_ne!(claim, claim_digest(image, journal_digest(b"hellp")));
        assert_eq!(claim, claim_digest(image, journal));
    }
}
