//! The Linux selector: `epoll` in edge-triggered mode plus an `eventfd` for cross-thread wakes.
//!
//! Each descriptor is added once, for both directions, with `EPOLLET`: no re-arming per wait.
//! The eventfd is also edge-triggered and is read only after it fired.
//! A timeout is passed to `epoll_wait` in whole milliseconds, rounded up, so no timerfd is armed and
//! the kernel never wakes before a deadline.

use rustix::buffer::spare_capacity;
use rustix::event::epoll;
use rustix::event::{EventfdFlags, eventfd};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::{NOTIFY_KEY, SysEvent};

/// `EPOLLRDHUP` reports a peer's close apart from its data.
pub(crate) const REPORTS_HANGUP: bool = true;

pub(crate) struct Selector {
    epoll: OwnedFd,
    eventfd: OwnedFd,
}

/// The buffer `epoll_wait` fills; owned by the reactor's thread.
pub(crate) struct EventBuf(Vec<epoll::Event>);

impl EventBuf {
    pub(crate) fn new() -> EventBuf {
        EventBuf(Vec::with_capacity(1024))
    }
}

const SOURCE_FLAGS: epoll::EventFlags = epoll::EventFlags::IN
    .union(epoll::EventFlags::OUT)
    .union(epoll::EventFlags::RDHUP)
    .union(epoll::EventFlags::ET);

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &ep,
            &efd,
            epoll::EventData::new_u64(NOTIFY_KEY),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )?;
        Ok(Selector {
            epoll: ep,
            eventfd: efd,
        })
    }

    pub(crate) fn add(&self, fd: BorrowedFd<'_>, key: u64) -> io::Result<()> {
        epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(key),
            SOURCE_FLAGS,
        )?;
        Ok(())
    }

    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        epoll::delete(&self.epoll, fd)?;
        Ok(())
    }

    pub(crate) fn wait(
        &self,
        buf: &mut EventBuf,
        timeout: Option<Duration>,
        mut f: impl FnMut(SysEvent),
    ) -> io::Result<()> {
        let ts = timeout.map(|t| {
            // Whole milliseconds, rounded up: never wake before the deadline.
            let ms = t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i64;
            rustix::event::Timespec {
                tv_sec: ms / 1000,
                tv_nsec: (ms % 1000) * 1_000_000,
            }
        });
        let events = &mut buf.0;
        events.clear();
        match epoll::wait(&self.epoll, spare_capacity(events), ts.as_ref()) {
            Ok(_) => {}
            // A signal interrupted the wait: report nothing, the kernel loops again.
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let key = ev.data.u64();
            let fl = ev.flags;
            f(SysEvent {
                key,
                readable: fl.intersects(
                    epoll::EventFlags::IN
                        | epoll::EventFlags::HUP
                        | epoll::EventFlags::ERR
                        | epoll::EventFlags::RDHUP
                        | epoll::EventFlags::PRI,
                ),
                writable: fl.intersects(
                    epoll::EventFlags::OUT | epoll::EventFlags::HUP | epoll::EventFlags::ERR,
                ),
                read_closed: fl.intersects(
                    epoll::EventFlags::RDHUP | epoll::EventFlags::HUP | epoll::EventFlags::ERR,
                ),
                write_closed: fl.intersects(epoll::EventFlags::HUP | epoll::EventFlags::ERR),
            });
        }
        Ok(())
    }

    pub(crate) fn notify(&self) -> io::Result<()> {
        match rustix::io::write(&self.eventfd, &1u64.to_ne_bytes()) {
            // A full counter still has an unread wake pending: nothing is lost.
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn clear_notify(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(self.eventfd.as_fd(), &mut buf);
    }
}
