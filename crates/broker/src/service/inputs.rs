//! Programs and inputs on the cluster: uploading a request's (the preflight's input is the one
//! the proof runs on) and deleting an input the broker no longer needs.

use tiffin_market::ProofRequest;

use super::context::Broker;
use crate::error::Result;
use crate::fetch::Fetcher;

/// Deletes an input the broker uploaded and no longer needs (a skipped request's): skipped
/// requests must not fill the broker's storage quota on the cluster. Best effort.
pub async fn forget_input(b: &Broker, input_id: Option<&str>) {
    if let Some(id) = input_id
        && let Err(e) = b.cluster.delete_input(id).await
    {
        tracing::debug!(input = id, "deleting an input: {e}");
    }
}

/// Uploads the request's program (unless the cluster has it) and input; returns the image id
/// (hex) and the input's id.
pub async fn upload(
    b: &Broker,
    fetcher: &Fetcher,
    request: &ProofRequest,
    input: Vec<u8>,
) -> Result<(String, String)> {
    let image_hex = hex::encode(request.requirements.imageId);
    if !b.cluster.has_image(&image_hex).await? {
        let program = fetcher.program(&image_hex, &request.imageUrl).await?;
        // A copy only when there is a cache to keep it in.
        let keep = fetcher.cache_dir.is_some().then(|| program.clone());
        b.cluster.upload_image(&image_hex, program).await?;
        if let Some(program) = keep {
            fetcher.remember_program(&image_hex, &program).await;
        }
    }
    let input_id = b.cluster.upload_input(input).await?;
    Ok((image_hex, input_id))
}
