//! One conformance suite for every hot-store backend — memory, local files, and Redis through a
//! real redis-server — plus budget/backpressure behaviour and Redis-specific guarantees.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use tiffin_storage::{
    HotStore, LocalHotStore, MemoryHotStore, RedisHotStore, open_hot, testing::RedisServer,
};

fn blob(len: usize) -> Bytes {
    Bytes::from(vec![0xA5u8; len])
}

/// Accounting, reads, deletes, prefixes — on a store without a budget.
async fn conformance(store: &dyn HotStore) {
    assert_eq!(store.usage().await.unwrap(), 0);
    assert!(store.has_room(u64::MAX / 2).await.unwrap());

    store.put("jobs/j/seg/0", blob(100)).await.unwrap();
    store.put("jobs/j/seg/1", blob(50)).await.unwrap();
    assert_eq!(store.usage().await.unwrap(), 150);
    assert_eq!(store.get("jobs/j/seg/0").await.unwrap(), blob(100));
    assert!(store.exists("jobs/j/seg/1").await.unwrap());

    // Overwrite (an idempotent retry re-puts its output) replaces, never double-counts.
    store.put("jobs/j/seg/0", blob(30)).await.unwrap();
    assert_eq!(store.usage().await.unwrap(), 80);
    store.put("jobs/j/seg/0", blob(30)).await.unwrap();
    assert_eq!(store.usage().await.unwrap(), 80);
    assert_eq!(store.get("jobs/j/seg/0").await.unwrap().len(), 30);
    assert_eq!(store.peak_usage().await.unwrap(), 150);

    // Missing keys.
    let e = store.get("jobs/j/seg/9").await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-010", "{e}");
    assert!(e.is_not_found());
    assert!(store.get_opt("jobs/j/seg/9").await.unwrap().is_none());
    assert!(!store.exists("jobs/j/seg/9").await.unwrap());
    assert!(store.get_opt("jobs/j/seg/0/deeper").await.unwrap().is_none());
    assert_eq!(store.put("../x", blob(1)).await.unwrap_err().code(), "TIFFIN-STORAGE-002");

    // Delete.
    assert!(store.delete("jobs/j/seg/0").await.unwrap());
    assert!(!store.delete("jobs/j/seg/0").await.unwrap());
    assert_eq!(store.usage().await.unwrap(), 50);

    // Empty blobs exist and count zero.
    store.put("jobs/j/empty", Bytes::new()).await.unwrap();
    assert!(store.exists("jobs/j/empty").await.unwrap());
    assert_eq!(store.get("jobs/j/empty").await.unwrap().len(), 0);
    assert!(store.delete("jobs/j/empty").await.unwrap());

    // delete_prefix is a plain string prefix; `jobs/1/` must not touch `jobs/10/`.
    store.put("jobs/1/a", blob(10)).await.unwrap();
    store.put("jobs/1/b/c", blob(20)).await.unwrap();
    store.put("jobs/10/a", blob(40)).await.unwrap();
    store.put("jobs/star*[x]/a", blob(1)).await.unwrap();
    assert_eq!(store.usage().await.unwrap(), 121);
    assert_eq!(store.delete_prefix("jobs/1/").await.unwrap(), 2);
    assert_eq!(store.usage().await.unwrap(), 91);
    assert!(store.exists("jobs/10/a").await.unwrap());
    assert_eq!(store.delete_prefix("jobs/star*").await.unwrap(), 1);
    assert_eq!(store.delete_prefix("jobs/1").await.unwrap(), 1);
    assert_eq!(store.delete_prefix("nothing/").await.unwrap(), 0);
    assert_eq!(store.usage().await.unwrap(), 50);

    assert_eq!(store.peak_usage().await.unwrap(), 150);
    store.reset_peak().await.unwrap();
    assert_eq!(store.peak_usage().await.unwrap(), 50);
    assert_eq!(store.delete_prefix("").await.unwrap(), 1);
    assert_eq!(store.usage().await.unwrap(), 0);
}

/// Budget, atomic admission, waiting for room, and the peak never exceeding the budget under
/// concurrent producers and a consumer — on a store with a budget of 1000 bytes.
async fn budget_conformance(store: Arc<dyn HotStore>) {
    assert_eq!(store.budget(), Some(1000));
    assert!(store.has_room(1000).await.unwrap());
    assert!(!store.has_room(1001).await.unwrap());

    store.put_with_room("s/0", blob(600), Duration::from_secs(1)).await.unwrap();
    assert!(!store.try_put_within_budget("s/1", blob(600)).await.unwrap());
    assert!(!store.exists("s/1").await.unwrap());
    assert_eq!(store.usage().await.unwrap(), 600);
    // Overwriting frees the old size first: 600 -> 900 fits.
    assert!(store.try_put_within_budget("s/0", blob(900)).await.unwrap());
    assert_eq!(store.usage().await.unwrap(), 900);

    // Timeout and impossible sizes.
    let t = Instant::now();
    let e = store.wait_for_room(500, Duration::from_millis(120)).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-030", "{e}");
    assert!(e.is_transient());
    assert!(t.elapsed() >= Duration::from_millis(100));
    let e = store.wait_for_room(2000, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-031", "{e}");
    assert!(e.is_permanent());
    let e = store.put_with_room("s/huge", blob(1001), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-031");
    let e = store.put_with_room("s/1", blob(500), Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-030", "{e}");

    // A waiter wakes promptly when a delete frees room.
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            store.wait_for_room(500, Duration::from_secs(10)).await.unwrap();
            Instant::now()
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!waiter.is_finished());
    let freed_at = Instant::now();
    store.delete("s/0").await.unwrap();
    let woke_at = waiter.await.unwrap();
    assert!(woke_at.duration_since(freed_at) < Duration::from_millis(500), "waiter woke late");

    // Backpressure: 4 producers write 20 blobs of 200 bytes each through put_with_room while a
    // consumer deletes what it finds; usage must never exceed the budget.
    store.reset_peak().await.unwrap();
    let mut producers = Vec::new();
    for p in 0..4 {
        let store = store.clone();
        producers.push(tokio::spawn(async move {
            for i in 0..5 {
                store
                    .put_with_room(&format!("bp/{p}/{i}"), blob(200), Duration::from_secs(20))
                    .await
                    .unwrap();
            }
        }));
    }
    let consumer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut consumed = 0;
            while consumed < 20 {
                let mut found = false;
                for p in 0..4 {
                    for i in 0..5 {
                        if store.delete(&format!("bp/{p}/{i}")).await.unwrap() {
                            consumed += 1;
                            found = true;
                        }
                    }
                }
                if !found {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Consume slowly so producers really have to wait.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for p in producers {
        p.await.unwrap();
    }
    consumer.await.unwrap();
    let peak = store.peak_usage().await.unwrap();
    assert!(peak <= 1000, "peak {peak} exceeds the budget");
    assert!(peak >= 600, "peak {peak}: producers never filled the store");
    assert_eq!(store.usage().await.unwrap(), 0);
}

#[tokio::test]
async fn memory() {
    conformance(&MemoryHotStore::new(None)).await;
    budget_conformance(Arc::new(MemoryHotStore::new(Some(1000)))).await;
}

#[tokio::test]
async fn local_files() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&*open_hot(dir.path().join("a").to_str().unwrap(), None).await.unwrap()).await;
    let b = format!("file://{}", dir.path().join("b").display());
    budget_conformance(open_hot(&b, Some(1000)).await.unwrap()).await;
}

#[tokio::test]
async fn local_files_reopen_recounts_usage_and_cleans_partial_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LocalHotStore::open(dir.path(), None).await.unwrap();
        store.put("jobs/j/seg/0", blob(100)).await.unwrap();
        store.put("jobs/j/seg/1", blob(23)).await.unwrap();
    }
    // A crash mid-write leaves a temporary file; it is not a blob and is removed on open.
    std::fs::write(dir.path().join(".tiffin-tmp/123-0"), b"partial").unwrap();
    let store = LocalHotStore::open(dir.path(), Some(1000)).await.unwrap();
    assert_eq!(store.usage().await.unwrap(), 123);
    assert!(!dir.path().join(".tiffin-tmp/123-0").exists());
    assert_eq!(store.get("jobs/j/seg/1").await.unwrap().len(), 23);
    store.delete_prefix("jobs/").await.unwrap();
    assert_eq!(store.usage().await.unwrap(), 0);
    // Empty directories are pruned after deletes.
    assert!(!dir.path().join("jobs").exists());
}

#[tokio::test]
async fn redis() {
    let server = RedisServer::start().unwrap();
    let store = open_hot(&server.url(), None).await.unwrap();
    assert!(store.describe().contains("namespace tiffin"), "{}", store.describe());
    conformance(&*store).await;
    let budgeted = open_hot(&server.url_with_namespace("budgeted"), Some(1000)).await.unwrap();
    budget_conformance(budgeted).await;
}

#[tokio::test]
async fn redis_large_blob() {
    let server = RedisServer::start().unwrap();
    let store = open_hot(&server.url(), Some(64 << 20)).await.unwrap();
    let data = Bytes::from((0..40 << 20).map(|i: u32| (i % 251) as u8).collect::<Vec<u8>>());
    let t = Instant::now();
    store.put_with_room("jobs/j/seg/0", data.clone(), Duration::from_secs(5)).await.unwrap();
    let got = store.get("jobs/j/seg/0").await.unwrap();
    eprintln!("redis: 40 MB put+get in {:?}", t.elapsed());
    assert!(got == data);
    assert_eq!(store.usage().await.unwrap(), 40 << 20);
}

#[tokio::test]
async fn redis_clients_share_usage_within_a_namespace_only() {
    let server = RedisServer::start().unwrap();
    let a = RedisHotStore::connect(&server.url(), Some("cluster1"), Some(1000)).await.unwrap();
    let b = RedisHotStore::connect(&server.url(), Some("cluster1"), Some(1000)).await.unwrap();
    let other =
        RedisHotStore::connect(&server.url_with_namespace("cluster2"), Some("ignored"), None)
            .await
            .unwrap();
    assert_eq!(other.namespace(), "cluster2");

    a.put("jobs/j/seg/0", blob(300)).await.unwrap();
    b.put("jobs/j/seg/1", blob(200)).await.unwrap();
    assert_eq!(a.usage().await.unwrap(), 500);
    assert_eq!(b.usage().await.unwrap(), 500);
    assert_eq!(b.get("jobs/j/seg/0").await.unwrap().len(), 300);
    // b overwrites a's key: still exact.
    b.put("jobs/j/seg/0", blob(100)).await.unwrap();
    assert_eq!(a.usage().await.unwrap(), 300);
    assert_eq!(other.usage().await.unwrap(), 0);
    assert!(!other.exists("jobs/j/seg/0").await.unwrap());

    // The budget is shared too: b cannot overshoot what a already holds.
    assert!(!b.try_put_within_budget("jobs/j/seg/2", blob(701)).await.unwrap());
    assert!(b.try_put_within_budget("jobs/j/seg/2", blob(700)).await.unwrap());
    assert!(!a.has_room(1).await.unwrap());
    // a waits (polling) until b deletes.
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move { a.wait_for_room(500, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(120)).await;
    b.delete_prefix("jobs/j/").await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap().unwrap();
    assert_eq!(a.usage().await.unwrap(), 0);
    assert_eq!(a.peak_usage().await.unwrap(), 1000);
}

#[tokio::test]
async fn redis_with_evicting_policy_is_refused() {
    for policy in ["allkeys-lru", "volatile-lru"] {
        let server = RedisServer::start_with_policy(policy).unwrap();
        let e = open_hot(&server.url(), None).await.unwrap_err();
        assert_eq!(e.code(), "TIFFIN-STORAGE-021", "{e}");
        assert!(e.is_permanent());
        let msg = e.to_string();
        assert!(msg.contains(policy) && msg.contains("noeviction"), "{msg}");
    }
}

#[tokio::test]
async fn redis_unreachable_is_a_transient_coded_error() {
    let port = tiffin_storage::testing::free_port().unwrap();
    let e = open_hot(&format!("redis://:hunter2@127.0.0.1:{port}/"), None).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-020", "{e}");
    assert!(e.is_transient());
    assert!(!e.to_string().contains("hunter2"), "password leaked: {e}");
}
