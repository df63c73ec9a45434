//! The process-wide server: one listener thread, one thread per client, and the kernels'
//! tables it reads.

use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::Shared;
use crate::protocol::{self, Command, LINE_LIMIT};

/// The server: the address it listens on (or why it could not), and the kernels it shows.
struct Server {
    addr: io::Result<SocketAddr>,
    kernels: Mutex<Vec<Weak<Shared>>>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// Registers a kernel's table with the process-wide server, starting the server at `addr` if
/// this is the first kernel with the monitor on.
pub(crate) fn register(addr: SocketAddr, shared: &Arc<Shared>) {
    let server = SERVER.get_or_init(|| Server {
        addr: start(addr),
        kernels: Mutex::new(Vec::new()),
    });
    if let Err(e) = &server.addr {
        eprintln!("curio: the monitor could not listen on {addr}: {e}");
    }
    let mut kernels = server.kernels.lock().unwrap_or_else(|e| e.into_inner());
    kernels.retain(|k| k.strong_count() > 0);
    kernels.push(Arc::downgrade(shared));
}

/// The address the monitor listens on, once a kernel with the monitor on has run; `None`
/// before, or if it could not listen.
pub fn local_addr() -> Option<SocketAddr> {
    SERVER.get().and_then(|s| s.addr.as_ref().ok().copied())
}

fn start(addr: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("curio-monitor".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        let _ = std::thread::Builder::new()
                            .name("curio-monitor-client".into())
                            .spawn(move || {
                                let _ = serve(stream);
                            });
                    }
                    // A failed accept (descriptors ran out) leaves the monitor for the next one.
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
                }
            }
        })?;
    Ok(local)
}

/// The live kernels' tables.
fn kernels() -> Vec<Arc<Shared>> {
    SERVER.get().map_or_else(Vec::new, |s| {
        let mut k = s.kernels.lock().unwrap_or_else(|e| e.into_inner());
        k.retain(|k| k.strong_count() > 0);
        k.iter().filter_map(Weak::upgrade).collect()
    })
}

/// Serves one client until it quits or goes away.
fn serve(stream: TcpStream) -> io::Result<()> {
    let mut reader = stream.try_clone()?;
    let mut out = BufWriter::new(stream);
    let tables = kernels();
    let n: usize = tables.iter().map(|t| t.lock().tasks.len()).sum();
    write!(
        out,
        "\nCurio Monitor: {n} tasks running\nType help for commands\ncurio > "
    )?;
    out.flush()?;
    let mut line = Vec::new();
    let mut overlong = false;
    let mut buf = [0u8; 4096];
    loop {
        let got = reader.read(&mut buf)?;
        if got == 0 {
            return Ok(());
        }
        for &b in &buf[..got] {
            if b != b'\n' {
                // A line over the limit is refused without being kept.
                if line.len() < LINE_LIMIT {
                    line.push(b);
                } else {
                    overlong = true;
                }
                continue;
            }
            let text = String::from_utf8_lossy(&line).trim().to_owned();
            line.clear();
            let reply = if std::mem::take(&mut overlong) {
                protocol::Reply::Text(format!(
                    "Bad command. Line longer than {LINE_LIMIT} bytes\n"
                ))
            } else {
                protocol::run(Command::parse(&text), &kernels())
            };
            match reply {
                protocol::Reply::Text(t) => write!(out, "{t}curio > ")?,
                protocol::Reply::Quit => {
                    writeln!(out, "Leaving monitor.")?;
                    out.flush()?;
                    return Ok(());
                }
            }
            out.flush()?;
        }
    }
}
