//! The process-wide reaper: children whose `Child` was dropped before they exited.
//!
//! One thread, `curio-reaper`, started when the first such child is handed over, waits with
//! `poll` for any of the orphans' pidfds to become readable (or, for orphans without one, for
//! `SIGCHLD`) and reaps those that exited. It belongs to no kernel, so orphans are reaped after
//! their kernel is gone too.

use std::os::fd::OwnedFd;
use std::process;
use std::sync::{Mutex, Once, OnceLock};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::signal::SIGCHLD;
use crate::sys::{self, SlotGuard};

/// A child nobody waits for.
struct Orphan {
    child: process::Child,
    pidfd: Option<OwnedFd>,
}

struct Reaper {
    /// Orphans handed over and not yet taken by the thread.
    new: Mutex<Vec<Orphan>>,
    /// Written when an orphan is handed over, to wake the thread.
    wake: OwnedFd,
}

/// The reaper, started on first use; `None` if its eventfd or thread could not be created.
fn reaper() -> Option<&'static Reaper> {
    static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();
    static START: Once = Once::new();
    let r = REAPER
        .get_or_init(|| {
            let wake =
                rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()?;
            Some(Reaper {
                new: Mutex::new(Vec::new()),
                wake,
            })
        })
        .as_ref()?;
    START.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("curio-reaper".into())
            .spawn(move || run(r));
        if let Err(e) = spawned {
            eprintln!("curio: cannot start the reaper thread: {e}");
        }
    });
    Some(r)
}

/// Hands `child` to the reaper, which reaps it when it exits.
pub(crate) fn adopt(child: process::Child, pidfd: Option<OwnedFd>) {
    let Some(r) = reaper() else {
        eprintln!(
            "curio: no reaper; child {} may be left a zombie",
            child.id()
        );
        return;
    };
    r.new
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Orphan { child, pidfd });
    let _ = rustix::io::write(&r.wake, &1u64.to_ne_bytes());
}

/// The reaper thread's loop; it never ends.
fn run(r: &'static Reaper) {
    let mut held: Vec<Orphan> = Vec::new();
    let mut sigchld: Option<SlotGuard> = None;
    loop {
        held.append(&mut r.new.lock().unwrap_or_else(|e| e.into_inner()));
        if sigchld.is_none() && held.iter().any(|o| o.pidfd.is_none()) {
            // Listen before looking, so an exit between the two is not missed.
            if let Ok(slot) = SlotGuard::acquire()
                && sys::add_user(SIGCHLD).is_ok()
            {
                slot.set_mask(sys::bit(SIGCHLD));
                sigchld = Some(slot);
            }
        }
        held.retain_mut(|o| matches!(o.child.try_wait(), Ok(None)));
        let mut fds = vec![PollFd::new(&r.wake, PollFlags::IN)];
        if let Some(slot) = &sigchld {
            fds.push(PollFd::from_borrowed_fd(slot.fd(), PollFlags::IN));
        }
        for o in &held {
            if let Some(p) = &o.pidfd {
                fds.push(PollFd::new(p, PollFlags::IN));
            }
        }
        // Without SIGCHLD (it could not be registered), look again every 100 ms.
        let fallback = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let no_signal = sigchld.is_none() && held.iter().any(|o| o.pidfd.is_none());
        let _ = rustix::event::poll(&mut fds, no_signal.then_some(&fallback));
        drop(fds);
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&r.wake, &mut buf);
        if let Some(slot) = &sigchld {
            slot.drain();
            slot.take_pending();
        }
    }
}
