//! Whether a run may write, and what its writes did.
//!
//! Before the first write (`prepare_writes`): the master must have room for
//! what the run writes and may have in flight, without evicting anybody's
//! keys (unless `--allow-eviction`); the user must be allowed to delete what
//! it writes (an UNLINK of a key that does not exist asks the ACL without
//! writing anything); then the run registers itself and keeps a heartbeat.
//! At the end (`eviction_checks`): every node's `evicted_keys` is compared
//! with the first survey's: an increase while redlab wrote fails the run.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;

use super::registry::{self, RunRecord};
use super::Ctx;
use crate::client::{Conn, ErrorKind};
use crate::report::{plural, Check, NodeInfo};
use crate::survey::{Master, Survey};
use crate::topology::Node;

/// Above this share of maxmemory a master is full for redlab's purposes:
/// allocator overhead and fragmentation make the last tenth unreliable.
const FULL: f64 = 0.9;

#[derive(Debug, Clone)]
enum Gate {
    NotAsked,
    Open,
    Closed(Refused),
}

/// Why a run may not write: the error `prepare_writes` returns.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub kind: RefusedKind,
    pub message: String,
}

impl RefusedKind {
    /// Why `prepare_writes` refused, when that is what `e` is.
    pub fn of(e: &anyhow::Error) -> Option<RefusedKind> {
        let e = super::Measured::error(e);
        e.downcast_ref::<Refused>().map(|r| r.kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedKind {
    /// Writing would evict user keys (consent: --allow-eviction).
    WouldEvict,
    /// A noeviction master at its limit: writes are refused (OOM) anyway.
    NoRoom,
    /// What it wrote could not be removed (ACL), or the master said no.
    CannotClean,
    /// The master refuses every client's writes (NOREPLICAS: fewer good
    /// replicas than min-replicas-to-write): a fault of the topology.
    WritesRefused,
    /// The master does not serve writes (`serving::Serving`: LOADING, BUSY,
    /// MISCONF, OOM under a policy that cannot evict): an outage.
    NotServing,
}

/// Whether `e` says a node does not serve (`serving::NotServing`, or a
/// write refused for that reason): a checking subcommand fails on it (exit
/// 1) where a writing one refuses (exit 2).
pub fn is_not_serving(e: &anyhow::Error) -> bool {
    crate::serving::NotServing::of(e).is_some()
        || RefusedKind::of(e) == Some(RefusedKind::NotServing)
}

/// A node as the first survey found it: its connection, `evicted_keys`, and
/// whether it was a full cache that evicts by design (`serving::evicting_at_limit`).
type Watched = (Node, Option<Conn>, Option<u64>, bool);

struct Inner {
    /// Every node with its survey connection and `evicted_keys` then.
    nodes: Option<Vec<Watched>>,
    /// The nodes as the first survey found them, for the report of a run
    /// an error ends after it (`Measured` carries those of a later error's).
    first_infos: Vec<NodeInfo>,
    /// `<node>.serving`, failed, for each node a survey found not serving
    /// (a subcommand that does not write runs on): once per node.
    not_serving: Vec<Check>,
    master_conn: Option<Conn>,
    gate: Gate,
    /// The delete command the ACL allows (UNLINK, else DEL).
    delete_verb: &'static str,
    /// When the last key with a TTL this run wrote is gone (unix ms).
    expiring_until_ms: u64,
    /// Keys removed by every cleanup of the run so far.
    removed: u64,
    leftovers_looked: bool,
    /// The record as last written to the registry (None: not registered yet).
    registered: Option<RunRecord>,
}

pub struct State {
    inner: Mutex<Inner>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The look for dead runs' leftovers, under way while the run starts
    /// (its round trips overlap the run's own); its checks are collected at
    /// the end (`Ctx::leftovers`).
    leftovers: Mutex<Option<tokio::task::JoinHandle<Vec<Check>>>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            inner: Mutex::new(Inner {
                nodes: None,
                first_infos: Vec::new(),
                not_serving: Vec::new(),
                master_conn: None,
                gate: Gate::NotAsked,
                delete_verb: "UNLINK",
                expiring_until_ms: 0,
                removed: 0,
                leftovers_looked: false,
                registered: None,
            }),
            heartbeat: Mutex::new(None),
            leftovers: Mutex::new(None),
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.lock().ok().and_then(|mut h| h.take()) {
            h.abort();
        }
        if let Some(h) = self.leftovers.lock().ok().and_then(|mut h| h.take()) {
            h.abort();
        }
    }
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn master_conn(&self) -> Option<Conn> {
        self.lock().master_conn.clone()
    }

    /// Whether a survey of the run was recorded (`first_survey`).
    pub fn surveyed(&self) -> bool {
        self.lock().nodes.is_some()
    }

    /// The nodes as the first survey found them (empty before it).
    pub fn first_infos(&self) -> Vec<NodeInfo> {
        self.lock().first_infos.clone()
    }

    /// Nodes a survey found not serving (`Survey::serving_checks`): kept
    /// once each, however many surveys the run takes.
    pub fn not_serving(&self, checks: Vec<Check>) {
        let mut i = self.lock();
        for c in checks {
            if !i.not_serving.iter().any(|e| e.name == c.name) {
                i.not_serving.push(c);
            }
        }
    }

    /// `<node>.serving` for every node a survey found not serving.
    pub fn serving_checks(&self) -> Vec<Check> {
        self.lock().not_serving.clone()
    }

    /// Count keys a cleanup removed.
    pub fn add_removed(&self, n: u64) {
        self.lock().removed += n;
    }

    /// Keys removed by every cleanup of the run so far.
    pub fn removed(&self) -> u64 {
        self.lock().removed
    }

    /// A new connection to the master replaces a lost one.
    pub fn set_master_conn(&self, c: Conn) {
        self.lock().master_conn = Some(c);
    }

    pub fn delete_verb(&self) -> &'static str {
        self.lock().delete_verb
    }

    /// Whether the run was allowed to write (and so may have).
    pub fn wrote(&self) -> bool {
        matches!(self.lock().gate, Gate::Open)
    }

    /// A key with this TTL was written now.
    pub fn expiring(&self, ttl: Duration) {
        let until = registry::now_ms() + ttl.as_millis() as u64;
        let mut i = self.lock();
        i.expiring_until_ms = i.expiring_until_ms.max(until);
    }

    /// Remember the first survey; look once for dead runs' leftovers.
    pub(super) async fn first_survey(&self, ctx: &Ctx, s: &Survey) {
        let first = {
            let mut i = self.lock();
            if i.nodes.is_none() {
                i.first_infos = s.infos();
                i.nodes = Some(
                    s.all()
                        .iter()
                        .map(|st| {
                            let ev = st.info.as_ref().and_then(|i| i.u64("evicted_keys"));
                            let full = st
                                .info
                                .as_ref()
                                .is_some_and(crate::serving::evicting_at_limit);
                            (st.node.clone(), st.conn.clone(), ev, full)
                        })
                        .collect(),
                );
            }
            if let Ok(m) = s.master() {
                i.master_conn.get_or_insert(m.conn.clone());
            }
            // `clean` is the remedy: it says what it removes itself.
            let first = !i.leftovers_looked && i.master_conn.is_some() && !ctx.removes_leftovers;
            i.leftovers_looked = true;
            first
        };
        if first {
            if let Some(c) = self.master_conn() {
                let who = Whose::of(ctx);
                let task = tokio::spawn(crate::timings::timed(
                    "leftover scan (registry, concurrent)",
                    async move { leftovers(c, who).await },
                ));
                if let Ok(mut h) = self.leftovers.lock() {
                    *h = Some(task);
                }
            }
        }
    }

    /// The run's record for the registry, as of now.
    fn record(&self, ctx: &Ctx) -> RunRecord {
        RunRecord {
            run_id: ctx.run_id.clone(),
            host: super::hostname(),
            pid: std::process::id(),
            started_at: humantime::format_rfc3339_seconds(ctx.started).to_string(),
            command: ctx.command.to_string(),
            db: ctx.topology.master.db(),
            ranges: ctx.ledger.ranges(),
            expiring_keys_gone_by_ms: self.lock().expiring_until_ms,
            finished: false,
        }
    }
}

impl Ctx {
    /// Before the first write: refuse what could harm the user's data or
    /// could not be cleaned up, then register the run. `need_bytes` is what
    /// the run may store and have in flight at once. Asked once; the answer
    /// stands for the run.
    pub async fn prepare_writes(&self, master: &Master<'_>, need_bytes: u64) -> Result<()> {
        self.open_gate(master, need_bytes).await?;
        self.registry_refresh().await;
        Ok(())
    }

    /// `prepare_writes` without registering: the caller adds what it is
    /// about to write to the ledger and calls `registry_refresh` before its
    /// first write, whose one registry write then carries it (one round
    /// trip instead of two).
    pub async fn prepare_writes_unregistered(
        &self,
        master: &Master<'_>,
        need_bytes: u64,
    ) -> Result<()> {
        self.open_gate(master, need_bytes).await
    }

    async fn open_gate(&self, master: &Master<'_>, need_bytes: u64) -> Result<()> {
        let gate = self.safety.lock().gate.clone();
        match gate {
            // Room is asked again for each step: a later one may write more.
            Gate::Open => {
                return match full(master, need_bytes, self.allow_eviction) {
                    Some(why) => Err(why.into()),
                    None => Ok(()),
                }
            }
            Gate::Closed(why) => return Err(why.into()),
            Gate::NotAsked => {}
        }
        if let Err(why) = self.may_write(master, need_bytes).await {
            self.safety.lock().gate = Gate::Closed(why.clone());
            return Err(why.into());
        }
        {
            let mut i = self.safety.lock();
            i.gate = Gate::Open;
            // Cleanup and the registry use this master's connection.
            i.master_conn.get_or_insert_with(|| master.conn.clone());
        }
        Ok(())
    }

    /// Room, and the right to delete what it writes; the reason if not.
    async fn may_write(&self, master: &Master<'_>, need: u64) -> Result<(), Refused> {
        if let Some(n) = master.state.not_serving() {
            return Err(Refused {
                kind: RefusedKind::NotServing,
                message: format!("{n}; refused before any write"),
            });
        }
        if let Some(why) = full(master, need, self.allow_eviction) {
            return Err(why);
        }
        // An UNLINK of a key that does not exist: the ACL answers, nothing is written.
        let probe = self.key("may-delete");
        let mut c = master.conn.clone();
        for verb in ["UNLINK", "DEL"] {
            match c.query::<u64>(redis::cmd(verb).arg(&probe)).await {
                Ok(_) => {
                    self.safety.lock().delete_verb = verb;
                    return Ok(());
                }
                Err(e) if e.kind == ErrorKind::NoPermission => continue,
                // Refused since the survey (a save failed, a script started...).
                Err(e) if matches!(e.kind, ErrorKind::Misconf | ErrorKind::Loading | ErrorKind::Busy | ErrorKind::OutOfMemory) => {
                    return Err(Refused {
                        kind: RefusedKind::NotServing,
                        message: format!("{e}; refused before any write"),
                    })
                }
                Err(e) if e.kind == ErrorKind::NoReplicas => {
                    return Err(Refused {
                        kind: RefusedKind::WritesRefused,
                        message: format!(
                            "{}: writes refused with NOREPLICAS (fewer good replicas than \
                             min-replicas-to-write requires): every client's writes fail, not only redlab's",
                            master.node().label()
                        ),
                    })
                }
                Err(e) => {
                    return Err(Refused {
                        kind: RefusedKind::CannotClean,
                        message: e.to_string(),
                    })
                }
            }
        }
        Err(Refused { kind: RefusedKind::CannotClean, message: format!(
            "{}: the ACL user may neither UNLINK nor DEL keys under {ns}, so nothing redlab \
             wrote could be removed; refused before any write. Grant it: ACL SETUSER <user> +unlink ~{ns}",
            master.node().label(),
            ns = super::namespace::pattern()
        )})
    }

    /// Record the run on the master and keep its heartbeat alive.
    async fn register(&self, mut conn: Conn) {
        let rec = self.safety.record(self);
        let tag = self.registry_tag().map(String::from);
        let beat = registry::beat(&mut conn, &rec, tag.as_deref());
        if let Err(e) = crate::timings::timed("registry: register", beat).await {
            self.say.line(&format!(
                "redlab: warning: this run could not register itself on the master ({}): \
                 if it is killed, later runs cannot tell what it left",
                e.message
            ));
            return;
        }
        self.safety.lock().registered = Some(rec.clone());
        let ledger = self.ledger.clone();
        let safety_rec = rec.clone();
        let expiring = self.safety.lock().expiring_until_ms;
        let task = tokio::spawn(async move {
            let mut rec = safety_rec;
            rec.expiring_keys_gone_by_ms = expiring;
            loop {
                tokio::time::sleep(registry::HEARTBEAT_EVERY).await;
                rec.ranges = ledger.ranges();
                let _ = registry::beat(&mut conn, &rec, tag.as_deref()).await;
            }
        });
        if let Ok(mut h) = self.safety.heartbeat.lock() {
            *h = Some(task);
        }
    }

    /// Register the run if it is not yet, else refresh its record now (a
    /// load's range was just added); a record the registry already has as
    /// it is now is not written again.
    pub async fn registry_refresh(&self) {
        if !self.safety.wrote() {
            return;
        }
        let Some(mut c) = self.safety.master_conn() else {
            return;
        };
        let rec = self.safety.record(self);
        let last = self.safety.lock().registered.clone();
        match last {
            None => self.register(c).await,
            Some(last) if last == rec => {}
            Some(_) => {
                let beat = registry::beat(&mut c, &rec, self.registry_tag());
                if crate::timings::timed("registry: refresh", beat)
                    .await
                    .is_ok()
                {
                    self.safety.lock().registered = Some(rec);
                }
            }
        }
    }

    /// `<master>.leftovers`: the dead runs' leftovers the run's first
    /// survey started looking for, once the look ends (bounded by --timeout
    /// on each of its commands); nothing when it did not look. The run adds
    /// them to its report.
    pub async fn leftovers(&self) -> Vec<Check> {
        let task = self.safety.leftovers.lock().ok().and_then(|mut h| h.take());
        let Some(task) = task else {
            return Vec::new();
        };
        task.await.unwrap_or_default()
    }

    /// Stop the heartbeat; remove the record when nothing is left, else
    /// keep it (the run then reads as dead, and `clean` finds its keys).
    pub async fn unregister(&self, everything_removed: bool) {
        let beating = self.safety.heartbeat.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = beating {
            h.abort();
            // Until the task is gone, a beat it had started may land after
            // the lines below and bring the heartbeat (and an unfinished
            // record) back for 15 s, refusing the printed `clean --run`.
            let _ = h.await;
        }
        if !self.safety.wrote() {
            return;
        }
        let Some(mut c) = self.safety.master_conn() else {
            return;
        };
        let _ = if everything_removed {
            registry::unregister(&mut c, &self.run_id, self.registry_tag()).await
        } else {
            let tag = self.registry_tag();
            let rec = RunRecord {
                finished: true,
                ..self.safety.record(self)
            };
            let _ = registry::beat(&mut c, &rec, tag).await;
            registry::stop_heartbeat(&mut c, &self.run_id, tag).await
        };
    }

    /// `<node>.evictions`: keys evicted on a node while this run wrote.
    /// On a full cache that evicts by design, every run says how many keys
    /// were evicted while it ran, written or not: at the limit reads evict too.
    pub async fn eviction_checks(&self) -> Vec<Check> {
        let wrote = self.safety.wrote();
        let nodes = self.safety.lock().nodes.clone().unwrap_or_default();
        let bound = self.timeout.min(Duration::from_secs(1));
        let mut out = Vec::new();
        for (node, conn, before, full) in nodes {
            if !wrote && !full {
                continue;
            }
            let (Some(mut c), Some(before)) = (conn, before) else {
                continue;
            };
            let info = tokio::time::timeout(bound, c.info("stats")).await;
            let Ok(Ok(info)) = info else { continue };
            let Some(after) = info.u64("evicted_keys") else {
                continue;
            };
            let n = after.saturating_sub(before);
            let name = format!("{}.evictions", node.name);
            if full && (!wrote || n == 0) {
                out.push(Check::warn(
                    name,
                    format!(
                        "a full cache that evicts by design: {} evicted while this run ran \
                         (evicted_keys {before} -> {after}); at its limit every command evicts, \
                         reads included (their replies count towards maxmemory)",
                        plural(n, "key")
                    ),
                ));
                continue;
            }
            if n == 0 {
                continue;
            }
            let reason = format!(
                "{} evicted during this run (evicted_keys {before} -> {after})",
                plural(n, "key")
            );
            out.push(if self.allow_eviction {
                Check::warn(name, format!("{reason}; allowed by --allow-eviction"))
            } else {
                Check::fail(
                    name,
                    format!("{reason}: somebody's keys were lost to make room"),
                )
            });
        }
        out
    }
}

/// Why the master has no room for `need` more bytes, if it has not.
fn full(master: &Master<'_>, need: u64, allow_eviction: bool) -> Option<Refused> {
    let i = master.info;
    let max = i.u64("maxmemory").unwrap_or(0);
    if max == 0 {
        return None;
    }
    let used = i.u64("used_memory").unwrap_or(0);
    let policy = i.get("maxmemory_policy").unwrap_or("noeviction");
    if (used.saturating_add(need) as f64) <= max as f64 * FULL {
        return None;
    }
    let memory = format!(
        "{} used of {} maxmemory, policy {policy}",
        crate::report::human_bytes(used),
        crate::report::human_bytes(max)
    );
    let at = if used as f64 > max as f64 * FULL {
        format!("{}: the master is full ({memory})", master.node().label())
    } else {
        format!(
            "{}: this run may store or have in flight ~{}, more than the master has room for ({memory})",
            master.node().label(),
            crate::report::human_bytes(need.max(1))
        )
    };
    // noeviction, or volatile-* with no key with a TTL: nothing can make room.
    if !crate::serving::evicts(i) {
        // At its limit it does not serve (`serving`): refused before this.
        if allow_eviction {
            return None;
        }
        // Below it, this run could push it there and make the users' writes fail.
        return Some(Refused {
            kind: RefusedKind::NoRoom,
            message: format!(
                "{at}: with noeviction that could fill it and make it refuse the users' writes (OOM); refused before any write (pass --allow-eviction to write anyway)"
            ),
        });
    }
    if allow_eviction {
        return None;
    }
    Some(Refused {
        kind: RefusedKind::WouldEvict,
        message: format!(
            "{at}: writing could evict user keys; refused before any write (pass --allow-eviction to write anyway)"
        ),
    })
}

/// What the leftover scan needs to know of the run, owned (it runs as a task).
struct Whose {
    run_id: String,
    tag: Option<String>,
    master: String,
    clean_hint: String,
}

impl Whose {
    fn of(ctx: &Ctx) -> Whose {
        Whose {
            run_id: ctx.run_id.clone(),
            tag: ctx.registry_tag().map(String::from),
            master: ctx.topology.master.name.clone(),
            // The run id goes in below: the hint names the dead run.
            clean_hint: clean_hint(ctx, Some("\u{0}")),
        }
    }
}

/// `master.leftovers`: dead runs (record without heartbeat) that left keys.
async fn leftovers(mut c: Conn, ctx: Whose) -> Vec<Check> {
    let c = &mut c;
    let Ok(runs) = registry::runs(c, ctx.tag.as_deref()).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (rec, alive) in runs {
        if alive || rec.run_id == ctx.run_id {
            continue;
        }
        let (left, exact) = registry::count_left(c, &rec).await.unwrap_or((0, true));
        let expiring = rec.expiring_keys_gone_by_ms > registry::now_ms();
        if left == 0 && !expiring {
            continue;
        }
        let mut what = Vec::new();
        if left > 0 {
            what.push(format!(
                "{}{}",
                if exact { "" } else { "about " },
                plural(left, "key")
            ));
        }
        if expiring {
            what.push("keys with a TTL that expire by themselves".into());
        }
        out.push(Check::warn(
            format!("{}.leftovers", ctx.master),
            format!(
                "a dead redlab run ({} on {}, pid {}, started {}) left {} under {}: \
                 remove them with `{}`",
                rec.command,
                rec.host,
                rec.pid,
                rec.started_at,
                what.join(" and "),
                super::namespace::run_prefix(&rec.run_id, None),
                ctx.clean_hint.replace('\u{0}', &rec.run_id)
            ),
        ));
    }
    out
}

/// The `redlab clean` command that works as printed for this topology: the
/// master's address and db, never its password (which goes in REDLAB_PASSWORD).
pub fn clean_hint(ctx: &Ctx, run: Option<&str>) -> String {
    let m = &ctx.topology.master;
    let scheme = if m.tls() { "rediss" } else { "redis" };
    let user = m
        .info
        .redis_settings()
        .username()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ns = super::namespace::name();
    let prefix = if ns == super::namespace::DEFAULT {
        String::new()
    } else {
        format!("--prefix {ns} ")
    };
    let mut s = format!(
        "redlab {prefix}--master {scheme}://{user}{}/{}",
        m.addr(),
        m.db()
    );
    if m.password().is_some() {
        s = format!("REDLAB_PASSWORD=... {s}");
    }
    s.push_str(" clean");
    if let Some(r) = run {
        s.push_str(&format!(" --run {r}"));
    }
    s
}
