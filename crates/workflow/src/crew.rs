//! The agents a process runs in itself, in one place. [`Roster`] is the embedded cluster's set
//! of agents, built from the [`kinds`] constants; [`Crew`] starts agents over one queue and
//! one pair of stores and stops them together. `tiffin up`, `tiffin prove`, `tiffin agent` and
//! the test harnesses all start their agents here (docs/architecture.md, "Components").

use tiffin_taskdb::Kind;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

use crate::handlers::Context;
use crate::{Agent, AgentConfig, kinds};

/// What the embedded executor serves: it runs guests and plans jobs, and finalizes (`aux`,
/// which also runs the housekeeper).
pub const EXECUTOR_KINDS: &[&str] = &[kinds::EXEC, kinds::AUX];

/// What each embedded prover serves.
pub const PROVER_KINDS: &[&str] = &[kinds::PROVE, kinds::JOIN, kinds::AUX];

/// An agent's part in the embedded roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The one executor.
    Executor,
    /// One of the provers.
    Prover,
}

/// The agents of an embedded cluster: one executor ([`EXECUTOR_KINDS`], plus `snark` when
/// asked) and `provers` agents serving [`PROVER_KINDS`]. The executor has an agent of its own,
/// so an executor paused by hot-store backpressure never holds the slot a prover needs.
#[derive(Clone, Debug)]
pub struct Roster {
    /// Agents are named `<prefix>-exec` and `<prefix>-prove-<i>`.
    pub prefix: String,
    /// How many provers.
    pub provers: usize,
    /// Whether the executor also serves `snark` (Groth16).
    pub snark: bool,
}

impl Roster {
    /// An executor (without `snark`) and `provers` provers.
    pub fn new(prefix: impl Into<String>, provers: usize) -> Self {
        Self { prefix: prefix.into(), provers, snark: false }
    }

    /// The executor serves `snark` too.
    pub fn with_snark(mut self) -> Self {
        self.snark = true;
        self
    }

    /// Each agent's settings: the defaults of [`AgentConfig::new`], then `tune` for its role.
    pub fn agents(&self, tune: impl Fn(Role, &mut AgentConfig)) -> Vec<AgentConfig> {
        let mut executor = EXECUTOR_KINDS.to_vec();
        if self.snark {
            executor.push(kinds::SNARK);
        }
        let provers = (0..self.provers)
            .map(|i| (Role::Prover, format!("{}-prove-{i}", self.prefix), PROVER_KINDS.to_vec()));
        std::iter::once((Role::Executor, format!("{}-exec", self.prefix), executor))
            .chain(provers)
            .map(|(role, id, list)| {
                let mut cfg = AgentConfig::new(id, list.into_iter().map(Kind::new).collect());
                tune(role, &mut cfg);
                cfg
            })
            .collect()
    }
}

/// Agents running in this process, stopped together.
pub struct Crew {
    stop: watch::Sender<bool>,
    agents: Vec<JoinHandle<()>>,
}

impl Crew {
    /// Starts one agent per configuration, all over the queue and stores of `ctx`.
    pub fn spawn(ctx: &Context, agents: Vec<AgentConfig>) -> Self {
        let (stop, rx) = watch::channel(false);
        let agents = agents
            .into_iter()
            .map(|cfg| tokio::spawn(Agent::new(cfg, ctx.clone()).run(rx.clone())))
            .collect();
        Self { stop, agents }
    }

    /// Tells every agent to stop (each finishes its in-flight tasks within its grace) and waits
    /// for all of them; the first agent that panicked is the error.
    pub async fn stop(self) -> Result<(), JoinError> {
        let _ = self.stop.send(true);
        let mut first = Ok(());
        for agent in self.agents {
            if let Err(e) = agent.await
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_of(cfg: &AgentConfig) -> Vec<&str> {
        cfg.kinds.iter().map(|k| k.as_str()).collect()
    }

    #[test]
    fn the_roster_is_one_executor_and_the_provers() {
        let agents = Roster::new("up-1", 2).agents(|_, _| {});
        let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["up-1-exec", "up-1-prove-0", "up-1-prove-1"]);
        assert_eq!(kinds_of(&agents[0]), EXECUTOR_KINDS);
        assert_eq!(kinds_of(&agents[1]), PROVER_KINDS);
        assert_eq!(kinds_of(&agents[2]), PROVER_KINDS);
    }

    #[test]
    fn snark_goes_to_the_executor_only() {
        let agents = Roster::new("t", 1).with_snark().agents(|_, _| {});
        assert_eq!(kinds_of(&agents[0]), [kinds::EXEC, kinds::AUX, kinds::SNARK]);
        assert_eq!(kinds_of(&agents[1]), PROVER_KINDS);
    }

    #[test]
    fn tune_sees_each_role() {
        let agents = Roster::new("t", 1).agents(|role, a| {
            a.concurrency = if role == Role::Executor { 3 } else { 5 };
        });
        assert_eq!((agents[0].concurrency, agents[1].concurrency), (3, 5));
        assert_eq!(Roster::new("t", 0).agents(|_, _| {}).len(), 1, "no provers: the executor");
    }
}
