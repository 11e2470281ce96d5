//! Shares between streams under load: priority multipliers, reservations, no starvation.

use super::*;

async fn fair_share_follows_multipliers(db: Arc<dyn TaskDb>) {
    weigh(&db, "one", "prove", 1.0).await;
    weigh(&db, "three", "prove", 3.0).await;
    // "one" submitted first: the older job must not win against the weights
    saturate(&db, "one", "prove", 2100).await;
    saturate(&db, "three", "prove", 2100).await;
    let per = run_slots(&db, &["prove"], 8, 2000).await;
    let (a, b) = (per["one"] as f64, per["three"] as f64);
    let ratio = b / a;
    assert!((ratio - 3.0).abs() <= 0.3, "expected 1:3 within 10%, got {a}:{b} (ratio {ratio:.2})");
}
scenario!(fair_share_follows_multipliers);

async fn reservation_goes_first(db: Arc<dyn TaskDb>) {
    for t in 0..5 {
        let tenant = format!("crowd{t}");
        weigh(&db, &tenant, "prove", 10.0).await;
        saturate(&db, &tenant, "prove", 20).await;
    }
    // some crowd work is already running
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(claim(&db, &["prove"]).await.unwrap());
    }
    db.set_stream(
        "vip",
        &k("prove"),
        StreamConfig { priority_multiplier: 0.1, reserved: 2, ..StreamConfig::default() },
    )
    .await
    .unwrap();
    saturate(&db, "vip", "prove", 10).await;
    let a = claim(&db, &["prove"]).await.unwrap();
    let b = claim(&db, &["prove"]).await.unwrap();
    assert_eq!((a.tenant.as_str(), b.tenant.as_str()), ("vip", "vip"), "reserved slots first");
    // reservation filled: vip (2/0.1 = 20) now loses to the crowd (≤ 1/10)
    let c = claim(&db, &["prove"]).await.unwrap();
    assert_ne!(c.tenant, "vip");
    // when a reserved task finishes, vip gets the next slot again
    db.complete(&a, json!(null)).await.unwrap();
    assert_eq!(claim(&db, &["prove"]).await.unwrap().tenant, "vip");
    let vip = db.streams().await.unwrap().into_iter().find(|s| s.tenant == "vip").unwrap();
    assert_eq!(vip.running, 2);
}
scenario!(reservation_goes_first);

async fn low_priority_is_not_starved(db: Arc<dyn TaskDb>) {
    weigh(&db, "low", "prove", 0.1).await;
    for t in 0..3 {
        let tenant = format!("high{t}");
        weigh(&db, &tenant, "prove", 10.0).await;
        saturate(&db, &tenant, "prove", 400).await;
    }
    saturate(&db, "low", "prove", 400).await;
    let claims = 600;
    let per = run_slots(&db, &["prove"], 12, claims).await;
    let low = *per.get("low").unwrap_or(&0) as f64;
    let fair = claims as f64 * 0.1 / 30.1;
    assert!(
        low >= fair.floor() && low > 0.0,
        "low tenant got {low} claims, fair share is {fair:.1}"
    );
}
scenario!(low_priority_is_not_starved);
