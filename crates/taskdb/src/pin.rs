//! Reservations that hold: which live agents a reservation pins (docs/architecture.md,
//! "Claim order"). Pure, so both backends and the listing agree and it is tested without a
//! database; PostgreSQL's `tiffin_claim_batch` (migration 0010) encodes the same rule.
//!
//! The rule: reservations in stream id order each take the first `reserved` live agents of the
//! registry (by first report, then id) that serve the stream's kind and that no earlier
//! reservation took. Nothing is stored besides the registry and the streams, so a pin is as
//! durable as they are, and an agent that stops reporting hands its pin to the next live agent
//! once it is no longer live ([`crate::Config::agent_alive`]). A claimer names itself
//! `<agent>/<slot>`: every slot of a pinned agent is pinned.

use crate::stream::ReservationIdle;

/// How long after its last report an agent still counts as live for pinning by default: six
/// of the workflow's 5 s presence reports.
pub const AGENT_ALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// A stream with a reservation.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// Stream row id.
    pub stream_id: i64,
    /// The stream's worker kind.
    pub kind: String,
    /// Agents it pins.
    pub reserved: i64,
    /// What its agents do while it has nothing ready.
    pub idle: ReservationIdle,
}

/// A live agent of the registry, as the pin rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveAgent {
    /// Registry id.
    pub id: String,
    /// Kinds it serves.
    pub kinds: Vec<String>,
}

/// One agent pinned to one reservation.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    /// Registry id of the agent.
    pub agent: String,
    /// The reservation's stream.
    pub stream_id: i64,
    /// What the agent does while the stream has nothing ready.
    pub idle: ReservationIdle,
}

/// A pin as operators see it ([`crate::TaskDb::pins`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentPin {
    /// Registry id of the agent.
    pub agent: String,
    /// The reservation's tenant.
    pub tenant: String,
    /// The reservation's kind.
    pub kind: String,
    /// What the agent does while the tenant has nothing ready of that kind.
    pub idle: ReservationIdle,
}

/// The pins with their tenants: `reservations` pairs each reservation with its tenant.
pub fn describe(reservations: &[(Reservation, String)], agents: &[LiveAgent]) -> Vec<AgentPin> {
    let res: Vec<Reservation> = reservations.iter().map(|(r, _)| r.clone()).collect();
    pin_agents(&res, agents)
        .into_iter()
        .filter_map(|p| {
            let (r, tenant) = reservations.iter().find(|(r, _)| r.stream_id == p.stream_id)?;
            Some(AgentPin {
                agent: p.agent,
                tenant: tenant.clone(),
                kind: r.kind.clone(),
                idle: p.idle,
            })
        })
        .collect()
}

/// The pins, given the reservations (any order) and the live agents in registry order (first
/// report, then id).
pub fn pin_agents(reservations: &[Reservation], agents: &[LiveAgent]) -> Vec<Pin> {
    let mut res: Vec<&Reservation> = reservations.iter().filter(|r| r.reserved > 0).collect();
    res.sort_by_key(|r| r.stream_id);
    let mut taken = vec![false; agents.len()];
    let mut pins = Vec::new();
    for r in res {
        let mut left = r.reserved;
        for (i, a) in agents.iter().enumerate() {
            if left == 0 {
                break;
            }
            if taken[i] || !a.kinds.contains(&r.kind) {
                continue;
            }
            taken[i] = true;
            left -= 1;
            pins.push(Pin { agent: a.id.clone(), stream_id: r.stream_id, idle: r.idle });
        }
    }
    pins
}

/// The pin of a claimer (`<agent>` or `<agent>/<slot>`), if any.
pub fn pin_of<'a>(claimer: &str, pins: &'a [Pin]) -> Option<&'a Pin> {
    let base = claimer.rsplit_once('/').map_or(claimer, |(b, _)| b);
    pins.iter().find(|p| p.agent == claimer || p.agent == base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(stream_id: i64, kind: &str, reserved: i64) -> Reservation {
        Reservation { stream_id, kind: kind.into(), reserved, idle: ReservationIdle::ServeOthers }
    }

    fn a(id: &str, kinds: &[&str]) -> LiveAgent {
        LiveAgent { id: id.into(), kinds: kinds.iter().map(|k| k.to_string()).collect() }
    }

    fn pinned(res: &[Reservation], agents: &[LiveAgent]) -> Vec<(String, i64)> {
        pin_agents(res, agents).into_iter().map(|p| (p.agent, p.stream_id)).collect()
    }

    #[test]
    fn pin_cases() {
        let p = |v: &[(&str, i64)]| v.iter().map(|(a, s)| (a.to_string(), *s)).collect::<Vec<_>>();
        type Case = (&'static str, Vec<Reservation>, Vec<LiveAgent>, Vec<(String, i64)>);
        let cases: Vec<Case> = vec![
            ("no reservation pins nobody", vec![], vec![a("w0", &["prove"])], p(&[])),
            (
                "the first agents in registry order",
                vec![r(7, "prove", 2)],
                vec![a("w0", &["prove"]), a("w1", &["prove"]), a("w2", &["prove"])],
                p(&[("w0", 7), ("w1", 7)]),
            ),
            (
                "only agents serving the kind",
                vec![r(7, "prove", 2)],
                vec![a("w0", &["aux"]), a("w1", &["prove"]), a("w2", &["aux", "prove"])],
                p(&[("w1", 7), ("w2", 7)]),
            ),
            (
                "lower stream id first, no agent twice",
                vec![r(9, "prove", 1), r(3, "prove", 2)],
                vec![a("w0", &["prove"]), a("w1", &["prove"]), a("w2", &["prove"])],
                p(&[("w0", 3), ("w1", 3), ("w2", 9)]),
            ),
            (
                "more reserved than live agents: all of them",
                vec![r(1, "prove", 5)],
                vec![a("w0", &["prove"])],
                p(&[("w0", 1)]),
            ),
            (
                "a zero reservation pins nobody",
                vec![r(1, "prove", 0)],
                vec![a("w0", &["prove"])],
                p(&[]),
            ),
        ];
        for (name, res, agents, want) in cases {
            assert_eq!(pinned(&res, &agents), want, "{name}");
        }
    }

    #[test]
    fn slots_of_a_pinned_agent_are_pinned() {
        let pins = pin_agents(&[r(1, "prove", 1)], &[a("host-a", &["prove"]), a("b", &["prove"])]);
        for (claimer, want) in
            [("host-a", Some(1)), ("host-a/3", Some(1)), ("b/0", None), ("host-ab/0", None)]
        {
            assert_eq!(pin_of(claimer, &pins).map(|p| p.stream_id), want, "{claimer}");
        }
    }
}
