//! The operating system's readiness selector.

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(feature = "polling-backend")
))]
mod epoll;
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(feature = "polling-backend")
))]
pub(crate) use epoll::{EventBuf, REPORTS_HANGUP, Selector};

#[cfg(any(
    not(any(target_os = "linux", target_os = "android")),
    feature = "polling-backend"
))]
mod poller;
#[cfg(any(
    not(any(target_os = "linux", target_os = "android")),
    feature = "polling-backend"
))]
pub(crate) use poller::{EventBuf, REPORTS_HANGUP, Selector};

/// The key of the cross-thread wake; source keys never take it.
pub(crate) const NOTIFY_KEY: u64 = u32::MAX as u64;

/// One readiness event, already translated into directions.
pub(crate) struct SysEvent {
    pub(crate) key: u64,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer hung up its sending side, or the descriptor is in error.
    pub(crate) read_closed: bool,
    /// The descriptor hung up or is in error.
    pub(crate) write_closed: bool,
}
