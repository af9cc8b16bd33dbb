//! How precisely can a current-thread tokio runtime (the perf engine's) act
//! at a chosen instant, and what does the waiting cost in CPU? The numbers
//! behind the open-loop pacer's design (src/loadgen/pacer.rs).
//!
//! For each way of waiting and each interval, it schedules events at
//! `start + k * interval` for about a second, wakes for each (all events due
//! by the time it wakes are handled together, as the pacer does), and prints
//! the lateness (wake time minus due time) p50/p99/max and the process CPU
//! spent per second of run. Ways of waiting:
//!
//! - `tokio-sleep`: `tokio::time::sleep_until` (a 1 ms timer wheel);
//! - `tokio+spin`: tokio sleep to 1 ms before, then `yield_now` until due;
//! - `timerfd`: a timerfd armed at the due time (absolute, CLOCK_MONOTONIC),
//!   registered with the runtime's epoll like a socket (`AsyncFd`);
//! - `timerfd+spin50`: timerfd armed 50 µs early, then `yield_now` until due;
//! - `thread`: a dedicated thread in `clock_nanosleep` (timer slack 1 ns),
//!   waking the runtime through a `tokio::sync::Notify`.
//!
//! Usage: cargo run --release --example pacer_precision [-- SECONDS]
//! Pin it (`taskset -c 1`) to see one CPU's figures.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{self, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::time::{clock_gettime, clock_nanosleep, ClockId, ClockNanosleepFlags};

#[derive(Clone, Copy, Debug)]
enum Way {
    TokioSleep,
    TokioSpin,
    Timerfd,
    TimerfdSpin,
    Thread,
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!("| way | interval | events | late p50 µs | late p99 µs | late max µs | CPU % |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for interval_us in [1000u64, 100, 10] {
        for way in [
            Way::TokioSleep,
            Way::TokioSpin,
            Way::Timerfd,
            Way::TimerfdSpin,
            Way::Thread,
        ] {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let n = (secs * 1e6 / interval_us as f64) as u64;
            let (h, cpu, wall) = rt.block_on(run(way, Duration::from_micros(interval_us), n));
            println!(
                "| {way:?} | {interval_us} µs | {n} | {:.1} | {:.1} | {:.1} | {:.0} |",
                h.value_at_quantile(0.5) as f64 / 1e3,
                h.value_at_quantile(0.99) as f64 / 1e3,
                h.max() as f64 / 1e3,
                cpu / wall * 100.0
            );
        }
    }
}

fn mono() -> TimeSpec {
    clock_gettime(ClockId::CLOCK_MONOTONIC).expect("clock_gettime")
}

fn cpu_now() -> f64 {
    let t = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("cpu clock");
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

async fn run(way: Way, interval: Duration, n: u64) -> (Histogram<u64>, f64, f64) {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    let fd = TimerFd::new(
        timerfd::ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )
    .expect("timerfd");
    // As in src/loadgen/pacer.rs: a dup of the timerfd, polled as a pipe.
    let ready = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(
        fd.as_fd().try_clone_to_owned().expect("dup"),
    )
    .expect("register timerfd");
    // Instant and CLOCK_MONOTONIC are the same clock on Linux.
    let (start, start_ts) = (Instant::now(), mono());
    let base = start + Duration::from_millis(5);
    let base_ts = start_ts + TimeSpec::from(Duration::from_millis(5));
    let notify = Arc::new(tokio::sync::Notify::new());
    let sleeper = matches!(way, Way::Thread).then(|| {
        let notify = notify.clone();
        std::thread::spawn(move || {
            let _ = nix::sys::prctl::set_timerslack(1);
            for k in 0..n {
                let at = base_ts + TimeSpec::from(interval * k as u32);
                let _ = clock_nanosleep(
                    ClockId::CLOCK_MONOTONIC,
                    ClockNanosleepFlags::TIMER_ABSTIME,
                    &at,
                );
                notify.notify_one();
            }
        })
    });
    let cpu0 = cpu_now();
    let mut k = 0u64;
    while k < n {
        let due = base + interval * k as u32;
        let due_ts = base_ts + TimeSpec::from(interval * k as u32);
        match way {
            Way::TokioSleep => tokio::time::sleep_until(due.into()).await,
            Way::TokioSpin => {
                if let Some(early) = due.checked_sub(Duration::from_millis(1)) {
                    tokio::time::sleep_until(early.into()).await;
                }
                while Instant::now() < due {
                    tokio::task::yield_now().await;
                }
            }
            Way::Timerfd | Way::TimerfdSpin => {
                let lead = if matches!(way, Way::TimerfdSpin) {
                    50_000
                } else {
                    0
                };
                let at = due_ts - TimeSpec::from(Duration::from_nanos(lead));
                if Instant::now() + Duration::from_nanos(lead) < due {
                    fd.set(
                        Expiration::OneShot(at),
                        TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                    )
                    .expect("arm");
                    loop {
                        ready.readable().await.expect("readable");
                        if ready.try_read(&mut [0u8; 8]).is_ok() {
                            break;
                        }
                    }
                }
                while Instant::now() < due {
                    tokio::task::yield_now().await;
                }
            }
            Way::Thread => {
                if Instant::now() < due {
                    notify.notified().await;
                }
            }
        }
        let now = Instant::now();
        // Everything due by now is handled in this wake-up (batching by due time).
        while k < n && base + interval * k as u32 <= now {
            let late = now.saturating_duration_since(base + interval * k as u32);
            let _ = h.record(late.as_nanos() as u64);
            k += 1;
        }
    }
    let cpu = cpu_now() - cpu0;
    let wall = start.elapsed().as_secs_f64();
    if let Some(t) = sleeper {
        let _ = t.join();
    }
    (h, cpu, wall)
}
