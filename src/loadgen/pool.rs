//! Engine threads shared by several loads: a cluster's shards. Each shard
//! runs its own perf (its own keys, ledger, cleanup, rounds) and hands each
//! phase's engine instances ("lanes", `multi::split`) to the pool; once every
//! shard still running has handed in its next phase, the pool starts them
//! together, lane i of every shard on engine thread i (`--threads N`: N
//! threads in all, each driving connections to every shard, as
//! redis-benchmark --cluster's one thread does), or each shard's lanes on
//! threads of their own (`--threads-per-shard M`: shards x M threads).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use tokio::sync::oneshot;

use super::engine::{self, EngineConfig, EngineResult};

/// How the shards' lanes are put on threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Lane i of every shard on thread i: N threads in all.
    Total,
    /// Every lane of every shard on a thread of its own.
    PerShard,
}

/// One engine instance handed to the pool.
pub struct Job {
    pub cfg: EngineConfig,
    pub result: oneshot::Sender<Result<EngineResult>>,
    /// Runs once its engine thread has stopped writing.
    pub finished: Box<dyn FnOnce() + Send>,
}

pub struct Pool {
    threads: Threads,
    state: Mutex<State>,
    /// The most engine threads that ran at once.
    most: AtomicUsize,
}

struct State {
    /// Members (shards) whose perf is still running.
    active: Vec<bool>,
    /// Each member's next phase, handed in and not started yet.
    pending: Vec<Option<Vec<Job>>>,
}

/// A member's place in the pool; its phases go in with `submit` (the
/// engine configs carry it).
pub struct Seat {
    pool: Arc<Pool>,
    member: usize,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pool seat {}", self.member)
    }
}

impl Pool {
    /// A pool for `members` loads, one seat each (seat k for member k), and
    /// for each the guard that takes it out of the pool when dropped (its
    /// perf is over, or failed): the others then go on without it.
    pub fn new(threads: Threads, members: usize) -> (Arc<Pool>, Vec<(Arc<Seat>, Leave)>) {
        let pool = Arc::new(Pool {
            threads,
            state: Mutex::new(State {
                active: vec![true; members],
                pending: (0..members).map(|_| None).collect(),
            }),
            most: AtomicUsize::new(0),
        });
        let seats = (0..members)
            .map(|member| {
                let seat = Arc::new(Seat {
                    pool: pool.clone(),
                    member,
                });
                (seat.clone(), Leave(seat))
            })
            .collect();
        (pool, seats)
    }

    /// The most engine threads that ran at once (0 before any phase).
    pub fn threads_run(&self) -> usize {
        self.most.load(Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every active member has handed in a phase: take them all.
    fn ready(state: &mut State) -> Option<Vec<(usize, Vec<Job>)>> {
        let waiting = state.pending.iter().any(Option::is_some);
        let all = state
            .active
            .iter()
            .zip(&state.pending)
            .all(|(a, p)| !a || p.is_some());
        if !(waiting && all) {
            return None;
        }
        Some(
            state
                .pending
                .iter_mut()
                .enumerate()
                .filter_map(|(k, p)| p.take().map(|jobs| (k, jobs)))
                .collect(),
        )
    }

    /// Start the members' phases: lanes grouped onto threads.
    fn launch(&self, phases: Vec<(usize, Vec<Job>)>) {
        let stride = phases
            .iter()
            .flat_map(|(_, j)| j.iter().map(|j| j.cfg.lane + 1))
            .max()
            .unwrap_or(1);
        let mut threads: BTreeMap<usize, Vec<Job>> = BTreeMap::new();
        for (member, jobs) in phases {
            for job in jobs {
                let lane = job.cfg.lane;
                let thread = match self.threads {
                    Threads::Total => lane,
                    Threads::PerShard => member * stride + lane,
                };
                threads.entry(thread).or_default().push(job);
            }
        }
        self.most.fetch_max(threads.len(), Ordering::Relaxed);
        for jobs in threads.into_values() {
            start(jobs);
        }
    }
}

/// One engine thread running `jobs` side by side; each result to its job.
fn start(jobs: Vec<Job>) {
    let mut cfgs = Vec::with_capacity(jobs.len());
    let mut senders = Vec::with_capacity(jobs.len());
    let mut finish = Vec::with_capacity(jobs.len());
    for j in jobs {
        cfgs.push(j.cfg);
        senders.push(j.result);
        finish.push(j.finished);
    }
    let finished = move || finish.into_iter().for_each(|f| f());
    let results = match engine::start_many(cfgs, finished) {
        Ok(rx) => rx,
        Err(e) => {
            for s in senders {
                let _ = s.send(Err(anyhow!("{e:#}")));
            }
            return;
        }
    };
    // The results cross back on a plain thread: the caller may be on any
    // runtime, or none (a seat dropped at the end of a run).
    let _ = std::thread::Builder::new()
        .name("redlab-perf-results".into())
        .spawn(move || {
            let all = results.blocking_recv().unwrap_or_default();
            let mut all = all.into_iter();
            for s in senders {
                let r = all
                    .next()
                    .unwrap_or_else(|| Err(anyhow!("the perf engine thread stopped")));
                let _ = s.send(r);
            }
        });
}

impl Seat {
    /// Hand in this member's next phase; it starts once every other active
    /// member has handed in one too (or left).
    pub fn submit(&self, jobs: Vec<Job>) {
        let ready = {
            let mut st = self.pool.state();
            st.pending[self.member] = Some(jobs);
            Pool::ready(&mut st)
        };
        if let Some(phases) = ready {
            self.pool.launch(phases);
        }
    }
}

/// Takes its seat out of the pool when dropped.
pub struct Leave(Arc<Seat>);

impl Drop for Leave {
    fn drop(&mut self) {
        let seat = &self.0;
        let ready = {
            let mut st = seat.pool.state();
            st.active[seat.member] = false;
            // A phase handed in and abandoned still starts: its jobs are
            // cancelled, they connect and stop without writing.
            Pool::ready(&mut st)
        };
        if let Some(phases) = ready {
            seat.pool.launch(phases);
        }
    }
}
