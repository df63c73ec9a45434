//! The process-wide, async-signal-safe half of signal handling, and the crate's only `unsafe`.
//!
//! # Safety
//!
//! Installing a signal handler is `unsafe` because the handler runs at any instruction of any
//! thread: it may only make async-signal-safe calls.
//! Ours ([`on_signal`]) does atomic loads and stores on statics and one `write` to an eventfd that
//! is never closed, and when no curio user of the signal is left and the signal's disposition
//! before curio was the default action, `sigaction`, `sigprocmask` and `raise` to perform it:
//! no allocation, no lock, no reference count.
//! The other `unsafe` calls query a disposition with `sigaction`, borrow a raw descriptor that is
//! never closed, and build a `rustix` signal from a number checked to be a valid one.
//!
//! The handler reaches its listeners through [`SLOT_TABLE`], a fixed array of slots, one per
//! interested kernel (or the reaper thread): a mask of the signals the slot wants, a pending bit
//! per signal, and the eventfd to write. A slot's eventfd is created once and kept for the life of
//! the process, so the handler can never write to a closed or reused descriptor.
#![allow(
    unsafe_code,
    reason = "signal handlers and the calls they make are unsafe; see the module's `# Safety`"
)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The highest signal number a mask can hold (Linux's `SIGRTMAX`).
pub(crate) const MAX_SIGNAL: i32 = 64;

/// How many kernels (plus the reaper thread) may listen for signals at once.
const SLOTS: usize = 64;

/// One listener of the handler: a kernel, or the reaper thread.
struct Slot {
    /// Taken by a [`SlotGuard`].
    used: AtomicBool,
    /// Bit `n - 1` is set when the slot wants signal `n`.
    mask: AtomicU64,
    /// Bit `n - 1` is set by the handler when signal `n` arrived.
    pending: AtomicU64,
    /// The slot's eventfd, or -1 before its first use; never closed once set.
    fd: AtomicI32,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            used: AtomicBool::new(false),
            mask: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            fd: AtomicI32::new(-1),
        }
    }
}

static SLOT_TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// The owners of the slots' eventfds, which keep them open for the life of the process.
static SLOT_FDS: [OnceLock<OwnedFd>; SLOTS] = [const { OnceLock::new() }; SLOTS];

/// How many curio listeners each signal has, process-wide.
static USERS: [AtomicUsize; MAX_SIGNAL as usize + 1] =
    [const { AtomicUsize::new(0) }; MAX_SIGNAL as usize + 1];

/// Whether the signal's disposition before curio's handler was the default action, and that
/// action is not to ignore it: the handler then performs it when no curio user is left.
static DEFAULT_ACTION: [AtomicBool; MAX_SIGNAL as usize + 1] =
    [const { AtomicBool::new(false) }; MAX_SIGNAL as usize + 1];

/// Which signals have curio's handler (bit `n - 1`), under a lock so two threads never install
/// the same signal twice.
static INSTALLED: Mutex<u64> = Mutex::new(0);

/// The mask bit of signal `sig`.
pub(crate) fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Checks that `sig` is a signal curio can handle: a number the C library does not reserve, and
/// not one whose handling would be unsound (`SIGKILL`, `SIGSTOP`, `SIGILL`, `SIGFPE`, `SIGSEGV`).
pub(crate) fn check_signal(sig: i32) -> io::Result<()> {
    let valid = (1..32).contains(&sig) || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig);
    if !valid || sig > MAX_SIGNAL {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{sig} is not a signal number curio can use"),
        ));
    }
    if signal_hook_registry::FORBIDDEN.contains(&sig) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {sig} cannot be caught"),
        ));
    }
    Ok(())
}

/// Sends `sig` to a child through its pidfd, or by pid without one.
///
/// # Errors
///
/// An invalid signal number, or the error of `pidfd_send_signal`/`kill`.
pub(crate) fn send_signal(pidfd: Option<BorrowedFd<'_>>, pid: u32, sig: i32) -> io::Result<()> {
    let valid = (1..32).contains(&sig) || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig);
    if !valid {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{sig} is not a signal number"),
        ));
    }
    // SAFETY: `sig` was just checked to be a non-zero signal number outside the range the C
    // library reserves.
    let signal = unsafe { rustix::process::Signal::from_raw_unchecked(sig) };
    match pidfd {
        Some(fd) => Ok(rustix::process::pidfd_send_signal(fd, signal)?),
        None => {
            let pid = rustix::process::Pid::from_raw(pid as i32)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pid 0"))?;
            Ok(rustix::process::kill_process(pid, signal)?)
        }
    }
}

/// A slot of [`SLOT_TABLE`] held by one listener; dropping it frees the slot (its eventfd stays).
pub(crate) struct SlotGuard {
    index: usize,
}

impl SlotGuard {
    /// Takes a free slot, with no signals wanted yet.
    ///
    /// # Errors
    ///
    /// When every slot is taken, or the eventfd cannot be created.
    pub(crate) fn acquire() -> io::Result<SlotGuard> {
        for (index, slot) in SLOT_TABLE.iter().enumerate() {
            if slot
                .used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let guard = SlotGuard { index };
            if SLOT_FDS[index].get().is_none() {
                let fd = rustix::event::eventfd(
                    0,
                    rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
                )?;
                let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
                // Only the holder of `used` initialises the slot's descriptor.
                let _ = SLOT_FDS[index].set(fd);
                slot.fd.store(raw, Ordering::Release);
            }
            return Ok(guard);
        }
        Err(io::Error::other(
            "too many kernels listening for signals at once (64)",
        ))
    }

    /// The slot's eventfd (non-blocking); the handler writes it after setting a pending bit.
    pub(crate) fn fd(&self) -> BorrowedFd<'static> {
        SLOT_FDS[self.index]
            .get()
            .expect("a held slot has its eventfd")
            .as_fd()
    }

    /// Sets the signals this slot wants.
    pub(crate) fn set_mask(&self, mask: u64) {
        SLOT_TABLE[self.index].mask.store(mask, Ordering::Release);
    }

    /// Takes the signals that arrived since the last call (among those wanted).
    pub(crate) fn take_pending(&self) -> u64 {
        let slot = &SLOT_TABLE[self.index];
        slot.pending.swap(0, Ordering::AcqRel) & slot.mask.load(Ordering::Acquire)
    }

    /// Empties the eventfd's counter, so the next `poll` waits for the next signal.
    pub(crate) fn drain(&self) {
        // A slot whose eventfd could not be created (`acquire` failed) has nothing to drain.
        if let Some(fd) = SLOT_FDS[self.index].get() {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(fd, &mut buf);
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let slot = &SLOT_TABLE[self.index];
        slot.mask.store(0, Ordering::Release);
        slot.pending.store(0, Ordering::Release);
        self.drain();
        slot.used.store(false, Ordering::Release);
    }
}

/// Counts one more curio listener of `sig`, installing curio's handler for it the first time.
///
/// # Errors
///
/// An invalid or forbidden signal, or the error of `sigaction`.
pub(crate) fn add_user(sig: i32) -> io::Result<()> {
    check_signal(sig)?;
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed & bit(sig) == 0 {
        // SAFETY: an all-zero `sigaction` is a valid value of the C struct.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only queries; `old` is a valid place to write.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let default = old.sa_sigaction == libc::SIG_DFL && !ignored_by_default(sig);
        DEFAULT_ACTION[sig as usize].store(default, Ordering::Release);
        // SAFETY: `on_signal` is async-signal-safe (see the module's `# Safety`), and `sig` is
        // not one of the signals signal-hook-registry forbids (`check_signal`).
        unsafe { signal_hook_registry::register(sig, move || on_signal(sig)) }?;
        *installed |= bit(sig);
    }
    USERS[sig as usize].fetch_add(1, Ordering::AcqRel);
    Ok(())
}

/// Counts one curio listener of `sig` less. The handler stays installed; with no listener left
/// it acts as the disposition before curio did.
pub(crate) fn remove_user(sig: i32) {
    USERS[sig as usize].fetch_sub(1, Ordering::AcqRel);
}

/// Signals whose default action is to do nothing (`SIGCONT`'s continuing happens in the kernel).
fn ignored_by_default(sig: i32) -> bool {
    [libc::SIGCHLD, libc::SIGCONT, libc::SIGURG, libc::SIGWINCH].contains(&sig)
}

/// The handler: for every slot that wants `sig`, set its pending bit and wake it.
/// signal-hook-registry calls it, then the handler that was installed before (if any), and keeps
/// `errno` intact around both.
fn on_signal(sig: i32) {
    // Decided before any listener hears of the signal: a listener woken by the write below may
    // take it, finish and drop its registration on another core before this handler goes on,
    // and a count read afterwards would then see no listener and kill the process.
    let unheard = USERS[sig as usize].load(Ordering::Acquire) == 0;
    let b = bit(sig);
    for slot in &SLOT_TABLE {
        if slot.mask.load(Ordering::Acquire) & b == 0 {
            continue;
        }
        slot.pending.fetch_or(b, Ordering::AcqRel);
        let fd = slot.fd.load(Ordering::Acquire);
        if fd >= 0 {
            // SAFETY: a slot's descriptor is published only once it is open, and it is never
            // closed (`SLOT_FDS` owns it for the life of the process).
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            // A full counter (impossible in practice) still leaves the eventfd readable.
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }
    if unheard && DEFAULT_ACTION[sig as usize].load(Ordering::Acquire) {
        default_action(sig);
    }
}

/// Performs the default action of `sig` from inside its handler: reset the disposition to
/// `SIG_DFL`, unblock the signal and raise it. For a signal that terminates, the process ends
/// here; one that stops comes back after `SIGCONT`, and the handler is put back.
fn default_action(sig: i32) {
    // SAFETY: all-zero `sigaction` and `sigset_t` are valid values of the C types; `sigaction`,
    // `sigemptyset`, `sigaddset`, `sigprocmask` and `raise` are async-signal-safe, and every
    // pointer passed points to a live local.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let mut ours: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, &dfl, &mut ours) != 0 {
            return;
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        libc::sigaction(sig, &ours, std::ptr::null_mut());
    }
}
