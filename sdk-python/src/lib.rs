//! The native half of the `pulseline` Python package (`pulseline._native`). It converts Python
//! arguments and results to and from the Rust SDK core (`sdk-core`, crate `pulseline`), which
//! does all the work; the Python half (`python/pulseline`) adds logging, the module-level
//! client, and the `atexit` and `os.fork` hooks.

mod client;
mod convert;
mod error;
mod message;
mod options;
mod report;
mod stats;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::Client>()?;
    m.add_class::<stats::Stats>()?;
    m.add_class::<stats::FlushOutcome>()?;
    m.add_class::<stats::ShutdownOutcome>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("OPTION_TABLE", options::python_table(m.py())?)?;
    Ok(())
}
