//! Latency recording over hdrhistogram: one histogram per worker, merged at
//! the end, never raw samples.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A histogram of nanoseconds, 3 significant figures, growing as needed.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is valid")
}

/// Record `n` samples of `value`, growing the histogram to fit. Not
/// `saturating_record`: on a growing histogram that clamps to the range it
/// has so far instead of growing (a 3 ms latency would be kept as ~2 µs).
#[inline]
pub fn record_n(h: &mut Histogram<u64>, value: u64, n: u64) {
    if h.record_n(value, n).is_err() {
        // Growing failed (a value beyond what usize can index): keep it at the top.
        h.saturating_record_n(value, n);
    }
}

/// A histogram in HdrHistogram's compressed V2 encoding, base64 (the form
/// HdrHistogram's other implementations read): lossless, for a later merge.
pub fn encode_v2(h: &Histogram<u64>) -> String {
    use base64::Engine;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    let mut bytes = Vec::new();
    // Writing to a Vec fails only on a histogram the encoding cannot hold
    // (none that `histogram()` makes): then no histogram is saved.
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `encode_v2` undone, as a histogram that grows as needed (so that
/// histograms of other ranges add into it).
pub fn decode_v2(text: &str) -> anyhow::Result<Histogram<u64>> {
    use anyhow::Context;
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .context("a histogram that is not base64")?;
    let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| anyhow::anyhow!("a histogram that is not HdrHistogram V2: {e:?}"))?;
    let mut out = histogram();
    out.add(&h)
        .map_err(|e| anyhow::anyhow!("a histogram out of range: {e:?}"))?;
    Ok(out)
}

/// Latency summary in microseconds (recorded in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyUs {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample, µs.
    pub min_us: f64,
    /// Median, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// 99.99th percentile, µs.
    pub p9999_us: f64,
    /// Largest sample, µs.
    pub max_us: f64,
    /// Mean, µs.
    pub mean_us: f64,
}

/// Nanoseconds as microseconds, to the nanosecond.
fn us(ns: u64) -> f64 {
    (ns as f64 / 1e3 * 1000.0).round() / 1000.0
}

/// `LatencyUs::from_ns(h).p99_us`, without the rest (0 when empty).
pub fn p99_us(h: &Histogram<u64>) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    us(h.value_at_quantile(0.99))
}

impl LatencyUs {
    /// From a histogram of nanoseconds. An empty one gives all zeros, never NaN.
    pub fn from_ns(h: &Histogram<u64>) -> LatencyUs {
        if h.is_empty() {
            return LatencyUs::default();
        }
        LatencyUs {
            count: h.len(),
            min_us: us(h.min()),
            p50_us: us(h.value_at_quantile(0.5)),
            p90_us: us(h.value_at_quantile(0.9)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            p9999_us: us(h.value_at_quantile(0.9999)),
            max_us: us(h.max()),
            mean_us: (h.mean() / 1e3 * 1000.0).round() / 1000.0,
        }
    }
}

/// The HdrHistogram percentile-distribution text (`.hgrm`) that the usual
/// plotters read, as Java's `outputPercentileDistribution` writes it, with
/// values in milliseconds (the histogram holds nanoseconds).
pub fn hgrm_ms(h: &Histogram<u64>) -> String {
    use std::fmt::Write;
    const NS_PER_MS: f64 = 1e6;
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / NS_PER_MS;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / NS_PER_MS,
            h.stdev() / NS_PER_MS,
            h.highest_equivalent(h.max()) as f64 / NS_PER_MS,
        )
    };
    let sub_buckets = (2.0 * 10f64.powi(h.sigfig() as i32)).log2().ceil().exp2() as u64;
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        h.buckets()
    );
    out
}

/// Microseconds as a human-friendly string.
pub fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_monotonic_and_in_microseconds() {
        let mut h = histogram();
        for ns in 1..=10_000u64 {
            h.record(ns * 1000).unwrap();
        }
        let s = LatencyUs::from_ns(&h);
        assert_eq!(s.count, 10_000);
        assert!(s.min_us <= s.p50_us && s.p50_us <= s.p90_us && s.p90_us <= s.p99_us);
        assert!(s.p99_us <= s.p999_us && s.p999_us <= s.p9999_us && s.p9999_us <= s.max_us);
        assert!((s.p50_us - 5000.0).abs() / 5000.0 < 0.01, "{s:?}");
        assert!((s.max_us - 10_000.0).abs() / 10_000.0 < 0.01);
    }

    #[test]
    fn record_n_grows_instead_of_clamping() {
        let mut h = histogram();
        record_n(&mut h, 3_000_000, 5);
        record_n(&mut h, 1_000, 1);
        assert_eq!(h.len(), 6);
        assert!((h.max() as f64 - 3e6).abs() / 3e6 < 0.001, "{}", h.max());
        assert!((h.min() as f64 - 1e3).abs() / 1e3 < 0.001, "{}", h.min());
    }

    #[test]
    fn p99_alone_is_the_summary_s() {
        let mut h = histogram();
        for ns in [1_000u64, 2_345, 77_777, 1_234_567, 9_999_999] {
            record_n(&mut h, ns, ns % 7 + 1);
        }
        assert_eq!(p99_us(&h), LatencyUs::from_ns(&h).p99_us);
        assert_eq!(p99_us(&histogram()), 0.0);
    }

    #[test]
    fn empty_is_zero_not_nan() {
        let s = LatencyUs::from_ns(&histogram());
        assert_eq!(s, LatencyUs::default());
        assert!(serde_json::to_string(&s)
            .unwrap()
            .contains("\"p99_us\":0.0"));
    }

    #[test]
    fn hgrm_has_the_plotters_layout() {
        let mut h = histogram();
        for ms in 1..=100u64 {
            h.record(ms * 1_000_000).unwrap();
        }
        let text = hgrm_ms(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        assert!(lines[1].is_empty());
        let first: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(first[0], "1.000");
        let last_data = lines[lines.len() - 4];
        let cols: Vec<&str> = last_data.split_whitespace().collect();
        assert_eq!((cols[1], cols[2]), ("1.000000000000", "100"), "{last_data}");
        let mean: f64 = text
            .split("#[Mean    =")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!((mean - 50.5).abs() < 0.05, "{text}");
        assert!(text.contains("Total count    =          100]"));
        assert!(text.ends_with("SubBuckets     =         2048]\n"));
    }

    #[test]
    fn human_units() {
        assert_eq!(fmt_us(12.0), "12 µs");
        assert_eq!(fmt_us(1500.0), "1.50 ms");
        assert_eq!(fmt_us(2_500_000.0), "2.50 s");
    }
}
