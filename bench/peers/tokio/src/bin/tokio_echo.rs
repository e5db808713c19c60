//! Tokio peer of bench/echo/echo_server.cpp (streams): `tokio_echo <port>`
//! serves TCP echo on 127.0.0.1:<port> on a current_thread runtime, one task
//! per connection reading up to 64 KiB and writing all of it back
//! (TcpStream::read + write_all). TCP_NODELAY is set, as our transports and
//! CPython's do. Prints `ready <port>` once listening; runs until killed.

use std::io::Write;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn main() {
    let port: u16 = match std::env::args().nth(1).and_then(|s| s.parse().ok()) {
        Some(p) => p,
        None => {
            eprintln!("usage: tokio_echo <port>");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build the Tokio runtime");
    rt.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tokio_echo: bind 127.0.0.1:{}: {}", port, e);
                std::process::exit(1);
            }
        };
        println!("ready {}", listener.local_addr().map(|a| a.port()).unwrap_or(port));
        let _ = std::io::stdout().flush();
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(echo(stream));
                }
                Err(e) => eprintln!("tokio_echo: accept: {}", e),
            }
        }
    });
}
