//! The lines the guest prints on its serial console, and what the host
//! reads from them. One format for both sides: the guest's init script and
//! writer print them, the host parses them.
//!
//! Every line starts with [`PREFIX`]; the kernel's own messages and
//! libtest's lines are ignored. A line the host received was printed before
//! the kill, so everything it reports happened before the crash. Lines still
//! on their way (in the guest's tty buffer or QEMU's) when QEMU dies are
//! lost: the host then knows less, never more, than the guest did.

/// Prefix of every protocol line.
pub(crate) const PREFIX: &str = "walguard-kernel-lab:";

/// One protocol line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// From init: the guest booted this kernel release (`uname -r`).
    Boot(String),
    /// From init: a step of the boot failed.
    Fail(String),
    /// From init: the accelerator probe reached user space.
    ProbeOk,
    /// From init: the writer exited with this status (it should have been
    /// killed first).
    WriterExit(String),
    /// From the writer: the table exists, writes begin.
    Ready,
    /// From the writer: rows `first..=last` were acknowledged.
    Ack(u64, u64),
    /// From the writer: every row up to this id is durable, as walguard
    /// reports it ("durable through").
    Durable(u64),
    /// From the writer: a clean shutdown began.
    ShutdownBegin,
    /// From the writer: the clean shutdown returned.
    ShutdownEnd,
    /// From the writer: its own bookkeeping failed (a harness failure).
    Error(String),
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Boot(release) => write!(f, "{PREFIX} boot {release}"),
            Self::Fail(what) => write!(f, "{PREFIX} fail {what}"),
            Self::ProbeOk => write!(f, "{PREFIX} probe-ok"),
            Self::WriterExit(status) => write!(f, "{PREFIX} writer-exit {status}"),
            Self::Ready => write!(f, "{PREFIX} ready"),
            Self::Ack(first, last) => write!(f, "{PREFIX} ack {first} {last}"),
            Self::Durable(row) => write!(f, "{PREFIX} durable {row}"),
            Self::ShutdownBegin => write!(f, "{PREFIX} shutdown-begin"),
            Self::ShutdownEnd => write!(f, "{PREFIX} shutdown-end"),
            Self::Error(what) => write!(f, "{PREFIX} error {what}"),
        }
    }
}

impl Line {
    /// The protocol line in `raw` (a line of the serial console), if any.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        // libtest may have begun the line ("test guest_writer ... ").
        let at = raw.find(PREFIX)?;
        let rest = raw[at + PREFIX.len()..].trim();
        let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        let number = |s: &str| s.trim().parse::<u64>().ok();
        Some(match word {
            "boot" => Self::Boot(arg.to_owned()),
            "fail" => Self::Fail(arg.to_owned()),
            "probe-ok" => Self::ProbeOk,
            "writer-exit" => Self::WriterExit(arg.to_owned()),
            "ready" => Self::Ready,
            "ack" => {
                let (first, last) = arg.split_once(' ')?;
                Self::Ack(number(first)?, number(last)?)
            }
            "durable" => Self::Durable(number(arg)?),
            "shutdown-begin" => Self::ShutdownBegin,
            "shutdown-end" => Self::ShutdownEnd,
            "error" => Self::Error(arg.to_owned()),
            _ => return None,
        })
    }
}

/// What the host learnt from one guest's console up to the kill.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transcript {
    /// The guest kernel's release, from its boot line.
    pub(crate) kernel: Option<String>,
    /// The writer announced it was ready.
    pub(crate) ready: bool,
    /// Rows acknowledged, counted.
    pub(crate) acked_rows: u64,
    /// The highest acknowledged row id.
    pub(crate) max_acked: u64,
    /// The last "durable through" row id.
    pub(crate) durable: u64,
    /// "durable through" moves seen.
    pub(crate) durable_moves: u64,
    /// A clean shutdown had begun and not ended at the kill.
    pub(crate) in_shutdown: bool,
    /// Clean shutdowns completed before the kill.
    pub(crate) shutdowns: u64,
    /// Failures the guest reported (boot steps, the writer's bookkeeping,
    /// a writer that exited by itself).
    pub(crate) failures: Vec<String>,
}

impl Transcript {
    /// Takes one line into account.
    pub(crate) fn take(&mut self, line: &Line) {
        match line {
            Line::Boot(release) => self.kernel = Some(release.clone()),
            Line::Fail(what) => self.failures.push(format!("guest boot: {what}")),
            Line::WriterExit(status) => self
                .failures
                .push(format!("the writer exited ({status}) before the kill")),
            Line::Error(what) => self.failures.push(format!("guest writer: {what}")),
            Line::ProbeOk => {}
            Line::Ready => self.ready = true,
            Line::Ack(first, last) => {
                self.acked_rows += last + 1 - first;
                self.max_acked = self.max_acked.max(*last);
            }
            Line::Durable(row) => {
                self.durable_moves += 1;
                self.durable = self.durable.max(*row);
            }
            Line::ShutdownBegin => self.in_shutdown = true,
            Line::ShutdownEnd => {
                self.in_shutdown = false;
                self.shutdowns += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_noise_is_ignored() {
        for line in [
            Line::Boot("6.1.0-50-amd64".into()),
            Line::Ready,
            Line::Ack(3, 9),
            Line::Durable(7),
            Line::ShutdownBegin,
            Line::Error("x y".into()),
        ] {
            assert_eq!(Line::parse(&format!("{line}\r")), Some(line));
        }
        assert_eq!(Line::parse("[    3.38] reboot: Power down"), None);
        assert_eq!(Line::parse(&format!("{PREFIX} ack 3")), None);
        assert_eq!(
            Line::parse(&format!("test guest_writer ... {}", Line::Ready)),
            Some(Line::Ready)
        );
    }
}
