//! Whose events a per-user rollup row counts: people's (every rollup since 0039/0042/0006) or
//! bots' (`context.bot = true`, migration 0052), kept in tables of the same shape apart, so
//! that the default views read exactly what they read before and a commit without bot events
//! writes nothing more. `include_bots=true` reads both, a key being one user across them.

/// Which of a per-user rollup's two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    People,
    Bots,
}

impl Who {
    /// Both, in the order every writer takes them (PostgreSQL commits lock people's rows
    /// first, then bots'); a message's bot flag as an index (`usize::from(bot)`) picks its own.
    pub(crate) const BOTH: [Who; 2] = [Who::People, Who::Bots];

    /// The tables a read takes: people's, plus bots' when they count.
    pub(crate) fn counted(include_bots: bool) -> &'static [Who] {
        if include_bots {
            &Self::BOTH
        } else {
            &Self::BOTH[..1]
        }
    }

    /// The table's name for this rollup (`user_event_days`, `user_sessions`, …): people's is
    /// the name itself, bots' takes `_bots` (`active_users_daily` is `active_bots_daily`).
    pub(crate) fn table(self, people: &'static str) -> &'static str {
        match (self, people) {
            (Self::People, t) => t,
            (Self::Bots, "user_event_days") => "user_event_days_bots",
            (Self::Bots, "active_users_daily") => "active_bots_daily",
            (Self::Bots, "user_sessions") => "user_sessions_bots",
            (Self::Bots, "sessions_hourly") => "sessions_hourly_bots",
            (Self::Bots, other) => panic!("no bot rollup of {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_per_user_rollup_has_a_bot_twin() {
        for t in [
            "user_event_days",
            "active_users_daily",
            "user_sessions",
            "sessions_hourly",
        ] {
            assert_eq!(Who::People.table(t), t);
            assert!(Who::Bots.table(t).contains("bots"));
        }
        assert_eq!(Who::counted(false), [Who::People]);
        assert_eq!(Who::counted(true), [Who::People, Who::Bots]);
    }
}
