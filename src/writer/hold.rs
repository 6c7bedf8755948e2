//! Replies held for the replica (`replication.ack: replicated`).
//!
//! The replies of each commit are held until a sync that started after
//! that COMMIT has answered ([`super::Writer::replicated_through`]); a reply
//! held longer than `replication.max_lag` is answered
//! [`Error::NotReplicated`] (the write stays committed locally).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::WriteReply;
use crate::{Error, Result};

/// The replies of one commit (a group, a lone write, a transaction or a
/// closure that wrote), held for the replica.
#[derive(Debug)]
pub(crate) struct Held<R> {
    /// The store's commit count after the COMMIT.
    pub(crate) commits: u64,
    pub(crate) since: Instant,
    pub(crate) replies: Vec<HeldReply<R>>,
}

/// One held reply.
pub(crate) enum HeldReply<R> {
    /// A single write, counted when answered.
    Write(R, Result<usize>),
    /// A transaction or a closure that wrote, counted at its COMMIT: sends
    /// its result (`None`) or the error instead (`Some`).
    Other(Box<dyn FnOnce(Option<Error>) + Send>),
}

impl<R> std::fmt::Debug for HeldReply<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(_, result) => f.debug_tuple("Write").field(result).finish(),
            Self::Other(_) => f.write_str("Other(<reply>)"),
        }
    }
}

/// The held replies, oldest commit first, and the longest they wait.
#[derive(Debug)]
pub(crate) struct Hold<R> {
    pub(crate) max_lag: Duration,
    pub(crate) held: VecDeque<Held<R>>,
}

/// What releasing one held reply did, for the counts.
pub(crate) enum Released {
    /// A write answered: ok or not.
    Write(bool),
    /// A transaction or closure counted acknowledged at its COMMIT, now
    /// told it is not on the replica.
    Withdrawn,
    /// A transaction or closure answered as counted.
    Other,
}

impl<R: WriteReply> Hold<R> {
    pub(crate) fn new(max_lag: Duration) -> Self {
        Self {
            max_lag,
            held: VecDeque::new(),
        }
    }

    /// Holds `replies` behind commit `commits`.
    pub(crate) fn push(&mut self, commits: u64, replies: Vec<HeldReply<R>>) {
        self.held.push_back(Held {
            commits,
            since: Instant::now(),
            replies,
        });
    }

    /// Answers the held replies whose commit is on the replica
    /// (`through`), then those held past `max_lag` (all of them with
    /// `everything`); `counted` hears of each.
    pub(crate) fn release(
        &mut self,
        through: Option<u64>,
        everything: bool,
        path: &std::path::Path,
        mut counted: impl FnMut(Released),
    ) {
        while let Some(front) = self.held.front() {
            let replicated = through.is_some_and(|c| front.commits <= c);
            let waited = front.since.elapsed();
            if !replicated && !everything && waited <= self.max_lag {
                break;
            }
            let Some(group) = self.held.pop_front() else {
                break;
            };
            let not_replicated = || Error::NotReplicated {
                path: path.to_path_buf(),
                waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            };
            for held in group.replies {
                match held {
                    HeldReply::Write(reply, result) => {
                        let result = if replicated {
                            result
                        } else {
                            Err(not_replicated())
                        };
                        counted(Released::Write(result.is_ok()));
                        reply.send(result);
                    }
                    HeldReply::Other(send) if replicated => {
                        counted(Released::Other);
                        send(None);
                    }
                    HeldReply::Other(send) => {
                        counted(Released::Withdrawn);
                        send(Some(not_replicated()));
                    }
                }
            }
        }
    }
}
