//! The signals that end a run.

use anyhow::Result;

fn count_signals() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Its own thread and runtime: it counts while the main thread blocks.
        let _ = std::thread::Builder::new()
            .name("redlab-signals".into())
            .spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    let Ok(mut s) = Signals::listen() else { return };
                    loop {
                        s.recv().await;
                        crate::interrupt::count();
                    }
                });
            });
    });
}

/// SIGINT (Ctrl-C), SIGTERM (timeout, docker stop, a cancelled CI job) and
/// SIGHUP (a closed terminal) all end a run the same way: keys removed,
/// a spawned lab stopped, exit 130.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        let s = Signals::listen()?;
        count_signals();
        Ok(s)
    }

    fn listen() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}
