//! Shared harness: the conformance suite, run against each backend by `conformance_suite!`.

#![allow(dead_code)]

pub mod conformance;

/// Expands to one `#[tokio::test]` per conformance test, each getting a fresh database from
/// `$make().await`, which returns `(Arc<dyn TaskDb>, guard)`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@tests $make;
            dag_readiness_and_completion,
            growing_dag_does_not_finish_early,
            batch_validation_errors,
            streams_created_idempotently,
            claim_order_inside_stream,
            fencing_rejects_late_calls,
            cancel_cascades_and_heartbeat_says_cancelled,
            permanent_failure_cascades,
            restart_reruns_a_failed_job_from_its_planner,
            agents_report_themselves,
            silent_agents_are_forgotten,
            backlog_counts_ready_running_and_work,
            backlog_measures_finished_tasks,
            served_sums_finished_work_per_kind_and_meta,
            transient_failure_retries_with_backoff,
            expired_last_attempt_fails_job,
            concurrent_requeue_is_safe,
            cancel_races_completions,
            batches_link_to_prerequisites_completing_meanwhile,
            vacuum_runs_alongside_work,
            job_deadline_times_out,
            wait_for_work_wakes_promptly,
            reads_and_listing,
            gc_deletes_finished_jobs,
            concurrent_claimers_never_share_a_task,
            fair_share_follows_multipliers,
            reservation_goes_first,
            low_priority_is_not_starved,
            one_worker_alternates_between_equal_backlogs,
            one_worker_follows_the_weights,
            newcomer_behind_a_backlog_is_served_within_two_claims,
            brokers_two_tasks_do_not_wait_behind_six_long_jobs,
            concurrent_workers_share_by_weight,
            claims_respect_the_agents_work_limit,
            pinned_agents_take_only_their_tenants_tasks,
            pinned_agents_wait_when_their_reservation_says_so,
            a_forgotten_pinned_agent_hands_its_pin_on,
            claims_inside_a_tenant_follow_due_time_then_priority,
            due_time_orders_inside_the_tenant_not_across_tenants,
            a_job_at_risk_borrows_agents_but_never_starves_the_others,
            a_job_with_time_to_spare_keeps_its_fair_share,
            random_dags_complete_exactly_once,
            claim_batch_takes_tasks_in_claim_order,
            claim_batch_follows_the_policy_per_task,
            complete_batch_reports_each_lease,
            racing_last_completions_end_the_job,
            batched_workers_share_nothing,
            released_leases_keep_the_attempt_budget,
            running_limit_holds_under_concurrent_creates
        );
    };
    (@tests $make:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (db, _guard) = $make().await;
                common::conformance::$name(db).await;
            }
        )*
    };
}
