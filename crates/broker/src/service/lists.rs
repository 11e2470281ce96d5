//! Priority requestor lists (`priority_requestor_lists`): JSON documents at URLs or paths,
//! read at start and every five minutes. A list is either an array of addresses or an object
//! whose `requestors` array holds addresses or `{"address": …}` entries. A list that cannot be
//! read keeps its last good contents.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use serde_json::Value;

use super::context::Broker;
use crate::error::{BrokerError, Result};
use crate::fetch::Fetcher;

/// The largest list read, in bytes.
const MAX_LIST_BYTES: u64 = 4 << 20;

pub async fn run(b: Arc<Broker>) -> BrokerError {
    let mut known: HashMap<String, Vec<Address>> = HashMap::new();
    loop {
        let sources = b.config().market.priority_requestor_lists.clone();
        known.retain(|source, _| sources.contains(source));
        for source in sources {
            match read(&source).await {
                Ok(list) => {
                    known.insert(source, list);
                }
                Err(e) => tracing::warn!(source, "priority requestor list: {e}"),
            }
        }
        let all = known.values().flatten().copied().collect();
        *b.listed_priority.lock().expect("list lock") = all;
        tokio::time::sleep(Duration::from_secs(300)).await;
    }
}

async fn read(source: &str) -> Result<Vec<Address>> {
    let url = if source.contains("://") { source.to_string() } else { format!("file://{source}") };
    let bytes =
        Fetcher::operator(MAX_LIST_BYTES, 1).document("priority requestor list", &url).await?;
    parse(&bytes)
}

/// The addresses a list names.
pub fn parse(bytes: &[u8]) -> Result<Vec<Address>> {
    let bad = |detail: String| BrokerError::Fetch { what: "priority requestor list", detail };
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let entries = match &doc {
        Value::Array(a) => a,
        Value::Object(o) => o
            .get("requestors")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no \"requestors\" array".into()))?,
        _ => return Err(bad("neither an array nor an object".into())),
    };
    entries
        .iter()
        .map(|e| {
            let text = e.as_str().or_else(|| e.get("address").and_then(Value::as_str));
            let text = text.ok_or_else(|| bad(format!("an entry without an address: {e}")))?;
            Address::from_str(text).map_err(|err| bad(format!("{text}: {err}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_name_addresses_in_either_shape_and_bad_ones_are_refused() {
        let a = "0x00000000000000000000000000000000000000aa";
        let b = "0x00000000000000000000000000000000000000bb";
        let plain = parse(format!("[\"{a}\", \"{b}\"]").as_bytes()).unwrap();
        assert_eq!(plain, vec![Address::from_str(a).unwrap(), Address::from_str(b).unwrap()]);
        let object =
            format!("{{\"name\": \"ours\", \"requestors\": [{{\"address\": \"{a}\"}}, \"{b}\"]}}");
        assert_eq!(parse(object.as_bytes()).unwrap(), plain);
        assert!(parse(b"{\"requestors\": [{\"name\": \"x\"}]}").is_err());
        assert!(parse(b"[\"0x12\"]").is_err());
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
    }

    #[tokio::test]
    async fn a_list_is_read_from_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.json");
        std::fs::write(&path, "[\"0x00000000000000000000000000000000000000aa\"]").unwrap();
        assert_eq!(read(path.to_str().unwrap()).await.unwrap().len(), 1);
        assert!(read("/no/such/list.json").await.is_err());
    }
}
