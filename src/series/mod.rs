//! Measured series that reports keep for plotting: a latency spectrum, latency
//! per second, and (in `lag`) each replica's offset lag over time. Data only:
//! what to draw from them is decided in the renderers' figure builders.

pub mod lag;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One point of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentilePoint {
    /// Share of the samples at or below `value_us`, percent (0..=100).
    pub percentile: f64,
    /// Latency, µs.
    pub value_us: f64,
}

/// The HdrHistogram percentile spectrum of a histogram of nanoseconds: a few
/// points per halving of the remaining tail (the `.hgrm` iteration), so a
/// million samples give ~100 points and the tail is as detailed as the body.
pub fn spectrum(h: &Histogram<u64>) -> Vec<PercentilePoint> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| PercentilePoint {
            percentile: round3(v.quantile_iterated_to() * 100.0),
            value_us: us(h.highest_equivalent(v.value_iterated_to())),
        })
        .collect()
}

/// The cumulative distribution of a histogram of nanoseconds, one point per
/// distinct recorded value (thinned to at most `max_points`): for a few
/// samples (replicate-check's probes) this is every sample.
pub fn cdf(h: &Histogram<u64>, max_points: usize) -> Vec<PercentilePoint> {
    let total = h.len();
    if total == 0 {
        return Vec::new();
    }
    let mut seen = 0u64;
    let all: Vec<PercentilePoint> = h
        .iter_recorded()
        .map(|v| {
            seen += v.count_at_value();
            PercentilePoint {
                percentile: round3(seen as f64 * 100.0 / total as f64),
                value_us: us(h.highest_equivalent(v.value_iterated_to())),
            }
        })
        .collect();
    let stride = all.len().div_ceil(max_points.max(1)).max(1);
    let last = all.len() - 1;
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| i % stride == 0 || *i == last)
        .map(|(_, p)| p)
        .collect()
}

/// Latency of the replies read during one slice of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySlice {
    /// Start of the slice, ms since the run started (slices are 1 s or 100 ms long).
    pub start_ms: f64,
    /// Replies read in it (0: none, and the percentiles are 0).
    pub count: u64,
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Largest, µs.
    pub max_us: f64,
}

impl LatencySlice {
    /// From the histogram (ns) of one slice's replies.
    pub fn from_ns(start_ms: f64, h: &Histogram<u64>) -> LatencySlice {
        if h.is_empty() {
            return LatencySlice {
                start_ms,
                ..LatencySlice::default()
            };
        }
        LatencySlice {
            start_ms,
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.5)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// Latency over a run, per second and per 100 ms (a round of a second or
/// two has too few seconds to show anything).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyTimeline {
    /// One slice per second.
    pub per_second: Vec<LatencySlice>,
    /// One slice per 100 ms; empty when the run outlasted `Slices::FINE_CAP` of them.
    pub per_100ms: Vec<LatencySlice>,
}

/// Records a `LatencyTimeline` with constant memory: one histogram for the
/// slice in progress at each resolution, summarised when the slice ends.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    second: Slices,
    tenth: Slices,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder {
            second: Slices::new(1_000_000_000, None),
            tenth: Slices::new(100_000_000, Some(Slices::FINE_CAP)),
        }
    }
}

impl LatencyRecorder {
    /// `n` replies of `latency_ns` each, read at `now_ns` since the start.
    #[inline]
    pub fn record(&mut self, now_ns: u64, latency_ns: u64, n: u64) {
        self.second.record(now_ns, latency_ns, n);
        self.tenth.record(now_ns, latency_ns, n);
    }

    pub fn finish(self) -> LatencyTimeline {
        LatencyTimeline {
            per_second: self.second.finish(),
            per_100ms: self.tenth.finish(),
        }
    }
}

#[derive(Debug, Clone)]
struct Slices {
    width_ns: u64,
    cap: Option<usize>,
    current: Histogram<u64>,
    index: u64,
    done: Vec<LatencySlice>,
    overflowed: bool,
}

impl Slices {
    /// 100 ms slices for five minutes; a longer run keeps only seconds.
    const FINE_CAP: usize = 3000;

    fn new(width_ns: u64, cap: Option<usize>) -> Slices {
        Slices {
            width_ns,
            cap,
            current: crate::latency::histogram(),
            index: 0,
            done: Vec::new(),
            overflowed: false,
        }
    }

    #[inline]
    fn record(&mut self, now_ns: u64, latency_ns: u64, n: u64) {
        if self.overflowed {
            return;
        }
        let index = now_ns / self.width_ns;
        // Replies are read in time order on one thread; a late one joins the current slice.
        if index > self.index {
            self.roll(index);
            if self.overflowed {
                return;
            }
        }
        crate::latency::record_n(&mut self.current, latency_ns, n);
    }

    /// Close the slice in progress (and any empty ones) and start `index`.
    fn roll(&mut self, index: u64) {
        self.close(self.index);
        self.current.reset();
        for empty in self.index + 1..index {
            self.close(empty);
        }
        self.index = index;
    }

    /// Slice `i` done with what `current` holds; past the cap, nothing is kept.
    fn close(&mut self, i: u64) {
        if self.overflowed {
            return;
        }
        let start_ms = (i * self.width_ns) as f64 / 1e6;
        self.done
            .push(LatencySlice::from_ns(start_ms, &self.current));
        if self.cap.is_some_and(|c| self.done.len() > c) {
            self.overflowed = true;
            self.done = Vec::new();
        }
    }

    /// Every slice from the start to the last one that had a reply.
    fn finish(mut self) -> Vec<LatencySlice> {
        // The last slice closed as `roll` closes one, without zeroing the
        // histogram for a slice that never comes (a memset of all its counts).
        if !self.overflowed && !self.current.is_empty() {
            self.close(self.index);
        }
        if self.overflowed {
            return Vec::new();
        }
        self.done
    }
}

/// A series with a bounded number of points: when it is full every other
/// point is dropped and from then on only every 2nd (4th, ...) new point is
/// kept, so a long run keeps an even, coarser picture in bounded memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Thinned<T> {
    points: Vec<T>,
    #[serde(skip)]
    every: u64,
    #[serde(skip)]
    offered: u64,
}

impl<T> Thinned<T> {
    /// Most points kept by default: 100 ms samples for ~13 minutes.
    pub const CAP: usize = 8192;

    pub fn push(&mut self, point: T) {
        let every = self.every.max(1);
        self.offered += 1;
        if !(self.offered - 1).is_multiple_of(every) {
            return;
        }
        if self.points.len() >= Self::CAP {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.every = every * 2;
            if !(self.offered - 1).is_multiple_of(self.every) {
                return;
            }
        }
        self.points.push(point);
    }

    pub fn points(&self) -> &[T] {
        &self.points
    }

    pub fn last(&self) -> Option<&T> {
        self.points.last()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl<T> From<Vec<T>> for Thinned<T> {
    fn from(points: Vec<T>) -> Self {
        Thinned {
            points,
            every: 1,
            offered: 0,
        }
    }
}

fn us(ns: u64) -> f64 {
    (ns as f64 / 1e3 * 1000.0).round() / 1000.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = crate::latency::histogram();
        for v in values_us {
            h.record(v * 1000).unwrap();
        }
        h
    }

    #[test]
    fn spectrum_rises_to_the_max_at_100_percent() {
        let s = spectrum(&hist(1..=100_000));
        assert!(s.len() > 50, "{}", s.len());
        assert!(s
            .windows(2)
            .all(|w| w[0].percentile <= w[1].percentile && w[0].value_us <= w[1].value_us));
        let last = s.last().unwrap();
        assert_eq!(last.percentile, 100.0);
        assert!((last.value_us - 100_000.0).abs() / 1e5 < 0.001, "{last:?}");
        assert!(spectrum(&crate::latency::histogram()).is_empty());
    }

    #[test]
    fn cdf_has_a_point_per_sample_value() {
        let c = cdf(&hist([100, 200, 200, 400]), 100);
        let pct: Vec<f64> = c.iter().map(|p| p.percentile).collect();
        assert_eq!(pct, vec![25.0, 75.0, 100.0]);
        let thin = cdf(&hist(1..=1000), 50);
        assert!(thin.len() <= 51 && thin.last().unwrap().percentile == 100.0);
    }

    #[test]
    fn slices_fill_gaps_and_close_the_last_one() {
        let mut p = LatencyRecorder::default();
        p.record(50_000_000, 1_000_000, 10);
        p.record(2_550_000_000, 3_000_000, 1);
        let t = p.finish();
        let s = &t.per_second;
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].start_ms, s[0].count), (0.0, 10));
        assert!((s[0].p50_us - 1000.0).abs() < 1.0, "{:?}", s[0]);
        assert_eq!((s[1].start_ms, s[1].count), (1000.0, 0));
        assert_eq!((s[2].start_ms, s[2].count), (2000.0, 1));
        assert!((s[2].max_us - 3000.0).abs() < 5.0);
        assert_eq!(t.per_100ms.len(), 26);
        assert_eq!(
            (t.per_100ms[25].start_ms, t.per_100ms[25].count),
            (2500.0, 1)
        );
        assert_eq!(t.per_100ms[1].count, 0);
    }

    #[test]
    fn a_long_run_keeps_only_seconds() {
        let mut p = LatencyRecorder::default();
        let end = (Slices::FINE_CAP as u64 + 5) * 100_000_000;
        p.record(0, 1000, 1);
        p.record(end, 1000, 1);
        let t = p.finish();
        assert!(t.per_100ms.is_empty());
        assert_eq!(t.per_second.len() as u64, end / 1_000_000_000 + 1);
    }

    #[test]
    fn the_cap_holds_for_the_slice_the_end_closes() {
        // Slices 0 .. FINE_CAP-1 fill the cap exactly; the last reply's
        // slice, closed by `finish`, is one too many. One slice less fits.
        for (last, kept) in [
            (Slices::FINE_CAP as u64, 0),
            (Slices::FINE_CAP as u64 - 1, 3000),
        ] {
            let mut p = LatencyRecorder::default();
            p.record(0, 1000, 1);
            p.record(last * 100_000_000, 1000, 1);
            assert_eq!(p.finish().per_100ms.len(), kept, "last slice {last}");
        }
    }

    #[test]
    fn thinned_stays_bounded_and_even() {
        let mut t = Thinned::default();
        for i in 0..(Thinned::<u64>::CAP as u64 * 3) {
            t.push(i);
        }
        assert!(t.len() <= Thinned::<u64>::CAP);
        let p = t.points();
        let step = p[1] - p[0];
        assert!(p.windows(2).all(|w| w[1] - w[0] == step), "uneven");
        assert_eq!(step, 4);
        assert_eq!(
            serde_json::to_string(&Thinned::from(vec![1, 2])).unwrap(),
            "[1,2]"
        );
    }
}
