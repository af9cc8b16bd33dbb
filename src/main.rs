use std::process::ExitCode;
use std::time::Instant;

use redlab::timings;

fn main() -> ExitCode {
    let start = timings::origin();
    // `redlab --version` alone, the commonest probe of an install: printed
    // as clap prints it, without building the whole command tree first.
    if let [_, v] = std::env::args_os().collect::<Vec<_>>().as_slice() {
        if v == "--version" || v == "-V" {
            println!("redlab {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
    }
    // Parse first: --version, --help and usage errors exit inside the full
    // parser, before any runtime, thread or connection exists.
    let cli = redlab::cli::Cli::parse_process();
    if cli.global.timings {
        timings::enable();
        timings::record("parse arguments", start);
    }
    let t = Instant::now();
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
    timings::record("async runtime", t);
    let code = match runtime.block_on(redlab::run(cli)) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("redlab: error: {e:#}");
            ExitCode::from(2)
        }
    };
    let t = Instant::now();
    // Blocking tasks (DNS look-ups) are not waited for: nothing is left to do.
    runtime.shutdown_background();
    timings::record("runtime shutdown", t);
    timings::print();
    code
}
