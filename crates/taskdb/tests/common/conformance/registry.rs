//! The agent registry: presence reports with what each agent says about itself, and agents
//! that stopped reporting being forgotten.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tiffin_taskdb::TaskDb;

use super::{LONG, k};

async fn agents_report_themselves(db: Arc<dyn TaskDb>) {
    assert!(db.agents(LONG).await.unwrap().is_empty());
    let host = json!({ "host": "gpu-7", "cores": 16, "gpu": "none", "max_po2": 22 });
    db.agent_seen("exec-1", &[k("exec"), k("aux")], &host).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    db.agent_seen("prover-1", &[k("prove")], &json!(null)).await.unwrap();
    let seen = db.agents(LONG).await.unwrap();
    assert_eq!(
        seen.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        vec!["prover-1", "exec-1"],
        "latest first"
    );
    assert_eq!(seen[1].kinds, vec!["exec", "aux"]);
    assert_eq!(seen[1].info, host, "info is stored as given");
    assert_eq!(seen[0].info, json!(null));
    let first = seen[1].clone();
    // A later report updates last_seen, kinds and info, keeps first_seen, adds no row.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let moved = json!({ "host": "gpu-8", "cores": 32 });
    db.agent_seen("exec-1", &[k("exec")], &moved).await.unwrap();
    let seen = db.agents(LONG).await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].id, "exec-1");
    assert_eq!(seen[0].kinds, vec!["exec"]);
    assert_eq!(seen[0].info, moved);
    assert_eq!(seen[0].first_seen, first.first_seen);
    assert!(seen[0].last_seen > first.last_seen);
    // Agents that stopped reporting drop out of the window; a window of "forever" is safe.
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.agent_seen("prover-1", &[k("prove")], &json!(null)).await.unwrap();
    let recent = db.agents(Duration::from_millis(200)).await.unwrap();
    assert_eq!(recent.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec!["prover-1"]);
    assert_eq!(db.agents(Duration::MAX).await.unwrap().len(), 2);
}
scenario!(agents_report_themselves);

async fn silent_agents_are_forgotten(db: Arc<dyn TaskDb>) {
    db.agent_seen("gone", &[k("prove")], &json!({ "host": "a" })).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.agent_seen("here", &[k("prove")], &json!({ "host": "b" })).await.unwrap();
    assert_eq!(db.forget_agents(LONG).await.unwrap(), 0, "both reported within a minute");
    assert_eq!(db.forget_agents(Duration::MAX).await.unwrap(), 0);
    assert_eq!(db.forget_agents(Duration::from_millis(200)).await.unwrap(), 1);
    let left = db.agents(Duration::MAX).await.unwrap();
    assert_eq!(left.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec!["here"]);
    // A forgotten agent that reports again is recorded anew.
    db.agent_seen("gone", &[k("prove")], &json!(null)).await.unwrap();
    let back = db.agents(LONG).await.unwrap();
    let gone = back.iter().find(|a| a.id == "gone").expect("recorded again");
    assert!(gone.first_seen > left[0].first_seen, "a fresh first_seen");
}
scenario!(silent_agents_are_forgotten);
