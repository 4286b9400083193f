//! A RESP2 connection to `redis-server`: enough to send command arrays and read any
//! reply, including what a subscribed connection is pushed. The wire format is
//! `redis-protocol`'s codec; this file only pairs it with a TCP stream.

use std::io;

use bytes::Bytes;
use futures::{SinkExt, StreamExt as _};
use redis_protocol::codec::Resp2;
use redis_protocol::error::{RedisProtocolError, RedisProtocolErrorKind};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A Redis reply (or a command, which is an array of bulk strings).
pub use redis_protocol::resp2::types::BytesFrame as Frame;

/// One connection to Redis.
pub struct Connection {
    framed: Framed<TcpStream, Resp2>,
}

impl Connection {
    pub async fn connect(addr: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            framed: Framed::new(stream, Resp2::default()),
        })
    }

    /// Sends all `commands` in one write, then reads exactly one reply per command.
    pub async fn run(&mut self, commands: Vec<Vec<Vec<u8>>>) -> io::Result<Vec<Frame>> {
        let count = commands.len();
        self.send(commands).await?;
        let mut replies = Vec::with_capacity(count);
        while replies.len() < count {
            replies.push(self.next_reply().await?);
        }
        Ok(replies)
    }

    /// Sends all `commands` in one write without reading anything: a subscribed
    /// connection reads its confirmations, messages and pongs with [`Self::next_reply`].
    pub async fn send(&mut self, commands: Vec<Vec<Vec<u8>>>) -> io::Result<()> {
        for command in commands {
            self.framed
                .feed(command_frame(command))
                .await
                .map_err(invalid)?;
        }
        SinkExt::<Frame>::flush(&mut self.framed)
            .await
            .map_err(invalid)
    }

    /// The next reply (or pushed message) on the connection, waiting for it.
    pub async fn next_reply(&mut self) -> io::Result<Frame> {
        match self.framed.next().await {
            Some(reply) => reply.map_err(invalid),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "redis closed the connection",
            )),
        }
    }
}

/// A command as Redis reads it: an array of binary-safe bulk strings.
pub fn command_frame(command: Vec<Vec<u8>>) -> Frame {
    Frame::Array(
        command
            .into_iter()
            .map(|arg| Frame::BulkString(Bytes::from(arg)))
            .collect(),
    )
}

/// The codec's errors as the I/O error callers handle, keeping an I/O failure's kind.
fn invalid(err: RedisProtocolError) -> io::Error {
    let kind = match err.kind() {
        RedisProtocolErrorKind::IO(io) => io.kind(),
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, err.to_string())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use tokio_util::codec::{Decoder as _, Encoder as _};

    use super::*;

    #[test]
    fn reads_every_reply_type_and_waits_for_more_bytes() {
        let wire = b"*5\r\n+OK\r\n-ERR bad\r\n:42\r\n$3\r\nabc\r\n$-1\r\n";
        let expected = Frame::Array(vec![
            Frame::SimpleString(Bytes::from_static(b"OK")),
            Frame::Error("ERR bad".into()),
            Frame::Integer(42),
            Frame::BulkString(Bytes::from_static(b"abc")),
            Frame::Null,
        ]);
        let mut whole = BytesMut::from(&wire[..]);
        assert_eq!(Resp2::default().decode(&mut whole).unwrap(), Some(expected));
        assert!(whole.is_empty(), "the whole reply is consumed");
        for cut in 0..wire.len() {
            let mut part = BytesMut::from(&wire[..cut]);
            assert_eq!(
                Resp2::default().decode(&mut part).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        assert!(Resp2::default()
            .decode(&mut BytesMut::from(&b"?x\r\n"[..]))
            .is_err());
    }

    #[test]
    fn sends_commands_as_binary_safe_bulk_strings() {
        let mut out = BytesMut::new();
        let command = vec![b"SET".to_vec(), b"k".to_vec(), b"a\r\nb".to_vec()];
        Resp2::default()
            .encode(command_frame(command), &mut out)
            .unwrap();
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
    }
}
