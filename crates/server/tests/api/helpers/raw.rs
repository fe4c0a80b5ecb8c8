//! HTTP/1.1 over a bare socket, for what a client library will not send: a missing or doubled
//! `Host`, broken framing, a body announced but never sent.

use super::reply::Reply;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` and reads one response. The request should ask for `Connection: close`
/// or be one the server closes the connection after.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before all of a large request is written.
    let _ = stream.write_all(request).await;
    read_reply(&mut stream).await
}

/// Reads one response: its head, then as many body bytes as its `content-length` says, or
/// everything until the connection closes. A body that never comes fails the test in 10 s.
pub async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    let read = async {
        let mut chunk = [0; 8192];
        loop {
            if let Some(reply) = parse(&bytes, false) {
                return reply;
            }
            match stream.read(&mut chunk).await {
                // A reset after the answer is not an error of the exchange.
                Ok(0) | Err(_) => {
                    return parse(&bytes, true).unwrap_or_else(|| {
                        panic!(
                            "not an HTTP response: {:?}",
                            String::from_utf8_lossy(&bytes)
                        )
                    });
                }
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server answers within 10 s")
}

/// The response at the start of `bytes`, once it is complete (or `closed`: all there is).
fn parse(bytes: &[u8], closed: bool) -> Option<Reply> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.get(9..12)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let body = &bytes[end + 4..];
    let length = match headers.get(CONTENT_LENGTH) {
        Some(length) => length.to_str().ok()?.parse().ok()?,
        None if closed => body.len(),
        None => return None,
    };
    Some(Reply {
        status: StatusCode::from_u16(status).ok()?,
        headers,
        body: body.get(..length)?.to_vec().into(),
    })
}
