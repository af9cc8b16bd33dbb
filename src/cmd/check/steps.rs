//! The gate's steps: each composes a probe (`crate::probe`) on the gate's
//! survey into a step outcome (its checks, one line, its tables and details);
//! and the guard that notices a master restart.

use anyhow::Result;

use super::{CheckRun, Env, StepDetails, StepOutcome};
use std::time::{Duration, Instant};

use crate::client::{Conn, ErrorKind, Info, NodeError};
use crate::probe::{consistency, expiry, lint, parity, propagation as rc, throughput};
use crate::report::{plural, Check, Details, Verdict};
use crate::survey::Master;
use crate::topology::Node;

/// The master, for a step that needs it (the gate runs those only when it
/// answered and is a master).
fn master<'a>(env: &'a Env<'_>) -> Result<&'a Master<'a>> {
    env.master
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("not run: the master is not usable"))
}

/// Every node answers, the master is a master with the replicas it should
/// have, each replica follows it with its link up. No write.
pub async fn reachability(env: &Env<'_>) -> Result<StepOutcome> {
    let survey = env.survey;
    let Some(m) = &env.master else {
        let e = survey
            .master()
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        let mut items = vec![Check::fail("master", e)];
        items.extend(survey.replicas().iter().map(|s| match &s.error {
            Some(e) => Check::fail(format!("{}.reachable", s.node.name), e.message.clone()),
            None => Check::pass(format!("{}.reachable", s.node.name), "answers"),
        }));
        return Ok(StepOutcome {
            items,
            ..StepOutcome::default()
        });
    };
    let (details, items) = rc::roles(&env.cfg.replication, env.ctx, survey, m);
    Ok(StepOutcome {
        items,
        summary: rc::roles_summary(&details, survey.all().len()),
        details: StepDetails::Roles(Box::new(details)),
        sections: Vec::new(),
    })
}

/// Probes written on the master, timed until each replica serves them.
pub async fn replication(env: &Env<'_>) -> Result<StepOutcome> {
    let cfg = &env.cfg.replication;
    let _spinner = env
        .ctx
        .progress
        .spinner(format!("replication: writing {} probes", cfg.probes));
    let m = master(env)?;
    let (mut details, _) = rc::roles(cfg, env.ctx, env.survey, m);
    let items = rc::propagation(cfg, env.ctx, env.survey, m, &mut details).await?;
    let passed = items.iter().filter(|c| c.verdict == Verdict::Pass).count() as u64;
    Ok(StepOutcome {
        summary: format!(
            "{} seen within {} on {}",
            plural(cfg.probes as u64, "probe"),
            humantime::format_duration(cfg.max_lag),
            plural(passed, "replica")
        ),
        items,
        sections: details.sections(),
        details: StepDetails::Replication(Box::new(details)),
    })
}

/// Key counts per database once the replicas have caught up.
pub async fn keycount(env: &Env<'_>) -> Result<StepOutcome> {
    let spinner = env
        .ctx
        .progress
        .spinner("keycount: waiting for the replicas");
    let m = master(env)?;
    let details = parity::measure(&env.cfg.keycount, env.ctx, env.survey, m, &spinner).await?;
    Ok(StepOutcome {
        summary: parity::summary(&details),
        items: parity::checks(&details),
        sections: details.sections(),
        details: StepDetails::Keycount(Box::new(details)),
    })
}

/// A random sample of the master's keys compared by type, value and TTL on
/// every replica, and a sample of each replica's keys looked up on the
/// master (compare, read-only).
pub async fn consistency(env: &Env<'_>) -> Result<StepOutcome> {
    // compare draws its own spinner and progress bar.
    let survey = env.survey;
    let d = consistency::measure(
        &env.cfg.consistency,
        env.ctx,
        survey.master_state(),
        survey.replicas(),
        false,
    )
    .await?;
    Ok(StepOutcome {
        summary: consistency::summary(&d),
        items: consistency::gate_checks(&d),
        sections: d.sections(),
        details: StepDetails::Consistency(Box::new(d)),
    })
}

/// A short-TTL key of redlab's expires on every node: replicas hide it at once
/// and drop it when the master's DEL arrives (ttl-watch).
pub async fn expiry(env: &Env<'_>) -> Result<StepOutcome> {
    let ttl = env.cfg.expiry_ttl;
    // The watch draws its own countdown: a spinner besides it would be a
    // second bar on stderr, and one of them was left on screen above the report.
    let m = master(env)?;
    let d = expiry::measure(&expiry::WatchConfig::expiry(ttl), env.ctx, env.survey, m).await?;
    Ok(StepOutcome {
        summary: expiry::summary(&d, ttl),
        items: expiry::checks(&d),
        sections: d.sections(),
        details: StepDetails::Expiry(Box::new(d)),
    })
}

/// 1000 pipelined SETs (perf), with an optional floor and baseline.
pub async fn throughput(env: &Env<'_>) -> Result<StepOutcome> {
    let m = master(env)?;
    let cfg = throughput::Config::from_options(&env.cfg.throughput, env.survey.replicas().len())?;
    let d = throughput::measure(&cfg, env.ctx, env.survey, m).await?;
    let mut items = throughput::checks(&d);
    items.extend(env.cfg.min_ops.map(|min| throughput::floor_check(&d, min)));
    Ok(StepOutcome {
        summary: throughput::summary(&d),
        items,
        sections: d.sections(),
        details: StepDetails::Throughput(Box::new(d)),
    })
}

/// Settings that are legal but hurt a replicated Redis (config-lint).
pub async fn config_lint(env: &Env<'_>) -> Result<StepOutcome> {
    let rules = lint::Rules {
        strict: env.cfg.strict,
        min_replicas: env.cfg.require_min_replicas,
    };
    let d = lint::measure(env.survey).await;
    Ok(StepOutcome {
        items: lint::checks(&d, &rules),
        summary: lint::summary(&d, &rules),
        details: StepDetails::Lint(d.facts),
        sections: Vec::new(),
    })
}

/// A master whose run id changed since the survey was restarted during the
/// run: every result after it is suspect. Only reported when it happened or
/// cannot be ruled out.
pub async fn restart_guard(env: &Env<'_>) -> Option<CheckRun> {
    let st = env.survey.master_state();
    let before = st.info.as_ref()?.get("run_id")?.to_string();
    let started = Instant::now();
    let now = server_info_soon(&st.node, env.ctx.timeout).await;
    let reason = match now {
        Err(e) => format!(
            "the master did not answer at the end of the run, so a restart cannot be ruled out: {}",
            e.message
        ),
        Ok(i) if i.get("run_id") == Some(before.as_str()) => return None,
        Ok(i) => {
            let persistence = match st.persistence.as_deref() {
                Some("none") => format!(
                    "persistence is off: it came back empty, and its {} resync to that empty dataset",
                    plural(env.survey.replicas().len() as u64, "replica")
                ),
                Some(p) => format!("persistence {p}: it reloaded what it had last saved"),
                None => "persistence unknown (CONFIG not allowed)".to_string(),
            };
            format!(
                "the master restarted during the run (run id {} -> {}, up {} s): results after it are not to be trusted; {persistence}",
                short(&before),
                short(i.get("run_id").unwrap_or("?")),
                i.get("uptime_in_seconds").unwrap_or("?"),
            )
        }
    };
    let items = vec![Check::fail("master-restart", &reason)];
    Some(CheckRun {
        name: "master-restart".into(),
        verdict: Verdict::Fail,
        reason,
        elapsed_ms: crate::duration::ms(started.elapsed()),
        items,
        details: StepDetails::None,
        sections: Vec::new(),
    })
}

/// INFO server, waiting up to `timeout` for a master that is coming back up.
async fn server_info_soon(node: &Node, timeout: Duration) -> Result<Info, NodeError> {
    let deadline = Instant::now() + timeout;
    loop {
        let r = match Conn::connect(node, timeout).await {
            Ok(mut c) => c.info("server").await,
            Err(e) => Err(e),
        };
        match r {
            Err(e) if e.kind == ErrorKind::Refused && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => return other,
        }
    }
}

fn short(run_id: &str) -> &str {
    &run_id[..run_id.len().min(8)]
}
