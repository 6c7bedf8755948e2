//! "Replicated through": the commit count Litestream is known to hold
//! ([`ReplicationTracker`]), and the lag behind it.

use std::fmt;
use std::time::{Duration, Instant};

use super::CheckpointOwner;

/// What a `/sync` asked before it started: the counts it can vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTicket {
    commits: u64,
    writes: u64,
    started: Instant,
}

impl SyncTicket {
    /// Commits made before the sync started.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits
    }
    /// Writes those commits acknowledged.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes
    }
    /// When the sync started.
    #[must_use]
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// The replicated point and its lag, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Replicated {
    /// The first this many commits are on the replica.
    pub commits: u64,
    /// The first this many acknowledged writes are on the replica.
    pub writes: u64,
    /// Commits made through the store, as last seen.
    pub local_commits: u64,
    /// Writes acknowledged through the store, as last seen.
    pub local_writes: u64,
    /// How old the replicated point is while commits wait beyond it.
    pub lag: Duration,
    /// Syncs that answered `synced` or `no_change`.
    pub syncs: u64,
    /// Syncs that failed or got no answer.
    pub sync_failures: u64,
    /// Who runs the checkpoints now.
    pub owner: CheckpointOwner,
    /// Whether Litestream answered its last sync.
    pub healthy: bool,
}

impl Replicated {
    /// Commits not yet known to be on the replica.
    #[must_use]
    pub fn unreplicated_commits(&self) -> u64 {
        self.local_commits.saturating_sub(self.commits)
    }
    /// Acknowledged writes not yet known to be on the replica.
    #[must_use]
    pub fn unreplicated_writes(&self) -> u64 {
        self.local_writes.saturating_sub(self.writes)
    }
}

impl fmt::Display for Replicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unreplicated_commits() == 0 {
            write!(
                f,
                "replicated through: all {} commits ({} writes); nothing exposed to a machine loss",
                self.commits, self.writes
            )
        } else {
            write!(
                f,
                "replicated through: commit {} of {}; {} commits ({} writes) exposed to a machine loss, lag {:.1}s",
                self.commits,
                self.local_commits,
                self.unreplicated_commits(),
                self.unreplicated_writes(),
                self.lag.as_secs_f64()
            )
        }
    }
}

/// A change of the lag episode, for the caller to log.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LagEvent {
    /// The lag passed `max_lag`: warn, once for the episode.
    Started {
        /// The lag.
        lag: Duration,
        /// Commits waiting beyond the replicated point.
        commits: u64,
    },
    /// The lag came back under `max_lag`.
    Ended {
        /// How long the episode lasted.
        lasted: Duration,
    },
}

/// The "replicated through" bookkeeping (see the module docs).
#[derive(Debug, Clone)]
pub struct ReplicationTracker {
    max_lag: Duration,
    commits: u64,
    writes: u64,
    local_commits: u64,
    local_writes: u64,
    /// The latest moment before which every commit is known to be on the
    /// replica: the start of the newest sync that answered, or a look that
    /// found nothing missing (or the session start). The oldest commit the
    /// replica lacks was made after it, so the lag is measured from it.
    replicated_at: Instant,
    syncs: u64,
    failures: u64,
    healthy: bool,
    owner: CheckpointOwner,
    episode_since: Option<Instant>,
}

impl ReplicationTracker {
    /// A tracker from `now`, warning above `max_lag`. Commits made before
    /// the store opened are not counted (the store counts from 0).
    #[must_use]
    pub fn new(max_lag: Duration, now: Instant) -> Self {
        Self {
            max_lag,
            commits: 0,
            writes: 0,
            local_commits: 0,
            local_writes: 0,
            replicated_at: now,
            syncs: 0,
            failures: 0,
            healthy: false,
            owner: CheckpointOwner::Walguard,
            episode_since: None,
        }
    }

    /// A sync is about to be asked for, with the store's counts taken now.
    pub fn begin(&mut self, commits: u64, writes: u64, now: Instant) -> SyncTicket {
        self.see_local(commits, writes, now);
        SyncTicket {
            commits,
            writes,
            started: now,
        }
    }

    /// The store's counts, seen at `now` without a sync (the replication
    /// actor looks at every tick, so the lag starts counting within a tick
    /// of a commit the replica lacks). Seen with nothing missing, `now`
    /// is a moment up to which the replica held everything.
    pub fn see_local(&mut self, commits: u64, writes: u64, now: Instant) {
        if commits >= self.local_commits {
            self.local_commits = commits;
            self.local_writes = writes;
        }
        if self.local_commits <= self.commits {
            self.replicated_at = self.replicated_at.max(now);
        }
    }

    /// The sync of `ticket` answered `synced` or `no_change`: every commit
    /// it counted is on the replica.
    pub fn synced(&mut self, ticket: SyncTicket) {
        self.syncs += 1;
        self.healthy = true;
        if ticket.commits >= self.commits {
            self.commits = ticket.commits;
            self.writes = ticket.writes;
            self.replicated_at = self.replicated_at.max(ticket.started);
        }
    }

    /// A sync failed or got no answer.
    pub fn failed(&mut self) {
        self.failures += 1;
        self.healthy = false;
    }

    /// Sets who runs the checkpoints; `true` when that changed.
    pub fn set_owner(&mut self, owner: CheckpointOwner) -> bool {
        let changed = self.owner != owner;
        self.owner = owner;
        changed
    }

    /// Who runs the checkpoints.
    #[must_use]
    pub fn owner(&self) -> CheckpointOwner {
        self.owner
    }

    /// The replicated point, and the lag at `now`.
    #[must_use]
    pub fn replicated(&self, now: Instant) -> Replicated {
        let lag = if self.local_commits > self.commits {
            now.saturating_duration_since(self.replicated_at)
        } else {
            Duration::ZERO
        };
        Replicated {
            commits: self.commits,
            writes: self.writes,
            local_commits: self.local_commits,
            local_writes: self.local_writes,
            lag,
            syncs: self.syncs,
            sync_failures: self.failures,
            owner: self.owner,
            healthy: self.healthy,
        }
    }

    /// Looks at the lag at `now`: [`LagEvent::Started`] once when an
    /// episode above `max_lag` begins, [`LagEvent::Ended`] when it ends.
    pub fn observe(&mut self, now: Instant) -> Option<LagEvent> {
        let r = self.replicated(now);
        match (self.episode_since, r.lag > self.max_lag) {
            (None, true) => {
                self.episode_since = Some(now);
                Some(LagEvent::Started {
                    lag: r.lag,
                    commits: r.unreplicated_commits(),
                })
            }
            (Some(since), false) => {
                self.episode_since = None;
                Some(LagEvent::Ended {
                    lasted: now.saturating_duration_since(since),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicated_point_moves_only_on_answers_and_forward() {
        let t0 = Instant::now();
        let mut t = ReplicationTracker::new(Duration::from_secs(10), t0);
        let a = t.begin(5, 7, t0);
        t.see_local(9, 11, t0);
        assert_eq!(t.replicated(t0).commits, 0);
        t.synced(a);
        let r = t.replicated(t0 + Duration::from_secs(2));
        assert_eq!((r.commits, r.writes, r.unreplicated_commits()), (5, 7, 4));
        assert_eq!(r.lag, Duration::from_secs(2));
        // An older ticket answering late does not move it back.
        let old = SyncTicket {
            commits: 3,
            writes: 3,
            started: t0,
        };
        t.synced(old);
        assert_eq!(t.replicated(t0).commits, 5);
        let b = t.begin(9, 11, t0 + Duration::from_secs(3));
        t.failed();
        assert!(!t.replicated(t0).healthy);
        t.synced(b);
        let r = t.replicated(t0 + Duration::from_secs(4));
        assert_eq!((r.commits, r.lag), (9, Duration::ZERO));
    }

    #[test]
    fn lag_warns_once_per_episode() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = ReplicationTracker::new(s(1), t0);
        t.see_local(1, 1, t0);
        assert_eq!(t.observe(t0), None);
        assert!(matches!(
            t.observe(t0 + s(2)),
            Some(LagEvent::Started { .. })
        ));
        assert_eq!(t.observe(t0 + s(3)), None);
        let ticket = t.begin(1, 1, t0 + s(3));
        t.synced(ticket);
        assert!(matches!(t.observe(t0 + s(4)), Some(LagEvent::Ended { .. })));
    }

    /// The lag counts from the last moment the replica held everything, as
    /// soon as a look sees a commit it lacks: never 0 while one is missing,
    /// and not the age of the last sync while none is.
    #[test]
    fn the_lag_counts_from_the_oldest_missing_commit() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = ReplicationTracker::new(s(10), t0);
        let ticket = t.begin(5, 5, t0);
        t.synced(ticket);
        // Nothing missing for a while: no lag, however old the sync.
        t.see_local(5, 5, t0 + s(3));
        assert_eq!(t.replicated(t0 + s(4)).lag, Duration::ZERO);
        // A look sees commit 6: it was made after the last look that found
        // nothing missing (t0 + 3 s).
        t.see_local(6, 6, t0 + s(4));
        let r = t.replicated(t0 + s(5));
        assert_eq!(r.unreplicated_commits(), 1);
        assert_eq!(r.lag, s(2));
    }
}
