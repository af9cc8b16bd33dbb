//! The replica lag sampler against a real lab under a load the test makes
//! with redlab's own engine: samples at the interval, a lag above 0 while
//! the load runs, 0 at the end, and timestamps that cover the load.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;
use redlab::client::Conn;
use redlab::loadgen::engine::{self, EngineConfig, Stop};
use redlab::{sample_lag, LagOptions};

#[test]
fn lag_rises_under_load_and_ends_caught_up() {
    let lab = lab(2);
    let topology = lab.topology();
    let series = rt().block_on(async {
        let master = Conn::connect(&topology.master, Duration::from_secs(3))
            .await
            .expect("connecting to the lab's master");
        let load = EngineConfig {
            stop: Stop::Duration(Duration::from_millis(1500)),
            connections: 4,
            pipeline: 64,
            data_size: (200, 200),
            key_prefix: "redlab:lagtest:".into(),
            ..EngineConfig::new(SocketAddr::from(([127, 0, 0, 1], lab.master.port)))
        };
        // The engine runs on its own thread; the sampler starts with it.
        let done = engine::start(&load, || {}).expect("starting the load");
        let opts = LagOptions {
            interval: Duration::from_millis(100),
            settle: Duration::from_secs(10),
        };
        sample_lag(master, &topology.replicas, opts, async {
            done.await
                .expect("the engine reports")
                .expect("the load ran");
        })
        .await
    });
    assert_eq!(series.interval_ms, 100.0);
    assert_eq!(series.failed_samples, 0, "{:?}", series.last_error);
    let ended = series.load_ended_ms.expect("the load ended");
    assert!(
        (1400.0..4000.0).contains(&ended),
        "load ended at {ended} ms"
    );
    assert_eq!(series.replicas.len(), 2);
    for r in &series.replicas {
        let s = r.samples.points();
        eprintln!(
            "{}: {} samples, max {} B at {} ms, caught up {:?} ms after the load ended at {ended} ms",
            r.name,
            s.len(),
            r.max_lag_bytes,
            r.max_lag_at_ms,
            r.catch_up_ms
        );
        assert!(s.len() >= 3, "{}: {} samples", r.name, s.len());
        // At the stated interval (the one sample taken as the load ends falls in between).
        let mut gaps: Vec<f64> = s.windows(2).map(|w| w[1].t_ms - w[0].t_ms).collect();
        gaps.sort_by(f64::total_cmp);
        let median = gaps[gaps.len() / 2];
        assert!(
            (90.0..=2500.0).contains(&median),
            "{}: median gap {median} ms",
            r.name
        );
        assert!(
            gaps.last().unwrap() < &10_000.0,
            "{}: a gap of {:?} ms",
            r.name,
            gaps.last()
        );
        // Covering the load: from its start to after its end.
        assert!(
            s[0].t_ms < 3000.0,
            "{}: first sample at {} ms",
            r.name,
            s[0].t_ms
        );
        assert!(
            s.last().unwrap().t_ms >= ended,
            "{}: sampling stopped before the load did",
            r.name
        );
        // Behind while the writes stream, caught up at the end.
        assert!(r.max_lag_bytes > 0, "{}: never behind under load", r.name);
        assert_eq!(
            r.max_lag_bytes,
            s.iter().map(|x| x.lag_bytes).max().unwrap()
        );
        assert!(
            r.max_lag_at_ms <= ended + 5000.0,
            "{}: peak after the load",
            r.name
        );
        assert_eq!(
            s.last().unwrap().lag_bytes,
            0,
            "{}: not caught up at the end",
            r.name
        );
        let c = r.catch_up_ms.expect("caught up");
        assert!(c < 50_000.0, "{}: caught up after {c} ms", r.name);
        assert_eq!(r.unlisted_samples, 0);
    }
}
