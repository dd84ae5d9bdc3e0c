//! The state machine of one rule: ok → pending (`for`) → firing → ok (resolved), with cooldown
//! and repeat. Pure: the evaluator feeds it a verdict and the time, and stores what it returns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::domain::rule::{Phase, RuleState};

/// Why a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Threshold,
    Anomaly,
    NoData,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::Anomaly => "anomaly",
            Self::NoData => "no_data",
        }
    }
}

/// What the latest closed bucket says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Breach(Reason),
    Clear,
    /// No data, and the rule keeps its state meanwhile.
    Hold,
}

/// The rule's timing, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub for_ms: i64,
    pub cooldown_ms: i64,
    /// 0: never repeat.
    pub repeat_ms: i64,
}

/// What someone should be told about a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Fire(Reason),
    Repeat,
    Resolve,
}

/// The next state and what to tell, given the verdict at `now`.
pub fn step(state: &RuleState, verdict: Verdict, now: i64, timing: Timing) -> (RuleState, Action) {
    let mut next = state.clone();
    let action = match (state.phase, verdict) {
        (_, Verdict::Hold) => Action::None,
        (Phase::Ok, Verdict::Clear) => Action::None,
        (Phase::Pending, Verdict::Clear) => {
            next.phase = Phase::Ok;
            next.pending_since = None;
            Action::None
        }
        (Phase::Firing, Verdict::Clear) => {
            next.phase = Phase::Ok;
            next.pending_since = None;
            next.resolved_at = Some(now);
            Action::Resolve
        }
        (Phase::Firing, Verdict::Breach(_)) => {
            let due = state
                .last_notified_at
                .is_none_or(|at| now - at >= timing.repeat_ms);
            if timing.repeat_ms > 0 && due {
                next.last_notified_at = Some(now);
                Action::Repeat
            } else {
                Action::None
            }
        }
        (Phase::Ok | Phase::Pending, Verdict::Breach(reason)) => {
            let since = state.pending_since.unwrap_or(now);
            let held = now - since >= timing.for_ms;
            let cooled = state
                .resolved_at
                .is_none_or(|at| now - at >= timing.cooldown_ms);
            if held && cooled {
                next.phase = Phase::Firing;
                next.pending_since = None;
                next.firing_since = Some(now);
                next.last_notified_at = Some(now);
                Action::Fire(reason)
            } else {
                next.phase = Phase::Pending;
                next.pending_since = Some(since);
                Action::None
            }
        }
    };
    (next, action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> RuleState {
        RuleState {
            phase: Phase::Ok,
            version: 0,
            pending_since: None,
            firing_since: None,
            last_notified_at: None,
            resolved_at: None,
            alert_id: None,
            last_bucket: None,
            last_outcome: None,
        }
    }

    const BREACH: Verdict = Verdict::Breach(Reason::Threshold);

    #[test]
    fn for_cooldown_and_repeat() {
        let t = Timing {
            for_ms: 10,
            cooldown_ms: 100,
            repeat_ms: 50,
        };
        let (s, a) = step(&ok(), BREACH, 0, t);
        assert_eq!((s.phase, a), (Phase::Pending, Action::None));
        let (s, a) = step(&s, BREACH, 10, t);
        assert_eq!(
            (s.phase, a),
            (Phase::Firing, Action::Fire(Reason::Threshold))
        );
        let (s, a) = step(&s, BREACH, 40, t);
        assert_eq!(a, Action::None);
        let (s, a) = step(&s, BREACH, 60, t);
        assert_eq!(a, Action::Repeat);
        let (s, a) = step(&s, Verdict::Clear, 70, t);
        assert_eq!((s.phase, a), (Phase::Ok, Action::Resolve));
        // Breaching again inside the cooldown waits in pending.
        let (s, a) = step(&s, BREACH, 100, t);
        let (s, a2) = step(&s, BREACH, 150, t);
        assert_eq!(
            (a, a2, s.phase),
            (Action::None, Action::None, Phase::Pending)
        );
        let (_, a) = step(&s, BREACH, 170, t);
        assert_eq!(a, Action::Fire(Reason::Threshold));
    }
}
