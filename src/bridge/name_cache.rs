//! A bounded cache of Python objects made from header names (WSGI's `HTTP_*` keys, ASGI's
//! lower-cased name bytes), so a steady stream of requests allocates no name objects.

use std::collections::HashMap;

use pyo3::prelude::*;

/// Most distinct header names cached; clients choose names, so the cache is bounded.
const MAX_CACHED_NAMES: usize = 512;

pub struct NameCache<T> {
    cache: HashMap<Vec<u8>, Py<T>>,
}

impl<T> Default for NameCache<T> {
    fn default() -> Self {
        NameCache {
            cache: HashMap::new(),
        }
    }
}

impl<T> NameCache<T> {
    /// The object for `name`, made by `make` (and kept, while there is room) the first time.
    pub fn get<'py>(
        &mut self,
        py: Python<'py>,
        name: &[u8],
        make: impl FnOnce() -> Bound<'py, T>,
    ) -> Bound<'py, T> {
        if let Some(obj) = self.cache.get(name) {
            return obj.bind(py).clone();
        }
        let obj = make();
        if self.cache.len() < MAX_CACHED_NAMES {
            self.cache.insert(name.to_vec(), obj.clone().unbind());
        }
        obj
    }
}
