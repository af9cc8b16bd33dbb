//! `redlab report --merge A.json B.json ...`: the clients' perf reports of
//! one split load (a lone master's or a cluster's) read, checked to be one
//! plan, merged (perf's merge of the figures: `cmd::perf::merge`), and
//! rendered like any report.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cmd::perf::merge::{self as m, Client, Plan};
use crate::cmd::perf::on_cluster::{ClusterPerfDetails, PerfTotal};
use crate::cmd::perf::{self, PerfDetails};
use crate::report::{AnyReport, Check, Details, Manifest, Report, Verdict};
use crate::sharded::{in_shard, ShardRun, Sharded};

/// A client's report as read: measured (a lone master's or a cluster's), or failed.
enum Parsed {
    Single(Box<Report<PerfDetails>>),
    Cluster(Box<Report<ClusterPerfDetails>>),
    Failed,
}

impl Parsed {
    fn single(&self) -> Option<&Report<PerfDetails>> {
        match self {
            Parsed::Single(x) => Some(x),
            _ => None,
        }
    }

    fn cluster(&self) -> Option<&Report<ClusterPerfDetails>> {
        match self {
            Parsed::Cluster(x) => Some(x),
            _ => None,
        }
    }
}

struct Read {
    client: Client,
    parsed: Parsed,
}

/// Merge into one report (rendered in every format, as any report; the
/// merged load's checks decide the exit code).
pub fn run(paths: &[PathBuf]) -> Result<Box<dyn AnyReport>> {
    let inputs = inputs(paths)?;
    let reads: Vec<Read> = inputs.into_iter().map(read).collect::<Result<_>>()?;
    let measured: Vec<&Read> = reads
        .iter()
        .filter(|r| !matches!(r.parsed, Parsed::Failed))
        .collect();
    let Some(first) = measured.first() else {
        bail!(
            "no report to merge measured anything: every one is of a run that failed or was \
             interrupted ({})",
            files(&reads)
        );
    };
    refuse_unlike(&measured)?;
    let of = first.client.share.map_or(1, |s| s.1);
    refuse_duplicates(&reads, of)?;
    let clients: Vec<Client> = reads.iter().map(|r| r.client.clone()).collect();
    let (merged, clients_check) = m::account(&clients, of);
    let paths: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    let manifest = m::manifest(&clients, &paths);
    let report: Box<dyn AnyReport> = match &first.parsed {
        Parsed::Single(_) => Box::new(merge_single(&measured, merged, clients_check, manifest)?),
        _ => Box::new(merge_cluster(&measured, merged, clients_check, manifest)?),
    };
    Ok(report)
}

/// One client's report as read.
struct Input {
    path: PathBuf,
    value: serde_json::Value,
}

/// The report files named: files as given, a directory's `*.json` in name order.
fn inputs(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading the directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            if in_dir.is_empty() {
                bail!("{}: no .json report in this directory", p.display());
            }
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p.clone());
        }
    }
    if files.len() < 2 {
        bail!(
            "--merge needs the reports of at least two clients (perf --client K/N --format json), \
             or a directory of them"
        );
    }
    files
        .into_iter()
        .map(|path| {
            let value = super::read(&path)?;
            if value["command"] != "perf" {
                bail!(
                    "{}: a {} report; --merge takes perf reports only",
                    path.display(),
                    value["command"].as_str().unwrap_or("?")
                );
            }
            Ok(Input { path, value })
        })
        .collect()
}

fn files(reads: &[Read]) -> String {
    reads
        .iter()
        .map(|r| r.client.file.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One report file as a client of the merge.
fn read(input: Input) -> Result<Read> {
    let Input { path, value } = input;
    let file = path.display().to_string();
    let manifest: Manifest = serde_json::from_value(value["manifest"].clone())
        .with_context(|| format!("{file}: a report without a readable manifest"))?;
    let verdict: Verdict =
        serde_json::from_value(value["verdict"].clone()).unwrap_or(Verdict::Fail);
    let details = &value["details"];
    let failed = if let Some(e) = details.get("error").and_then(|e| e.as_str()) {
        Some(format!("failed: {e}"))
    } else if details.get("interrupted").is_some() {
        Some("was interrupted before it finished".to_string())
    } else {
        None
    };
    if let Some(error) = failed {
        return Ok(Read {
            client: Client {
                share: m::share_in_args(&manifest.args),
                file,
                manifest,
                verdict: Verdict::Fail,
                error: Some(error),
                run: None,
                requests: 0,
            },
            parsed: Parsed::Failed,
        });
    }
    let not_perf = |e: serde_json::Error| {
        anyhow::anyhow!("{file}: its perf details do not read as this redlab's ({e})")
    };
    let parsed = if details["shards"].is_array() {
        Parsed::Cluster(Box::new(
            serde_json::from_value(value.clone()).map_err(not_perf)?,
        ))
    } else {
        Parsed::Single(Box::new(
            serde_json::from_value(value.clone()).map_err(not_perf)?,
        ))
    };
    let (run, requests) = match &parsed {
        Parsed::Single(r) => (r.details.client.clone(), requests_of(&r.details)),
        Parsed::Cluster(r) => {
            let shards: Vec<&PerfDetails> = shard_details(&r.details).collect();
            (
                shards.first().and_then(|d| d.client.clone()),
                shards.iter().map(|d| requests_of(d)).sum(),
            )
        }
        Parsed::Failed => (None, 0),
    };
    let Some(run) = run else {
        bail!(
            "{file}: a perf report without its client share and histograms (written by a \
             redlab before --merge): run perf again"
        );
    };
    Ok(Read {
        client: Client {
            file,
            share: Some((run.split.index, run.split.of)),
            manifest,
            verdict,
            error: None,
            run: Some(run),
            requests,
        },
        parsed,
    })
}

fn requests_of(d: &PerfDetails) -> u64 {
    d.round_results.iter().map(|r| r.completed).sum()
}

fn shard_details(d: &ClusterPerfDetails) -> impl Iterator<Item = &PerfDetails> {
    d.sharded.shards.iter().filter_map(|s| s.details.as_ref())
}

/// The plan of a measured report.
fn plan(r: &Read) -> Option<Plan> {
    match &r.parsed {
        Parsed::Single(x) => Plan::of(&x.details, &m::target_of(&x.nodes), 1),
        Parsed::Cluster(x) => {
            let d = shard_details(&x.details).next()?;
            Plan::of(d, &m::target_of(&x.nodes), x.details.sharded.shards.len())
        }
        Parsed::Failed => None,
    }
}

/// Reports of different plans are not one load: refused, with what differs.
fn refuse_unlike(measured: &[&Read]) -> Result<()> {
    let first = measured[0];
    let base = plan(first).with_context(|| format!("{}: no shard measured", first.client.file))?;
    for r in &measured[1..] {
        let kind = |p: &Parsed| matches!(p, Parsed::Cluster(_));
        if kind(&first.parsed) != kind(&r.parsed) {
            bail!(
                "{} and {} are not one load: one is a cluster's perf report, the other a lone \
                 master's",
                first.client.file,
                r.client.file
            );
        }
        let p = plan(r).with_context(|| format!("{}: no shard measured", r.client.file))?;
        let diff = base.differences(&p, &first.client.file, &r.client.file);
        if !diff.is_empty() {
            bail!(
                "{} and {} are not one load: {}; merge the reports of one `perf --client K/N` \
                 plan",
                first.client.file,
                r.client.file,
                diff.join("; ")
            );
        }
    }
    Ok(())
}

/// Two reports of one share are one client run twice (or twice given).
fn refuse_duplicates(reads: &[Read], of: u32) -> Result<()> {
    for (i, a) in reads.iter().enumerate() {
        for b in &reads[i + 1..] {
            if let (Some(x), Some(y)) = (a.client.share, b.client.share) {
                if x == y {
                    bail!(
                        "{} and {} are both client {}/{}: each share of the load once \
                         (perf --client K/N with K = 1..{of})",
                        a.client.file,
                        b.client.file,
                        x.0,
                        x.1
                    );
                }
            }
        }
    }
    Ok(())
}

/// `client K/N (file)`, for messages.
fn who(r: &Read) -> String {
    match r.client.share {
        Some((k, n)) => format!("{k}/{n}"),
        None => r.client.file.clone(),
    }
}

/// The measured reports of one kind (a lone master's or a cluster's), each
/// with the client that wrote it.
fn parts<'a, D: Details>(
    measured: &[&'a Read],
    pick: impl Fn(&'a Parsed) -> Option<&'a Report<D>>,
) -> Vec<(String, &'a Report<D>)> {
    measured
        .iter()
        .filter_map(|r| Some((who(r), pick(&r.parsed)?)))
        .collect()
}

/// The merged report over the first report's nodes: `checks`, computed
/// again from the merged figures, then the clients' checks the merge does
/// not compute again (one per name, the worst).
fn merged_report<X: Details, D: Details>(
    parts: &[(String, &Report<X>)],
    mut checks: Vec<Check>,
    manifest: Manifest,
    details: D,
) -> Report<D> {
    let theirs: Vec<(String, Vec<Check>)> = parts
        .iter()
        .map(|(w, r)| (w.clone(), r.checks.clone()))
        .collect();
    let carried = m::carried_checks(&theirs, &checks);
    checks.extend(carried);
    let nodes = parts[0].1.nodes.clone();
    Report::new("perf", manifest, nodes, checks, details)
}

fn merge_single(
    measured: &[&Read],
    merged: m::Merged,
    clients_check: Check,
    manifest: Manifest,
) -> Result<Report<PerfDetails>> {
    let parts = parts(measured, Parsed::single);
    let named: Vec<(&str, &PerfDetails)> = parts
        .iter()
        .map(|(w, r)| (w.as_str(), &r.details))
        .collect();
    let mut d = m::merge_details(&named)?;
    d.merged = Some(merged);
    let mut checks = vec![clients_check];
    checks.extend(perf::checks(&d));
    Ok(merged_report(&parts, checks, manifest, d))
}

fn merge_cluster(
    measured: &[&Read],
    merged: m::Merged,
    clients_check: Check,
    manifest: Manifest,
) -> Result<Report<ClusterPerfDetails>> {
    let parts = parts(measured, Parsed::cluster);
    let first = &parts[0].1.details;
    let mut shards = Vec::new();
    let mut checks = vec![clients_check];
    for s in &first.sharded.shards {
        let (shard, shard_checks) = merge_shard(s, &parts)?;
        checks.extend(shard_checks);
        shards.push(shard);
    }
    let total = merged_total(first, &parts, &shards);
    let mut recomputed: Vec<Check> = total
        .as_ref()
        .map(perf::on_cluster::total_checks)
        .unwrap_or_default();
    recomputed.append(&mut checks);
    let details = ClusterPerfDetails {
        total,
        sharded: Sharded {
            health: None,
            shards,
        },
        merged: Some(merged),
    };
    Ok(merged_report(&parts, recomputed, manifest, details))
}

/// Shard `s` over every client that measured it, and its checks (first a
/// `<shard>.merge` failure where a client did not).
fn merge_shard(
    s: &ShardRun<PerfDetails>,
    parts: &[(String, &Report<ClusterPerfDetails>)],
) -> Result<(ShardRun<PerfDetails>, Vec<Check>)> {
    let mut named: Vec<(&str, &PerfDetails)> = Vec::new();
    let mut lacking = Vec::new();
    for (w, r) in parts {
        match r
            .details
            .sharded
            .shards
            .iter()
            .find(|x| x.shard == s.shard)
            .and_then(|x| x.details.as_ref())
        {
            Some(d) => named.push((w.as_str(), d)),
            None => lacking.push(format!("client {w}")),
        }
    }
    let details = if named.is_empty() {
        None
    } else {
        Some(m::merge_details(&named)?)
    };
    let shard_checks: Vec<Check> = details
        .as_ref()
        .map(perf::checks)
        .unwrap_or_default()
        .into_iter()
        .map(|c| in_shard(&s.shard, c))
        .collect();
    let error = (!lacking.is_empty()).then(|| {
        format!(
            "not measured by {}: the shard's figures are the other clients' only",
            lacking.join(", ")
        )
    });
    let mut verdict = Verdict::worst(shard_checks.iter().map(|c| c.verdict));
    let mut checks = Vec::new();
    if let Some(e) = &error {
        verdict = Verdict::Fail;
        checks.push(Check::fail(format!("{}.merge", s.shard), e.clone()));
    }
    checks.extend(shard_checks);
    let shard = ShardRun {
        shard: s.shard.clone(),
        master: s.master.clone(),
        replicas: s.replicas,
        slots: s.slots.clone(),
        tag: s.tag.clone(),
        verdict,
        details,
        error,
    };
    Ok((shard, checks))
}

/// The total over the merged shards, as the cluster run computes it, with
/// the whole load's figures the clients' reports give.
fn merged_total(
    first: &ClusterPerfDetails,
    parts: &[(String, &Report<ClusterPerfDetails>)],
    shards: &[ShardRun<PerfDetails>],
) -> Option<PerfTotal> {
    let t = first.total.as_ref()?;
    let measured_shards: Vec<&PerfDetails> =
        shards.iter().filter_map(|s| s.details.as_ref()).collect();
    let opts = perf::Options {
        threads: t.threads_per_shard,
        connections: parts
            .iter()
            .filter_map(|(_, r)| r.details.total.as_ref())
            .map(|t| t.connections)
            .sum(),
        // The whole load's -n (each client's report knows it).
        requests: first
            .sharded
            .shards
            .iter()
            .find_map(|s| {
                s.details
                    .as_ref()?
                    .client
                    .as_ref()?
                    .split
                    .total_requests_per_round
            })
            .unwrap_or(0),
        duration: t.requests_per_round.is_none().then(|| {
            std::time::Duration::from_secs_f64(
                measured_shards
                    .first()
                    .and_then(|d| d.duration_per_round_ms)
                    .unwrap_or(0.0)
                    / 1e3,
            )
        }),
        ..perf::Options::default()
    };
    perf::on_cluster::total_of(&opts, &measured_shards, shards.len()).map(|(t, _)| t)
}
