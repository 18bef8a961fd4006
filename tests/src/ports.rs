//! A loopback port where nothing listens, kept reserved while the test needs it.

use std::net::SocketAddr;

use tokio::net::TcpSocket;

/// A socket bound to a free loopback port and never listening: connections to the port are
/// refused. Unlike a listener bound and dropped, it keeps the port, so no other test running
/// at the same time can be handed it and answer in its place.
#[derive(Debug)]
pub struct RefusingPort {
    _socket: TcpSocket,
    /// The refused address.
    pub addr: SocketAddr,
}

impl RefusingPort {
    pub fn new() -> std::io::Result<RefusingPort> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = socket.local_addr()?;
        Ok(RefusingPort {
            _socket: socket,
            addr,
        })
    }

    /// `http://<addr>`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
