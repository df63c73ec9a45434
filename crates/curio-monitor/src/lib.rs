//! The live monitor of curio-rt: ask a running program what every task does and where it waits.
//!
//! A kernel with the monitor on (the builder option [`MonitorBuilderExt::monitor`], or the
//! `CURIOMONITOR` environment variable through [`MonitorBuilderExt::monitor_from_env`], which
//! `#[curio::main]` calls) publishes its tasks to a table that a server thread reads. Connect with
//! the `curio-monitor` client (`curio-monitor [-H host] [-p port]`), `nc` or `telnet`, and use
//! Curio's line protocol:
//!
//! - `ps`: every task of every monitored kernel: id, state (what it waits on: `TIME_SLEEP`,
//!   `QUEUE_GET`, `READ_WAIT`, ...), turns, and name;
//! - `where ID`: where the task was spawned and the line of its current wait;
//! - `parents ID`: the task and its ancestors;
//! - `cancel ID` and `signal NAME`: only when enabled ([`MonitorBuilderExt::monitor_control`]):
//!   `cancel` when the task's own kernel enabled it, `signal` (which reaches the whole process)
//!   when every monitored kernel did;
//! - `help`, `quit`.
//!
//! # Implementation
//!
//! One process-wide server thread (`curio-monitor`) listens on `127.0.0.1:48802` by default (the
//! first kernel's address wins; later kernels register with the same server), and one thread
//! per connected client answers it. The kernel's side is an [`Activation`]: each scheduling event
//! updates the kernel's row in a table behind a mutex, so the server answers `ps` even while the
//! kernel's thread is stuck in a long computation or a blocking call; it never needs the kernel's
//! cooperation. `cancel` goes through a [`KernelHandle`]. The crate has no `unsafe`.
//!
//! # Examples
//!
//! ```no_run
//! use curio_monitor::MonitorBuilderExt;
//!
//! let mut kernel = curio_kernel::Kernel::builder().monitor(true).build();
//! kernel.run(async {
//!     // `curio-monitor` in another terminal, then `ps`.
//!     curio_kernel::sleep(std::time::Duration::from_secs(60)).await;
//! });
//! ```
#![forbid(unsafe_code)]

mod protocol;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use curio_core::{WaitKind, WaitSite};
use curio_kernel::{Activation, Ended, KernelBuilder, KernelHandle, TaskId, TaskInfo};

pub use crate::server::local_addr;

/// The default address: loopback only, Curio's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:48802";

/// The monitor's settings for one kernel (see [`MonitorBuilderExt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// Where the process-wide server listens, if this kernel starts it.
    pub addr: SocketAddr,
    /// Whether `cancel` and `signal` are allowed.
    pub control: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            addr: DEFAULT_ADDR.parse().expect("a valid default address"),
            control: false,
        }
    }
}

/// The monitor's options on the kernel builder.
pub trait MonitorBuilderExt: Sized {
    /// Turns the monitor on (at [`DEFAULT_ADDR`] unless [`monitor_addr`](Self::monitor_addr)
    /// says otherwise) or leaves it off.
    fn monitor(self, on: bool) -> Self;
    /// Turns the monitor on at `addr` (`127.0.0.1:0` picks a free port; see [`local_addr`]).
    fn monitor_addr(self, addr: SocketAddr) -> Self;
    /// Allows the `cancel` and `signal` commands (off by default: they change the program).
    fn monitor_control(self, on: bool) -> Self;
    /// Turns the monitor on if the `CURIOMONITOR` environment variable is set (Curio's
    /// convention); a value of the form `host:port` is the address.
    fn monitor_from_env(self) -> Self;
}

impl MonitorBuilderExt for KernelBuilder {
    fn monitor(mut self, on: bool) -> Self {
        if on {
            let config = self
                .extensions_mut()
                .get::<MonitorConfig>()
                .cloned()
                .unwrap_or_default();
            self.monitor_with(config)
        } else {
            self
        }
    }

    fn monitor_addr(self, addr: SocketAddr) -> Self {
        self.monitor_with(MonitorConfig {
            addr,
            ..MonitorConfig::default()
        })
    }

    fn monitor_control(mut self, on: bool) -> Self {
        let ext = self.extensions_mut();
        ext.get_or_default_mut::<MonitorConfig>().control = on;
        if let Some(Installed(shared)) = ext.get::<Installed>() {
            shared.control.store(on, Ordering::Relaxed);
        }
        self
    }

    fn monitor_from_env(self) -> Self {
        match std::env::var("CURIOMONITOR") {
            Ok(v) => match v.trim().parse::<SocketAddr>() {
                Ok(addr) => self.monitor_addr(addr),
                Err(_) => self.monitor(true),
            },
            Err(_) => self,
        }
    }
}

/// Installs the hook once per builder, or moves its address.
trait MonitorWith {
    fn monitor_with(self, config: MonitorConfig) -> Self;
}

impl MonitorWith for KernelBuilder {
    fn monitor_with(mut self, config: MonitorConfig) -> Self {
        let ext = self.extensions_mut();
        let control = ext.get::<MonitorConfig>().is_some_and(|c| c.control) || config.control;
        ext.insert(MonitorConfig {
            addr: config.addr,
            control,
        });
        if let Some(Installed(shared)) = ext.get::<Installed>() {
            *shared.addr.lock().unwrap_or_else(|e| e.into_inner()) = config.addr;
            return self;
        }
        let shared = Arc::new(Shared {
            control: AtomicBool::new(control),
            addr: Mutex::new(config.addr),
            table: Mutex::new(Table::default()),
        });
        ext.insert(Installed(shared.clone()));
        self.activation(Hook { shared })
    }
}

/// Marks a builder whose monitor hook is installed, with what the hook shares.
#[derive(Clone)]
struct Installed(Arc<Shared>);

/// One task as the monitor shows it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) id: TaskId,
    pub(crate) name: String,
    pub(crate) parent: Option<u64>,
    pub(crate) state: &'static str,
    pub(crate) cycles: u64,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) wait: Option<WaitSite>,
}

/// A kernel's table: its tasks by id, and the handle that reaches it.
#[derive(Default)]
pub(crate) struct Table {
    pub(crate) kernel: Option<KernelHandle>,
    pub(crate) tasks: BTreeMap<u64, Row>,
}

/// What a kernel's hook and the server share.
pub(crate) struct Shared {
    pub(crate) control: AtomicBool,
    /// Where the server listens, if this kernel is the one that starts it.
    addr: Mutex<SocketAddr>,
    pub(crate) table: Mutex<Table>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The kernel side: mirrors each scheduling event into the kernel's table.
struct Hook {
    shared: Arc<Shared>,
}

/// Curio's name for what a task waits on.
pub(crate) fn state_name(state: &'static str, wait: Option<WaitSite>) -> &'static str {
    if state != "SUSPENDED" {
        return state;
    }
    match wait.map(|w| w.kind) {
        Some(WaitKind::Sleep) => "TIME_SLEEP",
        Some(WaitKind::Yield) => "READY",
        Some(WaitKind::Join | WaitKind::Terminate | WaitKind::Group) => "TASK_JOIN",
        Some(WaitKind::QueueGet) => "QUEUE_GET",
        Some(WaitKind::QueuePut) => "QUEUE_PUT",
        Some(WaitKind::QueueJoin) => "QUEUE_JOIN",
        Some(WaitKind::Lock) => "LOCK_ACQUIRE",
        Some(WaitKind::Semaphore) => "SEMA_ACQUIRE",
        Some(WaitKind::Event) => "EVENT_WAIT",
        Some(WaitKind::Condition) => "COND_WAIT",
        Some(WaitKind::Promise) => "RESULT_WAIT",
        Some(WaitKind::Read) => "READ_WAIT",
        Some(WaitKind::Write) => "WRITE_WAIT",
        Some(WaitKind::External) => "FUTURE_WAIT",
        _ => "SUSPENDED",
    }
}

impl Hook {
    fn update(&self, t: &TaskInfo<'_>) {
        let mut table = self.shared.lock();
        if let Some(row) = table.tasks.get_mut(&t.id().as_u64()) {
            row.wait = t.wait_site();
            row.state = state_name(t.state(), row.wait);
            row.cycles = t.cycles();
        }
    }
}

impl Activation for Hook {
    fn activate(&self) {
        self.shared.lock().kernel = curio_kernel::try_handle();
        let addr = *self.shared.addr.lock().unwrap_or_else(|e| e.into_inner());
        server::register(addr, &self.shared);
    }

    fn created(&self, t: &TaskInfo<'_>) {
        let row = Row {
            id: t.id(),
            name: t.name().to_owned(),
            parent: t.parent_id().map(TaskId::as_u64),
            state: "INITIAL",
            cycles: 0,
            spawned_at: t.location(),
            wait: None,
        };
        self.shared.lock().tasks.insert(t.id().as_u64(), row);
    }

    fn running(&self, t: &TaskInfo<'_>) {
        self.update(t);
    }

    fn suspended(&self, t: &TaskInfo<'_>) {
        self.update(t);
    }

    fn terminated(&self, t: &TaskInfo<'_>, _: Ended<'_>) {
        self.shared.lock().tasks.remove(&t.id().as_u64());
    }
}
