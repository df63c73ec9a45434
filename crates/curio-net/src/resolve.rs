//! Name resolution, run on the kernel's worker threads so a slow resolver never blocks the kernel.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `host` and `port` to socket addresses, on a worker thread (Curio's `getaddrinfo`).
///
/// # Errors
///
/// When the name cannot be resolved, or resolves to nothing.
///
/// # Cancel safety
///
/// Cancel safe: a dropped lookup finishes on its thread and its result is dropped.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod net { pub use curio_net::*; } }
/// curio::run(async {
///     let addrs = curio::net::getaddrinfo("localhost", 80).await.unwrap();
///     assert!(addrs.iter().any(|a| a.ip().is_loopback()));
/// });
/// ```
pub async fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let host = host.to_owned();
    let addrs: Vec<SocketAddr> = curio_workers::run_in_thread(move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(|i| i.collect::<Vec<_>>())
    })
    .await?;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the name resolved to no address",
        ));
    }
    Ok(addrs)
}

/// The host name of this machine (Curio's `gethostname`).
///
/// # Examples
///
/// ```
/// # mod curio { pub mod net { pub use curio_net::*; } }
/// assert!(!curio::net::gethostname().is_empty());
/// ```
pub fn gethostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The host name and service name of `addr`, looked up on a worker thread (Curio's
/// `getnameinfo`). Names that cannot be found come back as numbers.
///
/// # Errors
///
/// When the lookup fails.
///
/// # Cancel safety
///
/// Cancel safe.
///
/// # Examples
///
/// ```
/// # mod curio { pub use curio_kernel::run; pub mod net { pub use curio_net::*; } }
/// curio::run(async {
///     let (host, _service) =
///         curio::net::getnameinfo("127.0.0.1:80".parse().unwrap()).await.unwrap();
///     assert!(!host.is_empty());
/// });
/// ```
pub async fn getnameinfo(addr: SocketAddr) -> io::Result<(String, String)> {
    curio_workers::run_in_thread(move || sys::lookup(addr)).await
}

#[allow(
    unsafe_code,
    reason = "getnameinfo has no safe binding in std or rustix"
)]
mod sys {
    //! # Safety
    //!
    //! One FFI call to the C library's `getnameinfo`, which std already links: the address is
    //! passed by rustix's `with_sockaddr` (valid for the call) and the output buffers are local
    //! arrays whose real lengths are passed along.

    use std::ffi::{CStr, c_char, c_int, c_void};
    use std::io;
    use std::net::SocketAddr;

    use rustix::net::addr::SocketAddrArg;

    unsafe extern "C" {
        fn getnameinfo(
            sa: *const c_void,
            salen: u32,
            host: *mut c_char,
            hostlen: u32,
            serv: *mut c_char,
            servlen: u32,
            flags: c_int,
        ) -> c_int;
    }

    pub(super) fn lookup(addr: SocketAddr) -> io::Result<(String, String)> {
        let mut host = [0 as c_char; 1025];
        let mut serv = [0 as c_char; 32];
        // SAFETY: `with_sockaddr` hands a pointer and length valid for the closure's duration;
        // the buffers are live locals with the lengths given; getnameinfo NUL-terminates them.
        let rc = unsafe {
            addr.with_sockaddr(|ptr, len| {
                getnameinfo(
                    ptr.cast(),
                    len,
                    host.as_mut_ptr(),
                    host.len() as u32,
                    serv.as_mut_ptr(),
                    serv.len() as u32,
                    0,
                )
            })
        };
        if rc != 0 {
            return Err(io::Error::other(format!(
                "getnameinfo failed with code {rc}"
            )));
        }
        // SAFETY: on success both buffers hold NUL-terminated strings.
        let (h, s) = unsafe { (CStr::from_ptr(host.as_ptr()), CStr::from_ptr(serv.as_ptr())) };
        Ok((
            h.to_string_lossy().into_owned(),
            s.to_string_lossy().into_owned(),
        ))
    }
}
