//! clean: remove what dead redlab runs left (a run killed with SIGKILL, a
//! master lost mid-run). A run is dead when its heartbeat has expired or it
//! marked itself finished; a live run's keys are never touched. Only keys of
//! runs redlab can prove were its own are removed: a run recorded in the
//! registry, or the one named with `--run ID` (an id as redlab makes them).
//! Any other key under the namespace (`redlab:myapp:...` is somebody's) is
//! counted, named and left alone. Keys are found with SCAN MATCH on the
//! namespace (every key redlab writes starts with `redlab:<run-id>:`),
//! removed with UNLINK in bounded batches at a bounded rate, and the replicas
//! follow through replication; what remains on each node is counted afterwards.
//!
//! On a cluster this runs on every shard master (one `Ctx` per shard): SCAN
//! sees only the node's own keys, every registry on the shard is read (a
//! run's record is kept on each shard it wrote to), and each UNLINK holds
//! keys of one slot only (a multi-key command across slots is CROSSSLOT).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::client::{Conn, ErrorKind};
use crate::report::{plural, Check, Details, Report, Section};
use crate::run::Ctx;
use crate::run::{namespace, registry};
use crate::survey::{NodeState, Survey};

/// A key with the run id it belongs to.
type Owned = (String, Vec<u8>);

#[derive(Clone)]
pub struct Config {
    /// One run's id, or None for every dead run.
    pub run: Option<String>,
    /// At most this many keys removed per second.
    pub rate: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CleanDetails {
    /// The SCAN pattern used.
    pub pattern: String,
    /// Per dead run: what was removed.
    pub runs: Vec<RunCleaned>,
    /// Live runs whose keys were left alone.
    pub live_runs: Vec<String>,
    /// Keys of those live runs seen on the master (left alone).
    #[serde(default)]
    pub live_keys: u64,
    /// Keys removed on the master in all.
    pub removed: u64,
    /// Keys under the namespace that no run redlab knows of wrote (no
    /// registry record, no --run): somebody else's, left alone.
    #[serde(default)]
    pub foreign_keys: u64,
    /// A few of them, as redis-cli shows a name (`\xNN` for other bytes).
    #[serde(default)]
    pub foreign_examples: Vec<String>,
    /// What remains on each node afterwards.
    pub nodes: Vec<NodeLeft>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RunCleaned {
    pub run_id: String,
    /// From its registry record, where it had one.
    pub command: Option<String>,
    pub host: Option<String>,
    pub started_at: Option<String>,
    /// Keys removed.
    pub removed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NodeLeft {
    pub name: String,
    pub address: String,
    /// Keys of dead runs still there (null: it could not be asked).
    pub remaining: Option<u64>,
    pub error: Option<String>,
}

/// Whose a key under the namespace is, as far as redlab can prove.
#[derive(Default)]
struct Owners {
    /// Runs recorded in the registry whose heartbeat is gone (or that marked
    /// themselves finished), and the run named with --run.
    dead: BTreeSet<String>,
    /// Recorded runs still beating.
    live: BTreeSet<String>,
}

enum Whose {
    Dead(String),
    Live(String),
    /// A registry hash: it goes record by record, not as a key.
    Registry,
    /// Not provably redlab's.
    Foreign,
}

impl Owners {
    fn of(&self, key: &[u8]) -> Whose {
        if std::str::from_utf8(key).is_ok_and(registry::is_runs_key) {
            return Whose::Registry;
        }
        match namespace::run_of(key) {
            Some(id) if self.live.contains(&id) => Whose::Live(id),
            Some(id) if self.dead.contains(&id) => Whose::Dead(id),
            _ => Whose::Foreign,
        }
    }
}

/// The SCAN pattern: one run's keys, or the whole namespace.
fn pattern_for(run: Option<&str>) -> Result<String> {
    match run {
        Some(id) if !namespace::is_run_id(id) => bail!(
            "--run {id:?} is not a run id: redlab prints its run ids as {} lower-case letters and \
             digits (e.g. 01dkdz2yw1); clean removes only keys of a run it can prove was redlab's",
            namespace::RUN_ID_LEN
        ),
        Some(id) => Ok(format!("{}*", namespace::run_prefix(id, None))),
        None => Ok(namespace::pattern()),
    }
}

/// Who owns what, from the registry (every registry on the node).
async fn owners(
    conn: &mut Conn,
    cluster: bool,
    named: Option<&str>,
) -> (Owners, Vec<(registry::RunRecord, bool, Option<String>)>) {
    let runs = registry::all_runs(conn, cluster).await.unwrap_or_default();
    let mut o = Owners::default();
    for (rec, alive, _) in &runs {
        if *alive {
            o.live.insert(rec.run_id.clone());
        } else if named.is_none_or(|id| id == rec.run_id) {
            o.dead.insert(rec.run_id.clone());
        }
    }
    if let Some(id) = named.filter(|id| !o.live.contains(*id)) {
        o.dead.insert(id.to_string());
    }
    (o, runs)
}

/// How many examples of somebody else's keys a report names.
const EXAMPLES: usize = 5;

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<CleanDetails>> {
    if cfg.rate == 0 {
        bail!("--rate must be at least 1 key per second");
    }
    let pattern = pattern_for(cfg.run.as_deref())?;
    let survey = ctx.survey().await?;
    let master = match survey.master() {
        Ok(m) => m,
        Err(e) if survey.master_state().error.is_some() => {
            return master_gone(ctx, &survey, &cfg, pattern, format!("{e:#}")).await;
        }
        Err(e) => return Err(e),
    };
    let mut conn = master.conn.clone();
    let cluster = ctx.shard.is_some();
    let (owners, runs) = owners(&mut conn, cluster, cfg.run.as_deref()).await;
    if let Some(id) = cfg.run.as_ref().filter(|id| owners.live.contains(*id)) {
        bail!(
            "run {id} is still running (its heartbeat is fresh): it removes its own keys; \
             wait for it, or stop it and run clean again after {} s",
            registry::HEARTBEAT_TTL.as_secs()
        );
    }
    let verb = delete_verb(&mut conn, &ctx.key("may-delete")).await?;
    let spinner = ctx.progress.spinner(format!("scanning for {pattern}"));
    let mut removed: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    let mut live_keys = 0u64;
    let mut foreign = Foreign::default();
    let started = Instant::now();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = conn
            .query(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000),
            )
            .await?;
        let mut mine: Vec<Owned> = Vec::new();
        for k in keys {
            match owners.of(&k) {
                Whose::Dead(id) => mine.push((id, k)),
                Whose::Live(id) => live_keys += u64::from(id != ctx.run_id),
                Whose::Registry => {}
                Whose::Foreign => foreign.add(&k),
            }
        }
        if !mine.is_empty() {
            for cmd in unlinks(verb, &mine, cluster) {
                total += conn.query::<u64>(&cmd).await?;
            }
            for (id, _) in &mine {
                *removed.entry(id.clone()).or_default() += 1;
            }
            spinner.set_message(format!("{} removed", plural(total, "key")));
            // Bounded rate: a live master serves its users first.
            let due = Duration::from_secs_f64(total as f64 / cfg.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    spinner.finish();
    // The dead runs' records go with their keys.
    let mut cleaned = Vec::new();
    for (rec, alive, tag) in &runs {
        if !alive && owners.dead.contains(&rec.run_id) {
            let _ = registry::unregister(&mut conn, &rec.run_id, tag.as_deref()).await;
            cleaned.push(RunCleaned {
                run_id: rec.run_id.clone(),
                command: Some(rec.command.clone()),
                host: Some(rec.host.clone()),
                started_at: Some(rec.started_at.clone()),
                removed: removed.remove(&rec.run_id).unwrap_or(0),
            });
        }
    }
    cleaned.extend(removed.into_iter().map(|(run_id, n)| RunCleaned {
        run_id,
        command: None,
        host: None,
        started_at: None,
        removed: n,
    }));
    wait_replicas(&mut conn, ctx.timeout).await;
    let nodes = remaining(&survey, &pattern, &owners).await;
    let details = CleanDetails {
        pattern,
        runs: cleaned,
        live_runs: owners.live.into_iter().collect(),
        live_keys,
        removed: total,
        foreign_keys: foreign.count,
        foreign_examples: foreign.examples,
        nodes,
    };
    let checks = checks(&details, None);
    Ok(Report::new(
        "clean",
        ctx.manifest(),
        survey.infos(),
        checks,
        details,
    ))
}

/// Keys under the namespace that are not provably redlab's.
#[derive(Default)]
struct Foreign {
    count: u64,
    examples: Vec<String>,
}

impl Foreign {
    fn add(&mut self, key: &[u8]) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples
                .push(crate::compare::fingerprint::printable(key));
        }
    }
}

/// The master is unreachable: nothing can be removed (a replica is read
/// only); say what remains where, so the user knows what to clean once the
/// master is back.
async fn master_gone(
    ctx: &Ctx,
    survey: &Survey,
    cfg: &Config,
    pattern: String,
    why: String,
) -> Result<Report<CleanDetails>> {
    // The registry is replicated: the first replica that answers has it.
    let mut owners_seen = Owners::default();
    for st in survey.all() {
        if let Some(mut c) = st.conn.clone() {
            let (o, _) = owners(&mut c, ctx.shard.is_some(), cfg.run.as_deref()).await;
            owners_seen = o;
            break;
        }
    }
    let nodes = remaining(survey, &pattern, &owners_seen).await;
    let details = CleanDetails {
        pattern,
        runs: Vec::new(),
        live_runs: Vec::new(),
        live_keys: 0,
        removed: 0,
        foreign_keys: 0,
        foreign_examples: Vec::new(),
        nodes,
    };
    let checks = checks(&details, Some(&why));
    Ok(Report::new(
        "clean",
        ctx.manifest(),
        survey.infos(),
        checks,
        details,
    ))
}

/// One UNLINK for the keys found, or on a cluster one per slot among them.
fn unlinks(verb: &'static str, keys: &[(String, Vec<u8>)], cluster: bool) -> Vec<redis::Cmd> {
    let one = |ks: &mut dyn Iterator<Item = &Vec<u8>>| {
        let mut cmd = redis::cmd(verb);
        ks.for_each(|k| {
            cmd.arg(k);
        });
        cmd
    };
    if !cluster {
        return vec![one(&mut keys.iter().map(|(_, k)| k))];
    }
    crate::topology::slot::group_by_slot(keys.iter().map(|(_, k)| k))
        .into_values()
        .map(|group| one(&mut group.into_iter()))
        .collect()
}

/// UNLINK, or DEL where the ACL allows only that (asked with a key that does
/// not exist: nothing is deleted by asking).
async fn delete_verb(conn: &mut Conn, probe: &str) -> Result<&'static str> {
    for verb in ["UNLINK", "DEL"] {
        match conn.query::<u64>(redis::cmd(verb).arg(probe)).await {
            Ok(_) => return Ok(verb),
            Err(e) if e.kind == ErrorKind::NoPermission => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!(
        "the ACL user may neither UNLINK nor DEL: grant it, e.g. ACL SETUSER <user> +unlink ~{}",
        namespace::pattern()
    )
}

async fn wait_replicas(conn: &mut Conn, timeout: Duration) {
    let Ok(info) = conn.info("replication").await else {
        return;
    };
    let n = info
        .replicas()
        .iter()
        .filter(|l| l.state == crate::client::LinkState::Online)
        .count();
    if n > 0 {
        let bound = timeout.min(Duration::from_secs(2));
        let _ = conn
            .query_for::<u64>(
                redis::cmd("WAIT").arg(n).arg(bound.as_millis() as u64),
                bound,
            )
            .await;
    }
}

/// Dead runs' keys on every reachable node (a read-only SCAN).
async fn remaining(survey: &Survey, pattern: &str, owners: &Owners) -> Vec<NodeLeft> {
    let mut out = Vec::new();
    for st in survey.all() {
        out.push(count_on(st, pattern, owners).await);
    }
    out
}

async fn count_on(st: &NodeState, pattern: &str, owners: &Owners) -> NodeLeft {
    let mut left = NodeLeft {
        name: st.node.name.clone(),
        address: st.node.addr(),
        remaining: None,
        error: st.error.as_ref().map(|e| e.message.clone()),
    };
    let Some(mut c) = st.conn.clone() else {
        return left;
    };
    let mut n = 0u64;
    let mut cursor = 0u64;
    loop {
        let r: Result<(u64, Vec<Vec<u8>>), _> = c
            .query(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000),
            )
            .await;
        match r {
            Err(e) => {
                left.error = Some(e.message);
                return left;
            }
            Ok((next, keys)) => {
                n += keys
                    .iter()
                    .filter(|k| matches!(owners.of(k), Whose::Dead(_)))
                    .count() as u64;
                cursor = next;
            }
        }
        if cursor == 0 {
            break;
        }
    }
    left.remaining = Some(n);
    left
}

fn checks(d: &CleanDetails, master_gone: Option<&str>) -> Vec<Check> {
    let mut out = Vec::new();
    match master_gone {
        Some(why) => out.push(Check::fail(
            "clean.master",
            format!(
                "nothing removed: {why}; keys can only be removed on the master, once it is back"
            ),
        )),
        None => out.push(Check::pass(
            "clean.master",
            if d.removed == 0 {
                format!("no key of a dead run under {}", d.pattern)
            } else {
                format!(
                    "removed {} of {}",
                    plural(d.removed, "key"),
                    plural(d.runs.len() as u64, "dead run")
                )
            },
        )),
    }
    if d.live_keys > 0 {
        out.push(Check::warn(
            "clean.live",
            format!(
                "{} of {} left alone: by its heartbeat it is still running (a run removes its own \
                 keys); if it is not, its heartbeat expires within {} s: run clean again then",
                plural(d.live_keys, "key"),
                match d.live_runs.as_slice() {
                    [one] => format!("run {one}"),
                    many => format!("{} live runs ({})", many.len(), many.join(", ")),
                },
                registry::HEARTBEAT_TTL.as_secs()
            ),
        ));
    }
    if d.foreign_keys > 0 {
        out.push(Check::warn("clean.foreign", foreign_reason(d)));
    }
    for n in &d.nodes {
        let name = format!("{}.remaining", n.name);
        out.push(match (n.remaining, &n.error) {
            (Some(0), _) => Check::pass(name, "no key of a dead run left"),
            (Some(k), _) => Check::fail(
                name,
                format!(
                    "{} of dead runs remain under {}",
                    plural(k, "key"),
                    d.pattern
                ),
            ),
            (None, e) => Check::skip(
                name,
                format!(
                    "not counted: {}",
                    e.clone().unwrap_or_else(|| "not reachable".into())
                ),
            ),
        });
    }
    out
}

/// What was left alone under the namespace, and what to do about it.
fn foreign_reason(d: &CleanDetails) -> String {
    let shown: Vec<String> = d
        .foreign_examples
        .iter()
        .map(|k| crate::report::shorten(k, 60))
        .collect();
    let more = d.foreign_keys.saturating_sub(shown.len() as u64);
    format!(
        "left alone: {} under {} that no redlab run recorded ({}{}): not provably redlab's. \
         Yours? Give redlab its own namespace with --prefix (or REDLAB_PREFIX). A dead run's \
         whose record is lost? Remove them with `clean --run ID`",
        plural(d.foreign_keys, "key"),
        namespace::root(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

impl Details for CleanDetails {
    fn sections(&self) -> Vec<Section> {
        let mut r = Section::new(
            "Dead runs",
            &["run", "command", "host", "started", "removed"],
        );
        for x in &self.runs {
            let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            r.row(vec![
                x.run_id.clone(),
                o(&x.command),
                o(&x.host),
                o(&x.started_at),
                x.removed.to_string(),
            ]);
        }
        if !self.live_runs.is_empty() {
            r.notes.push(format!(
                "left alone (still running): {}",
                self.live_runs.join(", ")
            ));
        }
        if self.foreign_keys > 0 {
            r.notes.push(format!(
                "left alone (not redlab's): {} under {}",
                plural(self.foreign_keys, "key"),
                namespace::root()
            ));
        }
        let mut n = Section::new("What remains", &["node", "address", "keys of dead runs"]);
        for x in &self.nodes {
            n.row(vec![
                x.name.clone(),
                x.address.clone(),
                match (x.remaining, &x.error) {
                    (Some(k), _) => k.to_string(),
                    (None, Some(e)) => e.clone(),
                    _ => "-".into(),
                },
            ]);
        }
        vec![r, n]
    }
}
