//! The portable selector on the `polling` crate, in edge-triggered mode where the platform has it.
//!
//! Used on platforms without `epoll`, and on Linux with the `polling-backend` feature (so CI tests it).
#![allow(
    unsafe_code,
    reason = "polling's add_with_mode is unsafe: the fd must be deleted before it closes"
)]

use polling::{Event, Events, PollMode, Poller};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::{NOTIFY_KEY, SysEvent};

/// `polling` does not report a peer's close apart from its data.
pub(crate) const REPORTS_HANGUP: bool = false;

pub(crate) struct Selector {
    poller: Poller,
    mode: PollMode,
}

/// The buffer `Poller::wait` fills; owned by the reactor's thread.
pub(crate) struct EventBuf(Events);

impl EventBuf {
    pub(crate) fn new() -> EventBuf {
        EventBuf(Events::new())
    }
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        let poller = Poller::new()?;
        let mode = if poller.supports_edge() {
            PollMode::Edge
        } else {
            PollMode::Level
        };
        Ok(Selector { poller, mode })
    }

    pub(crate) fn add(&self, fd: BorrowedFd<'_>, key: u64) -> io::Result<()> {
        let key = usize::try_from(key).map_err(|_| io::Error::other("source key overflow"))?;
        // SAFETY: every registered descriptor is deleted by `Async`'s `Drop` before its owner
        // closes it, which is the contract `add_with_mode` asks for.
        unsafe {
            self.poller
                .add_with_mode(fd.as_raw_fd(), Event::all(key), self.mode)
        }
    }

    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.poller.delete(fd)
    }

    pub(crate) fn wait(
        &self,
        buf: &mut EventBuf,
        timeout: Option<Duration>,
        mut f: impl FnMut(SysEvent),
    ) -> io::Result<()> {
        let events = &mut buf.0;
        events.clear();
        match self.poller.wait(events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        // `polling` consumes its own notification; report it so the kernel drains remote work.
        f(SysEvent {
            key: NOTIFY_KEY,
            readable: true,
            writable: false,
            read_closed: false,
            write_closed: false,
        });
        for ev in events.iter() {
            f(SysEvent {
                key: ev.key as u64,
                readable: ev.readable || ev.is_interrupt(),
                writable: ev.writable || ev.is_interrupt(),
                read_closed: ev.is_interrupt(),
                write_closed: ev.is_interrupt(),
            });
        }
        Ok(())
    }

    pub(crate) fn notify(&self) -> io::Result<()> {
        self.poller.notify()
    }

    pub(crate) fn clear_notify(&self) {}
}
