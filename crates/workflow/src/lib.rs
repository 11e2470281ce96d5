//! The proving workflow on top of TaskDB and the stores: the planner that shapes each job's
//! DAG, one handler per task kind, the agent loop and the housekeeper.

pub mod planner;
