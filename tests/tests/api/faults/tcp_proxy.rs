//! A TCP proxy that injects network faults between a client and a server on loopback:
//! latency, resets, and answers cut off after the server has done the work.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::VecDeque;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the proxy does to the traffic passing through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes pass unchanged.
    Pass,
    /// Every byte is delivered this much later than it arrived, in each direction (a
    /// delay line: a request/answer round trip takes twice this long).
    Latency(Duration),
    /// Connections are reset: new ones when accepted, open ones at their next byte.
    Reset,
    /// Requests reach the server, but the connection is reset when its answer comes back:
    /// the server did the work and the client cannot know.
    CutAnswers,
    /// The next this many requests (a client's bytes, on any connection) are met with a
    /// reset before they reach the server; then bytes pass again.
    ResetRequests(u32),
}

struct Shared {
    fault: Mutex<Fault>,
    target: SocketAddr,
    /// Requests [`Fault::ResetRequests`] reset.
    reset_requests: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a client's bytes are to be met with a reset: takes one of
    /// [`Fault::ResetRequests`]' resets.
    fn take_reset(&self) -> bool {
        let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        match *fault {
            Fault::Reset => true,
            Fault::ResetRequests(left) if left > 0 => {
                *fault = Fault::ResetRequests(left - 1);
                self.reset_requests
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }
}

/// Listens on a free loopback port and relays to `target`, with the current [`Fault`].
/// Dropping it stops the listener and every relayed connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let shared = Arc::new(Shared {
            fault: Mutex::new(Fault::Pass),
            target,
            reset_requests: std::sync::atomic::AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        FaultProxy { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// The requests [`Fault::ResetRequests`] has reset so far.
    pub fn reset_requests(&self) -> usize {
        self.shared
            .reset_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every relay.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                relays.spawn(relay(client, Arc::clone(&shared)));
            }
            // Reap finished relays so the set does not grow.
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
        }
    }
}

/// Ends a connection with a TCP reset rather than an orderly close.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

enum Ending {
    Closed,
    Reset,
}

async fn relay(mut client: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    if shared.fault() == Fault::Reset {
        return reset(client);
    }
    let Ok(mut server) = TcpStream::connect(shared.target).await else {
        return reset(client);
    };
    let _ = server.set_nodelay(true);
    match pump(&mut client, &mut server, &shared).await {
        Ending::Closed => {}
        Ending::Reset => {
            reset(client);
            reset(server);
        }
    }
}

/// Moves bytes both ways through two delay lines until both sides have closed, an I/O
/// error occurs, or the fault calls for a reset.
async fn pump(client: &mut TcpStream, server: &mut TcpStream, shared: &Shared) -> Ending {
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut to_server: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut to_client: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let (mut client_done, mut server_done) = (false, false);
    let (mut server_shut, mut client_shut) = (false, false);
    let mut client_buf = vec![0u8; 64 * 1024];
    let mut server_buf = vec![0u8; 64 * 1024];
    loop {
        if client_done && to_server.is_empty() && !server_shut {
            let _ = server_write.shutdown().await;
            server_shut = true;
        }
        if server_done && to_client.is_empty() && !client_shut {
            let _ = client_write.shutdown().await;
            client_shut = true;
        }
        if server_shut && client_shut {
            return Ending::Closed;
        }
        let next_to_server = to_server.front().map(|(due, _)| *due);
        let next_to_client = to_client.front().map(|(due, _)| *due);
        tokio::select! {
            read = client_read.read(&mut client_buf), if !client_done => match read {
                Ok(0) => client_done = true,
                Ok(_) if shared.take_reset() => return Ending::Reset,
                Ok(n) => to_server.push_back((
                    Instant::now() + delay(shared.fault()),
                    client_buf[..n].to_vec(),
                )),
                Err(_) => return Ending::Reset,
            },
            read = server_read.read(&mut server_buf), if !server_done => match read {
                Ok(0) => server_done = true,
                Ok(n) => match shared.fault() {
                    Fault::Reset | Fault::CutAnswers => return Ending::Reset,
                    fault => to_client.push_back((
                        Instant::now() + delay(fault),
                        server_buf[..n].to_vec(),
                    )),
                },
                Err(_) => return Ending::Reset,
            },
            _ = sleep_until(next_to_server), if next_to_server.is_some() => {
                if let Some((_, bytes)) = to_server.pop_front() {
                    if server_write.write_all(&bytes).await.is_err() {
                        return Ending::Reset;
                    }
                }
            },
            _ = sleep_until(next_to_client), if next_to_client.is_some() => {
                if let Some((_, bytes)) = to_client.pop_front() {
                    if client_write.write_all(&bytes).await.is_err() {
                        return Ending::Reset;
                    }
                }
            },
        }
    }
}

fn delay(fault: Fault) -> Duration {
    match fault {
        Fault::Latency(d) => d,
        _ => Duration::ZERO,
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}
