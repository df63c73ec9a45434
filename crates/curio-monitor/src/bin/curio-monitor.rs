//! `curio-monitor [-H host] [-p port]`: connects to a curio program's monitor and passes lines
//! typed on standard input to it, printing what it answers, until it closes the connection.

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

use curio_monitor::DEFAULT_ADDR;

fn usage() -> ExitCode {
    eprintln!("usage: curio-monitor [-H host] [-p port]   (default {DEFAULT_ADDR})");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let default: std::net::SocketAddr = DEFAULT_ADDR.parse().expect("a valid default address");
    let mut host = default.ip().to_string();
    let mut port = default.port();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("-H", Some(h)) => host = h,
            ("-p", Some(p)) => match p.parse() {
                Ok(p) => port = p,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let stream = match TcpStream::connect((host.as_str(), port)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("curio-monitor: cannot connect to {host}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut from_server = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("curio-monitor: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The server's output goes to the terminal as it comes; when it closes, the session ends.
    let printer = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut out = io::stdout();
        loop {
            match from_server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut to_server = stream;
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if writeln!(to_server, "{line}").is_err() {
            break;
        }
        if printer.is_finished() {
            break;
        }
    }
    let _ = to_server.shutdown(std::net::Shutdown::Write);
    let _ = printer.join();
    ExitCode::SUCCESS
}
