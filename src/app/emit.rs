//! The report out of the run: printed to stdout, written to the files asked
//! for, with `--fail-on warn` applied.

use std::io::Write;

use anyhow::Result;

use super::settings::{self, Settings};
use crate::report::{self, AnyReport, Format, Verdict};

/// Print the report to stdout and write the files asked for; a failing
/// run's report is written too. The rule: stdout gets the report (in
/// --format, else the table) unless `--output PATH` sends it to a file
/// (`--output -` is stdout); `--report [PATH]` writes a copy besides; `-q`
/// silences progress and narration, never the report.
pub fn emit(settings: &Settings, report: &mut dyn AnyReport) -> Result<Verdict> {
    if settings.fail_on == report::FailOn::Warn {
        report.warnings_fatal();
    }
    let g = &settings.output;
    write_files(g, report)?;
    if let Some(path) = g.path.as_ref().filter(|p| p.as_os_str() != "-") {
        // The report went to a file: the terminal (or the CI log) still
        // learns the verdict and where to read the rest, in every format.
        eprintln!(
            "redlab {}: {}\nredlab: report written to {}",
            report.command(),
            report.verdict().as_str(),
            path.display()
        );
        return Ok(report.verdict());
    }
    let text = report.render_view(g.format.unwrap_or(Format::Table), g.stdout_view())?;
    print_stdout(text.as_bytes())?;
    Ok(report.verdict())
}

/// Write to stdout; a reader that went away (`| head`) is not redlab's failure.
fn print_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// The files asked for: --output PATH (not `-`) and --report [PATH].
pub fn write_files(g: &settings::Output, report: &dyn AnyReport) -> Result<()> {
    if let Some(path) = g.path.as_ref().filter(|p| p.as_os_str() != "-") {
        report.write_to(path, report::format_for_path(path, g.format))?;
    }
    if let Some(named) = &g.report {
        let (path, f) = match named {
            Some(p) => (p.clone(), report::format_for_path(p, g.format)),
            None => {
                let f = g.format.unwrap_or(Format::Json);
                (report::default_path(report.command(), f), f)
            }
        };
        report.write_to(&path, f)?;
        eprintln!("redlab: report written to {}", path.display());
    }
    Ok(())
}
