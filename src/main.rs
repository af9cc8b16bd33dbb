use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = redlab::cli::Cli::parse();
    // One thread: redlab waits on the network, it does not compute; the perf
    // engine runs on a thread of its own. Fewer threads, faster start.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redlab: error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(redlab::run(cli)) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("redlab: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
