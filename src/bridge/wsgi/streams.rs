//! `wsgi.errors` and `wsgi.file_wrapper`: the two helper objects every environ carries.

use pyo3::prelude::*;

/// `wsgi.errors`: text written here goes to the error log as is.
#[pyclass(module = "ferricorn._ferricorn", frozen)]
pub struct ErrorStream;

#[pymethods]
impl ErrorStream {
    fn write(&self, text: &str) -> usize {
        crate::errorlog::write_raw(text);
        text.len()
    }

    fn writelines(&self, lines: Vec<String>) {
        for line in lines {
            crate::errorlog::write_raw(&line);
        }
    }

    fn flush(&self) {}
}

/// `wsgi.file_wrapper`: iterates a file in blocks; the response writer recognises it and sends
/// the file with sendfile(2) instead when the file has a real descriptor.
#[pyclass(module = "ferricorn._ferricorn", frozen)]
pub struct FileWrapper {
    pub filelike: Py<PyAny>,
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> Self {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        Ok(if data.is_truthy()? { Some(data) } else { None })
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}
