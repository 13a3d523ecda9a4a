//! ferricorn's Rust core, exposed to Python as `ferricorn._ferricorn`.
//!
//! The request path is `settings → server → worker → http → bridge::wsgi`; see ARCHITECTURE.md.

mod bridge;
mod error;
mod errorlog;
mod exchange;
mod http;
mod job_queue;
mod master;
mod net;
// Called by the master (src/master/), which lands separately.
mod process;
mod server;
mod settings;
mod worker;

use pyo3::prelude::*;

use settings::Parsed;

/// Runs the server with a full argv (program name first). Returns the process exit code.
#[pyfunction]
fn run(py: Python<'_>, argv: Vec<String>) -> i32 {
    let settings = match settings::parse_args(&argv) {
        Parsed::Run(s) => s,
        Parsed::Exit {
            code,
            output,
            to_stderr,
        } => {
            use std::io::Write;
            let _ = if to_stderr {
                std::io::stderr().write_all(output.as_bytes())
            } else {
                std::io::stdout().write_all(output.as_bytes())
            };
            return code;
        }
    };
    crate::errorlog::init(settings.log_level);
    match server::run(py, argv, settings) {
        Ok(()) => 0,
        Err(e @ (error::Error::ChildExit(_) | error::Error::Halt(_))) => e.exit_code(),
        Err(e) => {
            ::log::error!("{e}");
            e.exit_code()
        }
    }
}

#[pymodule]
fn _ferricorn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", settings::VERSION)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_class::<bridge::wsgi::Input>()?;
    m.add_class::<bridge::wsgi::StartResponse>()?;
    m.add_class::<bridge::wsgi::ErrorStream>()?;
    m.add_class::<bridge::wsgi::FileWrapper>()?;
    Ok(())
}
