//! curio-net's integration tests: one binary, a module per area.

mod channel;
mod proptest_stream;
mod shutdown;
mod sockopt;
#[cfg(feature = "tls")]
mod tls;

/// The number of cases a property test runs: `PROPTEST_CASES` if set (a longer run), else
/// `default`.
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// The workspace's examples are written against the facade (`curio::net`, `curio::run`), which this
// crate cannot depend on. These few names stand in for it, so the tests compile the examples'
// own files: `extern crate self` puts this test crate in the extern prelude as `curio`.
#[cfg(feature = "tls")]
extern crate self as curio;

/// The facade's `curio::net`, for the examples compiled by these tests.
#[cfg(feature = "tls")]
pub mod net {
    pub use curio_net::*;
}

#[cfg(feature = "tls")]
pub use curio_kernel::run;
