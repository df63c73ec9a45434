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
pub(crate) use epoll::{EventBuf, Selector};

#[cfg(any(
    not(any(target_os = "linux", target_os = "android")),
    feature = "polling-backend"
))]
mod poller;
#[cfg(any(
    not(any(target_os = "linux", target_os = "android")),
    feature = "polling-backend"
))]
pub(crate) use poller::{EventBuf, Selector};

/// The key of the cross-thread wake; source keys never take it.
pub(crate) const NOTIFY_KEY: u64 = u32::MAX as u64;

/// One readiness event, already translated into directions.
pub(crate) struct SysEvent {
    pub(crate) key: u64,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}
