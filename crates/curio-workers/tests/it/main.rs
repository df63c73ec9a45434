//! curio-workers' integration tests: async threads, the process pool and async files.

mod child;
mod fs;
mod process;
mod thread;
