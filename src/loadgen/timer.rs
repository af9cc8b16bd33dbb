//! The open-loop pacer's clock: a timerfd the runtime polls, and how early
//! to arm it (see `pacer.rs` for why).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// How early to arm the timer, so that its wake-up latency is spent before
/// the due time and the rest is a short spin. The latency is learnt from the
/// timer itself (mean + 2 deviations, like a TCP retransmit timeout): some
/// µs on bare metal, 20-60 µs on this project's VM, where waking an idle
/// vCPU is slow. Capped, so a slow machine cannot turn the pacer into a
/// permanent spin at low rates.
pub(crate) struct Lead {
    mean: f64,
    dev: f64,
}

impl Lead {
    /// Longest spin before a send.
    const MAX_NS: f64 = 100_000.0;

    pub(crate) fn new() -> Lead {
        // A guess the first wake-ups correct (each moves it by 1/8).
        Lead {
            mean: 20_000.0,
            dev: 10_000.0,
        }
    }

    /// How early to wake for a send `wait` ns away: the learnt latency, but
    /// at most a quarter of the wait, so the spin takes at most a quarter of
    /// the time between sends (at 10k/s a full lead kept the client spinning
    /// all the time, ~90 µs of CPU per request, for ~10 µs of precision).
    pub(crate) fn ns(&self, wait: u64) -> u64 {
        ((self.mean + 2.0 * self.dev).min(Self::MAX_NS) as u64).min(wait / 4)
    }

    /// The timer woke `late` ns after it was armed for.
    pub(crate) fn observe(&mut self, late: u64) {
        let err = late as f64 - self.mean;
        self.mean += err / 8.0;
        self.dev += (err.abs() - self.dev) / 8.0;
    }
}

/// A one-shot timerfd on CLOCK_MONOTONIC (the clock `Instant` reads),
/// armed at absolute times and awaited through the runtime's epoll.
pub(crate) struct Timer {
    fd: TimerFd,
    /// The same timer (a dup of `fd`) as something tokio can poll. tokio's
    /// `AsyncFd::register` is `unsafe` (this crate forbids unsafe code) and
    /// `AsyncFd::new` is deprecated as unsound; a pipe receiver built
    /// unchecked from an owned fd is the safe way to get an arbitrary
    /// readable fd into the reactor, and a timerfd reads like one: 8 bytes
    /// once expired, EAGAIN before.
    ready: tokio::net::unix::pipe::Receiver,
    /// The run's start on CLOCK_MONOTONIC.
    base_ts: TimeSpec,
}

impl Timer {
    pub(crate) fn new(base: Instant) -> Result<Timer> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .context("creating the open-loop timer (timerfd)")?;
        let dup = fd
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating the timerfd")?;
        let ready = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(dup)
            .context("registering the timerfd")?;
        let now = Instant::now();
        let now_ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .context("reading CLOCK_MONOTONIC")?;
        let base_ts = now_ts - TimeSpec::from(now.saturating_duration_since(base));
        Ok(Timer { fd, ready, base_ts })
    }

    /// Sleep until `at_ns` after the run's start (at once if that has
    /// passed). The wake-up is not confirmed by a read: the fd stays
    /// expired until the next arming resets it, which saves a system call
    /// per wait. The first read after arming both catches an expiry that
    /// already happened and clears tokio's cached readiness from the last.
    pub(crate) async fn sleep_until(&mut self, at_ns: u64) -> Result<()> {
        let at = self.base_ts + TimeSpec::from(Duration::from_nanos(at_ns));
        self.fd
            .set(
                Expiration::OneShot(at),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            )
            .context("arming the open-loop timer")?;
        match self.ready.try_read(&mut [0u8; 8]) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e).context("reading the open-loop timer"),
        }
        self.ready
            .readable()
            .await
            .context("waiting on the open-loop timer")
    }
}
