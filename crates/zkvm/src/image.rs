use std::fmt;
use std::str::FromStr;

use risc0_zkvm::Digest;

use crate::ZkvmError;

/// The identity of a guest program: the digest of its initial memory image. Receipts are
/// verified against it; Bonsai clients name it as 64 hex characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(pub Digest);

impl ImageId {
    /// Computes the image id of a program binary, validating that it loads.
    pub fn of_program(program: &[u8]) -> Result<Self, ZkvmError> {
        risc0_zkvm::compute_image_id(program)
            .map(ImageId)
            .map_err(|e| ZkvmError::InvalidProgram(format!("{e:#}")))
    }

    /// From the digest words risc0's guest builders (and `tiffin-guests`) emit.
    pub fn from_words(words: [u32; 8]) -> Self {
        ImageId(Digest::from(words))
    }

    /// The lowercase hex form used in URLs.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }
}

impl FromStr for ImageId {
    type Err = ZkvmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s)
            .map_err(|e| ZkvmError::InvalidOptions(format!("image id {s:?} is not hex: {e}")))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            ZkvmError::InvalidOptions(format!("image id {s:?} must be 64 hex characters"))
        })?;
        Ok(ImageId(Digest::from(arr)))
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl From<ImageId> for Digest {
    fn from(id: ImageId) -> Digest {
        id.0
    }
}
