//! `--extra mailbox-floor`: the hand-off alone, no SQLite (an actix
//! mailbox against a bounded tokio channel).

use std::time::{Duration, Instant};

use walguard_bench::IN_FLIGHT_LEVELS;

use crate::BoxError;
use crate::args::Args;

/// An actor that answers each message with its number: the mailbox alone.
pub(crate) struct Echo;

impl actix::Actor for Echo {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(walguard::settings::DEFAULT_MAILBOX_CAPACITY_MESSAGES);
    }
}

pub(crate) struct Ping(u64);

impl actix::Message for Ping {
    type Result = u64;
}

impl actix::Handler<Ping> for Echo {
    type Result = u64;

    fn handle(&mut self, msg: Ping, _: &mut Self::Context) -> u64 {
        msg.0
    }
}

/// A request to the channel echo: its number and where the answer goes.
pub(crate) type ChannelPing = (u64, tokio::sync::oneshot::Sender<u64>);

/// Sends `n` messages from `in_flight` tasks, each awaiting its answer
/// before its next; the elapsed time, CPU time and p50 in µs.
pub(crate) async fn echo_loop<F, Fut>(
    n: u64,
    in_flight: usize,
    send: F,
) -> (Duration, Duration, f64)
where
    F: Fn(u64) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Option<u64>>,
{
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    let next = Rc::new(Cell::new(0u64));
    let hist = Rc::new(RefCell::new(walguard_bench::Histogram::new()));
    let cpu = walguard_bench::cpu_time();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (next, hist, send) = (Rc::clone(&next), Rc::clone(&hist), send.clone());
        tasks.push(actix_rt::spawn(async move {
            loop {
                let i = next.get();
                if i >= n {
                    return;
                }
                next.set(i + 1);
                let t = Instant::now();
                if send(i).await != Some(i) {
                    return;
                }
                hist.borrow_mut().record(t.elapsed());
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let cpu = walguard_bench::cpu_time()
        .zip(cpu)
        .map_or(Duration::ZERO, |(a, b)| a.saturating_sub(b));
    let p50 = hist.borrow_mut().percentile_us(50.0);
    (elapsed, cpu, p50)
}

/// The hand-off alone: actix mailbox against a drained tokio channel.
pub(crate) async fn mailbox_floor(args: &Args) -> Result<(), BoxError> {
    for round in 1..=args.runs {
        for in_flight in IN_FLIGHT_LEVELS {
            let n = if in_flight == 1 {
                args.lone_writes.unwrap_or(args.writes)
            } else {
                args.writes
            };
            // actix: an actor on its own arbiter, as DbActor runs.
            let arbiter = actix::Arbiter::new();
            let addr = actix::Actor::start_in_arbiter(&arbiter.handle(), |_| Echo);
            let actix_run = echo_loop(n, in_flight, move |i| {
                let addr = addr.clone();
                async move { addr.send(Ping(i)).await.ok() }
            })
            .await;
            arbiter.stop();
            // A thread draining a bounded channel, as the batching writer.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<ChannelPing>(
                walguard::settings::DEFAULT_MAILBOX_CAPACITY_MESSAGES,
            );
            let thread = std::thread::spawn(move || {
                let mut batch = Vec::with_capacity(1024);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < 1024 {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    for (i, reply) in batch.drain(..) {
                        let _ = reply.send(i);
                    }
                }
            });
            let channel_run = echo_loop(n, in_flight, move |i| {
                let tx = tx.clone();
                async move {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    tx.send((i, reply)).await.ok()?;
                    answer.await.ok()
                }
            })
            .await;
            let _ = thread.join();
            for (system, (elapsed, cpu, p50)) in
                [("actix-mailbox", actix_run), ("channel-drain", channel_run)]
            {
                println!(
                    "{{\"measure\":\"mailbox-floor\",\"system\":\"{system}\",\"round\":{round},\
                     \"in_flight\":{in_flight},\"messages\":{n},\"per_second\":{:.0},\
                     \"cpu_us_per_message\":{:.3},\"p50_us\":{p50:.1}}}",
                    n as f64 / elapsed.as_secs_f64(),
                    cpu.as_secs_f64() * 1e6 / n as f64,
                );
            }
        }
    }
    Ok(())
}
