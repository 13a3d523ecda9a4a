//! ferricorn's Rust core, exposed to Python as `ferricorn._ferricorn`.
//!
//! The request path is `settings → server → worker → http → bridge::wsgi`; see ARCHITECTURE.md.

mod accesslog;
mod announce;
mod bridge;
mod dirty;
mod error;
mod errorlog;
mod exchange;
// The fuzz targets' view of the parsers (fuzz/); unit tests replay the saved corpus through it.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz_api;
mod hooks;
mod http;
mod job_queue;
mod master;
mod metrics;
mod net;
// Called by the master (src/master/), which lands separately.
mod process;
mod server;
mod settings;
mod syslog;
mod worker;
mod ws;

#[cfg(test)]
mod test_support;

use pyo3::prelude::*;

use settings::Parsed;

/// Runs the server with a full argv (program name first). Returns the process exit code.
#[pyfunction]
fn run(py: Python<'_>, argv: Vec<String>) -> i32 {
    let settings = match settings::parse_args(py, &argv) {
        Parsed::Run(s) => s,
        Parsed::Check { settings, printed } => return check(py, &settings, printed),
        Parsed::Exit {
            code,
            output,
            to_stderr,
        } => {
            print_out(&output, to_stderr);
            return code;
        }
    };
    if let Err(code) = init_errorlog(&settings) {
        return code;
    }
    for warning in &settings.warnings {
        ::log::warn!("{warning}");
    }
    match server::run(py, argv, settings) {
        Ok(()) => 0,
        Err(e @ (error::Error::ChildExit(_) | error::Error::Halt(_))) => e.exit_code(),
        Err(e) => {
            ::log::error!("{e}");
            e.exit_code()
        }
    }
}

/// `--check-config` / `--print-config`: print the listing, import the app
/// as a worker would, and exit 0 quietly or 1 with the error.
fn check(py: Python<'_>, settings: &settings::Settings, printed: Option<String>) -> i32 {
    if let Some(text) = printed {
        print_out(&text, false);
    }
    if let Err(code) = init_errorlog(settings) {
        return code;
    }
    for warning in &settings.warnings {
        print_out(&format!("warning: {warning}\n"), true);
    }
    match server::check_app(py, settings) {
        Ok(()) => 0,
        Err(e) => {
            print_out(&format!("error: {e}\n"), true);
            // gunicorn exits 1 for any --check-config failure
            1
        }
    }
}

/// Opens the error log; on failure says which setting to fix and gives the exit code.
fn init_errorlog(settings: &settings::Settings) -> Result<(), i32> {
    crate::errorlog::init(settings.log_level, &settings.errorlog).map_err(|e| {
        print_out(
            &format!(
                "error: --error-logfile / errorlog = {:?}: cannot open it for appending: {e}\n",
                settings.errorlog
            ),
            true,
        );
        1
    })?;
    if let Some(s) = &settings.syslog {
        crate::syslog::init(&s.addr, &s.facility, &s.prefix, s.access_too).map_err(|e| {
            print_out(&format!("error: {e}\n"), true);
            1
        })?;
    }
    Ok(())
}

fn print_out(text: &str, to_stderr: bool) {
    use std::io::Write;
    let _ = if to_stderr {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        let mut out = std::io::stdout();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
}

#[pymodule]
fn _ferricorn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", settings::VERSION)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(hooks::py_log, m)?)?;
    m.add_class::<dirty::link::DirtyLink>()?;
    m.add_class::<bridge::wsgi::Input>()?;
    m.add_class::<bridge::wsgi::StartResponse>()?;
    m.add_class::<bridge::wsgi::ErrorStream>()?;
    m.add_class::<bridge::wsgi::FileWrapper>()?;
    m.add_class::<bridge::asgi::AsgiBridge>()?;
    m.add_class::<bridge::asgi::HttpCycle>()?;
    m.add_class::<bridge::asgi::WebSocketCycle>()?;
    m.add(
        "ClientDisconnected",
        m.py().get_type::<bridge::asgi::ClientDisconnected>(),
    )?;
    Ok(())
}
