//! Problem+json bodies for the requests hyper rejects before the application sees them.
//!
//! When hyper cannot parse a request head it answers by itself and closes the connection:
//! the router never runs, so `ApiError` never renders. hyper (1.x, `proto/h1/role.rs`,
//! `Server::on_error`) picks the status from the parse error — `400` for a bad method, URI,
//! version or header (two different `Content-Length`s, a control byte in a value), `414` for a
//! request target longer than 65534 bytes, `431` for more than 100 headers or a head that
//! outgrows the read buffer (`max_buf_size`, 417,792 bytes by default) — and writes a head
//! with no body and no content type. For an HTTP/1.1 (or not yet known) peer that is exactly
//!
//! ```text
//! HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 22:44:20 GMT\r\n\r\n
//! ```
//!
//! and after an earlier HTTP/1.0 request on the same connection, `HTTP/1.0 400 Bad Request`,
//! `content-length: 0` and `date` (no `connection` line). The `date` line is absent when
//! the builder turns the date header off; header names are title-cased when it asks for that.
//! That head is the last thing hyper writes on the connection: it flushes it and shuts down.
//!
//! hyper has no hook for this response, and the error kind reaches the caller of
//! `serve_connection` only after the bytes are on the wire. So the substitution happens one
//! layer down, in the connection's IO: [`ProblemIo`] passes every byte through untouched
//! except a write that ends with such a head, which it replaces by a complete
//! `application/problem+json` response (same status line, same `date`, `connection: close`,
//! a correct `content-length`), then tells hyper that its own head was written.
//!
//! The head is recognised by its shape alone, and the shape is narrow: status 400, 414 or 431,
//! `content-length: 0`, and no headers but `connection: close` and `date`. The application's
//! responses carry an `x-request-id` and its errors a problem body, so none of them matches
//! (and an empty 400 of its own, were there one, would get the body it should have had).
//! What could still match is a body written with a known length (not chunked: hyper follows
//! each chunk with its own CRLF) whose bytes *end* with such a head byte for byte; this API's
//! bodies are JSON, Swagger UI's assets and metrics text, which never do.
//!
//! The tests start real hyper servers to pin down what hyper writes: a hyper upgrade that
//! changes that head makes them fail instead of silently sending empty errors again.

use super::error::{ApiError, ErrorCode};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest head looked at. hyper's longest (a 431 with `connection` and `date`) is 123
/// bytes; this bounds the work done on a write that merely ends with an empty line.
const MAX_HEAD_LEN: usize = 256;

/// The connection's IO, with hyper's empty parse-error responses turned into problem+json.
///
/// Goes under `TokioIo`: `TokioIo::new(ProblemIo::new(stream))`. Reads, flushes and every
/// ordinary write go straight to the inner stream: the only work added to a write is
/// comparing its last four bytes with an empty line, plus a scan of at most
/// [`MAX_HEAD_LEN`] bytes when they match (a head written without its body). Nothing is
/// allocated or copied unless a head is replaced, and the wrapper is one pointer bigger than
/// the stream.
///
/// `is_write_vectored` is the inner stream's, so hyper keeps its vectored (queue) write
/// strategy for a `TcpStream` exactly as without the wrapper.
#[derive(Debug)]
pub struct ProblemIo<T> {
    inner: T,
    /// The substitute being written; `None` on the normal path. Boxed so the idle state costs
    /// one pointer per connection rather than the whole buffer.
    replacement: Option<Box<Replacement>>,
}

/// A problem response in the middle of being written in place of hyper's head.
#[derive(Debug)]
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    /// The length of hyper's head: what hyper is told was written once `bytes` are out.
    claimed: usize,
}

impl<T> ProblemIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            replacement: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes the rest of the substitute. Only when all of it is out does hyper hear that its
    /// head (`offered` bytes at most) was written: until then it gets `Pending` or the error,
    /// and comes back with the same head, which is not looked at again.
    fn poll_replacement(
        &mut self,
        cx: &mut Context<'_>,
        offered: usize,
    ) -> Poll<io::Result<usize>> {
        let Self { inner, replacement } = self;
        let Some(current) = replacement.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while current.written < current.bytes.len() {
            let n =
                ready!(Pin::new(&mut *inner).poll_write(cx, &current.bytes[current.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            current.written += n;
        }
        let claimed = current.claimed.min(offered);
        *replacement = None;
        Poll::Ready(Ok(claimed))
    }

    /// Starts replacing `head`, which is all of the `len` bytes hyper offered.
    fn replace(
        &mut self,
        head: &ErrorHead<'_>,
        len: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        tracing::debug!(
            status = head.rejection.status(),
            "hyper rejected a request head; answering with a problem"
        );
        self.replacement = Some(Box::new(Replacement {
            bytes: head.problem_response(),
            written: 0,
            claimed: len,
        }));
        self.poll_replacement(cx, len)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            return this.poll_replacement(cx, buf.len());
        }
        match find_error_head(buf) {
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
            // The end of an earlier response still queued in the same buffer (pipelining under
            // back-pressure): let it out first; hyper calls again with what is left.
            Some(head) if head.start > 0 => {
                Pin::new(&mut this.inner).poll_write(cx, &buf[..head.start])
            }
            Some(head) => this.replace(&head, buf.len(), cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            let offered = bufs.iter().map(|buf| buf.len()).sum();
            return this.poll_replacement(cx, offered);
        }
        // hyper encodes a head into one contiguous buffer, and the error head is the last
        // thing it writes, so only the last non-empty slice can end with it. On the normal
        // path that slice is a body chunk, or a head followed by its body, and this is a
        // four-byte comparison.
        let Some(last) = bufs.iter().rposition(|buf| !buf.is_empty()) else {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        };
        let Some(head) = find_error_head(&bufs[last]) else {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        };
        if bufs[..last].iter().any(|buf| !buf.is_empty()) {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, &bufs[..last]);
        }
        if head.start > 0 {
            return Pin::new(&mut this.inner).poll_write(cx, &bufs[last][..head.start]);
        }
        this.replace(&head, bufs[last].len(), cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // hyper flushes its buffer before shutting down, so this finds nothing to finish;
        // if it ever did, a half-written substitute must not be cut off.
        if this.replacement.is_some() {
            ready!(this.poll_replacement(cx, usize::MAX))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The statuses hyper answers a request head it cannot parse with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    BadRequest,
    UriTooLong,
    HeadersTooLarge,
}

impl Rejection {
    fn from_code(code: &[u8]) -> Option<Self> {
        match code {
            b"400" => Some(Self::BadRequest),
            b"414" => Some(Self::UriTooLong),
            b"431" => Some(Self::HeadersTooLarge),
            _ => None,
        }
    }

    fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
        }
    }

    /// The problem body, rendered like every other error of the API.
    fn problem(self) -> Vec<u8> {
        let error = match self {
            Self::BadRequest => {
                ApiError::invalid_request("the request line or headers are not valid HTTP/1.1")
            }
            Self::UriTooLong => ErrorCode::UriTooLong.into(),
            Self::HeadersTooLarge => ErrorCode::HeadersTooLarge.into(),
        };
        serde_json::to_vec(&error.problem()).expect("a problem serialises")
    }
}

/// An error head found at the end of a buffer.
#[derive(Debug)]
struct ErrorHead<'a> {
    /// Where the head starts in the buffer; it runs to the end.
    start: usize,
    /// hyper's status line, without its line end: its version and reason are kept.
    status_line: &'a [u8],
    date: Option<&'a [u8]>,
    rejection: Rejection,
}

impl ErrorHead<'_> {
    fn problem_response(&self) -> Vec<u8> {
        let body = self.rejection.problem();
        let length = body.len().to_string();
        let mut out = Vec::with_capacity(self.status_line.len() + body.len() + 160);
        out.extend_from_slice(self.status_line);
        out.extend_from_slice(b"\r\ncontent-type: application/problem+json\r\ncontent-length: ");
        out.extend_from_slice(length.as_bytes());
        out.extend_from_slice(b"\r\nconnection: close\r\n");
        if let Some(date) = self.date {
            out.extend_from_slice(b"date: ");
            out.extend_from_slice(date);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }
}

/// Finds a head of hyper's parse-error shape that ends `buf`: `HTTP/1.0` or `HTTP/1.1`,
/// status 400, 414 or 431, `content-length: 0`, optionally `connection: close` and `date`,
/// in any order and letter case, and nothing after the empty line.
fn find_error_head(buf: &[u8]) -> Option<ErrorHead<'_>> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let floor = buf.len().saturating_sub(MAX_HEAD_LEN);
    // The last status line: no line of an error head but the first holds `HTTP/1.`. It need
    // not start a line of the buffer, since it may follow the end of a body.
    let start = (floor..buf.len() - 4)
        .rev()
        .find(|&i| buf[i..].starts_with(b"HTTP/1."))?;
    parse_error_head(&buf[start..]).map(|head| ErrorHead { start, ..head })
}

fn parse_error_head(head: &[u8]) -> Option<ErrorHead<'_>> {
    let (status_line, mut rest) = split_line(head)?;
    let after_version = status_line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix(b"HTTP/1.0 "))?;
    let (code, reason) = after_version.split_at_checked(3)?;
    let rejection = Rejection::from_code(code)?;
    if !reason.starts_with(b" ") {
        return None;
    }
    let (mut length, mut connection, mut date) = (false, false, None);
    loop {
        let (line, after) = split_line(rest)?;
        rest = after;
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii_start();
        if name.eq_ignore_ascii_case(b"content-length") && value == b"0" && !length {
            length = true;
        } else if name.eq_ignore_ascii_case(b"connection")
            && value.eq_ignore_ascii_case(b"close")
            && !connection
        {
            connection = true;
        } else if name.eq_ignore_ascii_case(b"date")
            && date.is_none()
            && value.iter().all(|&b| b == b' ' || b.is_ascii_graphic())
        {
            date = Some(value);
        } else {
            return None;
        }
    }
    (length && rest.is_empty()).then_some(ErrorHead {
        start: 0,
        status_line,
        date,
        rejection,
    })
}

/// The line at the start of `buf` without its CRLF, and what follows it.
fn split_line(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = buf[..end].strip_suffix(b"\r")?;
    if line.contains(&b'\r') {
        return None;
    }
    Some((line, &buf[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use hyper::body::Frame;
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    // ---- a real server, set up as `serve.rs` sets it up ----

    const APP_PROBLEM: &str = concat!(
        r#"{"type":"about:blank","title":"Bad Request","status":400,"#,
        r#""detail":"amount must be positive","code":"INVALID_AMOUNT"}"#
    );
    const NOT_FOUND: &str = concat!(
        r#"{"type":"about:blank","title":"Not Found","status":404,"#,
        r#""detail":"no such resource","code":"NOT_FOUND"}"#
    );

    /// Chunks of the streamed responses: some end with an empty line, one is byte for byte
    /// the head hyper writes for a parse error (harmless inside chunked framing, which
    /// always follows a chunk with its own CRLF).
    const STREAM_CHUNKS: &[&str] = &[
        "first\r\n\r\n",
        "{\"a\":1}",
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
        "\r\n\r\n",
        "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        "last",
    ];

    /// The chunks sent with a known length: all but the 400 head, since a sized body ending
    /// with one is the single case the wrapper mistakes (see the module docs).
    fn sized_chunks() -> Vec<&'static str> {
        STREAM_CHUNKS
            .iter()
            .copied()
            .filter(|c| !c.contains(" 400 "))
            .collect()
    }

    /// A body of `chunks` that makes hyper wait (`Pending`) before each, so hyper writes and
    /// flushes every chunk on its own.
    struct Streamed {
        chunks: std::vec::IntoIter<&'static str>,
        ready: bool,
    }

    impl hyper::body::Body for Streamed {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            self.ready = !self.ready;
            if !self.ready {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let chunk = self.chunks.next();
            Poll::Ready(chunk.map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))))
        }
    }

    fn streamed(chunks: Vec<&'static str>) -> Body {
        Body::new(Streamed {
            chunks: chunks.into_iter(),
            ready: false,
        })
    }

    fn problem(status: StatusCode, body: &'static str) -> Response {
        let content_type = [(header::CONTENT_TYPE, "application/problem+json")];
        (status, content_type, body).into_response()
    }

    fn router() -> Router {
        Router::new()
            .route("/ok", get(|| async { "hello" }))
            .route(
                "/bad",
                get(|| async { problem(StatusCode::BAD_REQUEST, APP_PROBLEM) }),
            )
            .route("/nothing", get(|| async { StatusCode::NO_CONTENT }))
            .route(
                "/stream",
                get(|| async { streamed(STREAM_CHUNKS.to_vec()) }),
            )
            .route(
                "/stream-sized",
                get(|| async {
                    let length: usize = sized_chunks().iter().map(|c| c.len()).sum();
                    let mut response = streamed(sized_chunks()).into_response();
                    let headers = response.headers_mut();
                    headers.insert(header::CONTENT_LENGTH, length.into());
                    response
                }),
            )
            .fallback(|| async { problem(StatusCode::NOT_FOUND, NOT_FOUND) })
    }

    /// Serves the router on a fresh port, as `serve.rs` does, with or without the wrapper.
    async fn start(wrapped: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = router();
        tokio::spawn(async move {
            let graceful = GracefulShutdown::new();
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5));
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                if wrapped {
                    let connection = graceful.watch(
                        http.serve_connection(TokioIo::new(ProblemIo::new(stream)), service),
                    );
                    tokio::spawn(connection);
                } else {
                    let connection =
                        graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(connection);
                }
            }
        });
        address
    }

    // ---- a raw client ----

    /// Sends `request` and reads until the server closes the connection. Writing and reading
    /// run together: hyper may answer (and close) before it has read everything.
    async fn exchange(address: SocketAddr, request: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let (mut reader, mut writer) = stream.split();
        let write = async {
            let _ = writer.write_all(request).await;
        };
        let read = async {
            let mut out = Vec::new();
            let _ = reader.read_to_end(&mut out).await;
            out
        };
        let ((), out) =
            tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(write, read) })
                .await
                .expect("the server neither answered nor closed the connection");
        out
    }

    #[derive(Debug)]
    struct Parsed {
        status_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Parsed {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Splits a byte stream into the responses in it (sized, chunked, or without a body).
    fn parse_responses(mut bytes: &[u8]) -> Vec<Parsed> {
        let mut responses = Vec::new();
        while !bytes.is_empty() {
            let end = bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("an incomplete head")
                + 4;
            let head = std::str::from_utf8(&bytes[..end]).unwrap();
            bytes = &bytes[end..];
            let mut lines = head.split("\r\n").filter(|line| !line.is_empty());
            let status_line = lines.next().unwrap().to_owned();
            let headers: Vec<(String, String)> = lines
                .map(|line| {
                    let (name, value) = line.split_once(": ").unwrap();
                    (name.to_owned(), value.to_owned())
                })
                .collect();
            let mut parsed = Parsed {
                status_line,
                headers,
                body: Vec::new(),
            };
            if parsed.header("transfer-encoding") == Some("chunked") {
                loop {
                    let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
                    let size =
                        usize::from_str_radix(std::str::from_utf8(&bytes[..line_end]).unwrap(), 16)
                            .unwrap();
                    bytes = &bytes[line_end + 2..];
                    parsed.body.extend_from_slice(&bytes[..size]);
                    assert_eq!(&bytes[size..size + 2], b"\r\n");
                    bytes = &bytes[size + 2..];
                    if size == 0 {
                        break;
                    }
                }
            } else {
                let length: usize = parsed
                    .header("content-length")
                    .map_or(0, |v| v.parse().unwrap());
                parsed.body = bytes[..length].to_vec();
                bytes = &bytes[length..];
            }
            responses.push(parsed);
        }
        responses
    }

    /// The one response of a connection hyper closed, checked to be a complete problem.
    fn assert_problem(bytes: &[u8], status_line: &str, code: &str) -> serde_json::Value {
        let responses = parse_responses(bytes);
        assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(bytes));
        problem_of(&responses[0], status_line, code)
    }

    fn problem_of(response: &Parsed, status_line: &str, code: &str) -> serde_json::Value {
        assert_eq!(response.status_line, status_line);
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(
            response.header("content-length"),
            Some(response.body.len().to_string().as_str())
        );
        assert_eq!(response.header("connection"), Some("close"));
        assert_eq!(
            response.header("date").map(str::len),
            Some(29),
            "hyper's date is kept"
        );
        let problem: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        let status: u16 = status_line[9..12].parse().unwrap();
        assert_eq!(problem["type"], "about:blank");
        assert_eq!(problem["status"], status);
        assert_eq!(
            problem["title"],
            StatusCode::from_u16(status)
                .unwrap()
                .canonical_reason()
                .unwrap()
        );
        assert!(!problem["detail"].as_str().unwrap().is_empty());
        assert_eq!(problem["code"], code);
        problem
    }

    /// Replaces the value of every `date` header, the one part two runs can't share.
    fn without_dates(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        while let Some(at) = rest.windows(8).position(|w| w == b"\r\ndate: ") {
            out.extend_from_slice(&rest[..at + 8]);
            out.extend_from_slice(b"<date>");
            rest = &rest[at + 8 + 29..];
        }
        out.extend_from_slice(rest);
        out
    }

    // ---- what hyper writes on its own ----

    /// The premise: hyper alone answers these with an empty body, in exactly the shape the
    /// matcher expects. If a hyper upgrade changes that, this is the test that says so.
    #[tokio::test]
    async fn hyper_alone_answers_a_bad_head_with_an_empty_body() {
        let address = start(false).await;
        let cases: [(&[u8], &str); 3] = [
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
                "HTTP/1.1 400 Bad Request",
            ),
            (&uri_too_long_request(), "HTTP/1.1 414 URI Too Long"),
            (
                &too_many_headers_request(),
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
        ];
        for (request, status_line) in cases {
            let response = exchange(address, request).await;
            let expected = format!(
                "{status_line}\r\nconnection: close\r\ncontent-length: 0\r\ndate: <date>\r\n\r\n"
            );
            assert_eq!(
                String::from_utf8(without_dates(&response)).unwrap(),
                expected
            );
            let head = find_error_head(&response).expect("the matcher recognises hyper's head");
            assert_eq!(head.start, 0);
        }
    }

    // ---- the problems ----

    #[tokio::test]
    async fn two_different_content_lengths_get_a_400_problem() {
        let address = start(true).await;
        let response = exchange(
            address,
            b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        )
        .await;
        assert_problem(&response, "HTTP/1.1 400 Bad Request", "INVALID_REQUEST");
    }

    #[tokio::test]
    async fn a_control_byte_in_a_header_value_gets_a_400_problem() {
        let address = start(true).await;
        let response = exchange(
            address,
            b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Note: a\x01b\r\n\r\n",
        )
        .await;
        assert_problem(&response, "HTTP/1.1 400 Bad Request", "INVALID_REQUEST");
    }

    #[tokio::test]
    async fn a_malformed_request_line_gets_a_400_problem() {
        let address = start(true).await;
        let requests: [&[u8]; 4] = [
            b"G(T /ok HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /o\x7fk HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /ok HTTP/9.9\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
        ];
        for request in requests {
            let response = exchange(address, request).await;
            assert_problem(&response, "HTTP/1.1 400 Bad Request", "INVALID_REQUEST");
        }
    }

    /// hyper refuses a request target longer than 65534 bytes (`MAX_URI_LEN`) with 414, when
    /// the whole head fits in its read buffer (`max_buf_size`, 417,792 bytes by default);
    /// a head that outgrows the buffer first is a 431.
    fn uri_too_long_request() -> Vec<u8> {
        format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(65534)).into_bytes()
    }

    #[tokio::test]
    async fn a_uri_longer_than_hyper_takes_gets_a_414_problem() {
        let address = start(true).await;
        let response = exchange(address, &uri_too_long_request()).await;
        assert_problem(&response, "HTTP/1.1 414 URI Too Long", "URI_TOO_LONG");

        // One byte shorter reaches the application.
        let longest = format!(
            "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "a".repeat(65533)
        );
        let response = exchange(address, longest.as_bytes()).await;
        let responses = parse_responses(&response);
        assert_eq!(responses[0].status_line, "HTTP/1.1 404 Not Found");
        assert_eq!(
            responses[0].header("content-type"),
            Some("application/problem+json")
        );
    }

    /// More headers than hyper's default limit of 100.
    fn too_many_headers_request() -> Vec<u8> {
        format!(
            "GET /ok HTTP/1.1\r\nHost: x\r\n{}\r\n",
            "X-A: b\r\n".repeat(100)
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn too_many_headers_get_a_431_problem() {
        let address = start(true).await;
        let response = exchange(address, &too_many_headers_request()).await;
        assert_problem(
            &response,
            "HTTP/1.1 431 Request Header Fields Too Large",
            "HEADERS_TOO_LARGE",
        );
    }

    #[tokio::test]
    async fn headers_larger_than_the_read_buffer_get_a_431_problem() {
        let address = start(true).await;
        // Past 417,792 bytes with no end of head in sight.
        let request = format!(
            "GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n",
            "b".repeat(500_000)
        );
        let response = exchange(address, request.as_bytes()).await;
        assert_problem(
            &response,
            "HTTP/1.1 431 Request Header Fields Too Large",
            "HEADERS_TOO_LARGE",
        );
    }

    /// After an HTTP/1.0 keep-alive request hyper answers in HTTP/1.0 and without a
    /// `connection` line; the problem follows the good response on the same connection.
    #[tokio::test]
    async fn an_http_1_0_client_gets_an_http_1_0_problem_after_a_good_response() {
        let address = start(true).await;
        let response = exchange(
            address,
            b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /ok HTTP/1.0\r\nX-A: \x01\r\n\r\n",
        )
        .await;
        let responses = parse_responses(&response);
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].status_line, "HTTP/1.0 200 OK");
        assert_eq!(responses[0].body, b"hello");
        problem_of(&responses[1], "HTTP/1.0 400 Bad Request", "INVALID_REQUEST");
    }

    #[tokio::test]
    async fn a_bad_request_pipelined_behind_good_ones_gets_its_problem_last() {
        let address = start(true).await;
        let response = exchange(
            address,
            b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nX-A: \x01\r\n\r\n",
        )
        .await;
        let responses = parse_responses(&response);
        assert_eq!(responses.len(), 3);
        assert_eq!(responses[0].body, b"hello");
        assert_eq!(responses[1].body, APP_PROBLEM.as_bytes());
        problem_of(&responses[2], "HTTP/1.1 400 Bad Request", "INVALID_REQUEST");
    }

    // ---- the normal path ----

    /// Several requests on one kept-alive connection, among them an application 400 with its
    /// own problem body and a 204 whose head ends a write: byte for byte what hyper sends
    /// without the wrapper.
    #[tokio::test]
    async fn application_responses_pass_through_unchanged_on_a_kept_alive_connection() {
        let (wrapped, bare) = (start(true).await, start(false).await);
        let requests = [
            "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /bad HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ];

        // One request at a time, each answered before the next is sent: keep-alive proper.
        let mut stream = TcpStream::connect(wrapped).await.unwrap();
        let mut statuses = Vec::new();
        for request in requests {
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut received = Vec::new();
            let mut buf = [0; 4096];
            // Until one complete response is in.
            let response = loop {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the connection was closed early");
                received.extend_from_slice(&buf[..n]);
                if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = std::str::from_utf8(&received[..end]).unwrap();
                    let length: usize = head
                        .split("\r\n")
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .map_or(0, |v| v.parse().unwrap());
                    if received.len() >= end + 4 + length {
                        break parse_responses(&received);
                    }
                }
            };
            assert_eq!(response.len(), 1);
            statuses.push(response[0].status_line.clone());
        }
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            statuses,
            [
                "HTTP/1.1 200 OK",
                "HTTP/1.1 400 Bad Request",
                "HTTP/1.1 204 No Content",
                "HTTP/1.1 404 Not Found",
                "HTTP/1.1 200 OK"
            ]
        );

        // All at once, compared with the server without the wrapper.
        let request = requests.concat();
        let from_wrapped = exchange(wrapped, request.as_bytes()).await;
        let from_bare = exchange(bare, request.as_bytes()).await;
        assert_eq!(without_dates(&from_wrapped), without_dates(&from_bare));
        let responses = parse_responses(&from_wrapped);
        assert_eq!(responses.len(), 5);
        assert_eq!(responses[1].body, APP_PROBLEM.as_bytes());
        assert_eq!(
            responses[1].header("content-type"),
            Some("application/problem+json")
        );
    }

    #[tokio::test]
    async fn a_response_streamed_in_many_writes_is_untouched() {
        let (wrapped, bare) = (start(true).await, start(false).await);
        let request = b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n\
            GET /stream-sized HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let from_wrapped = exchange(wrapped, request).await;
        let from_bare = exchange(bare, request).await;
        assert_eq!(without_dates(&from_wrapped), without_dates(&from_bare));
        let responses = parse_responses(&from_wrapped);
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].header("transfer-encoding"), Some("chunked"));
        assert_eq!(responses[0].body, STREAM_CHUNKS.concat().as_bytes());
        let sized = sized_chunks().concat();
        assert_eq!(
            responses[1].header("content-length"),
            Some(sized.len().to_string().as_str())
        );
        assert_eq!(responses[1].body, sized.as_bytes());
    }

    // ---- the wrapper on its own ----

    /// A stream that takes at most `max` bytes per write and answers every other call with
    /// `Pending` (waking itself), and counts the calls of each kind.
    #[derive(Default)]
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        stall: bool,
        writes: usize,
        vectored_writes: usize,
        shut_down: bool,
    }

    impl Trickle {
        fn new(max: usize) -> Self {
            Self {
                max,
                ..Self::default()
            }
        }

        fn stalls(&mut self, cx: &mut Context<'_>) -> bool {
            self.stall = !self.stall;
            if self.stall {
                cx.waker().wake_by_ref();
            }
            self.stall
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.stalls(cx) {
                return Poll::Pending;
            }
            self.writes += 1;
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            if self.stalls(cx) {
                return Poll::Pending;
            }
            self.vectored_writes += 1;
            let mut budget = self.max;
            for buf in bufs {
                let n = buf.len().min(budget);
                self.out.extend_from_slice(&buf[..n]);
                budget -= n;
            }
            Poll::Ready(Ok(self.max - budget))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut_down = true;
            Poll::Ready(Ok(()))
        }
    }

    const HYPER_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 22:44:20 GMT\r\n\r\n";

    fn expected_400() -> Vec<u8> {
        let body = Rejection::BadRequest.problem();
        let mut expected = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
             connection: close\r\ndate: Wed, 02 Dec 2026 22:44:20 GMT\r\n\r\n",
            body.len()
        )
        .into_bytes();
        expected.extend_from_slice(&body);
        expected
    }

    /// Writes `bufs` the way hyper's queue strategy does: vectored, advancing by what each
    /// call reports, until hyper's bytes are all accepted. Returns the counts reported.
    async fn write_all_vectored<W: AsyncWrite + Unpin>(io: &mut W, bufs: &[&[u8]]) -> Vec<usize> {
        let mut remaining: Vec<&[u8]> = bufs.to_vec();
        let mut reported = Vec::new();
        while remaining.iter().any(|buf| !buf.is_empty()) {
            let slices: Vec<IoSlice<'_>> = remaining.iter().map(|buf| IoSlice::new(buf)).collect();
            let mut n =
                std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write_vectored(cx, &slices))
                    .await
                    .unwrap();
            assert!(n > 0);
            reported.push(n);
            for buf in &mut remaining {
                let taken = n.min(buf.len());
                *buf = &buf[taken..];
                n -= taken;
            }
        }
        reported
    }

    #[tokio::test]
    async fn the_substitute_survives_partial_and_pending_writes() {
        for max in [1, 7, 4096] {
            let mut io = ProblemIo::new(Trickle::new(max));
            io.write_all(HYPER_400).await.unwrap();
            io.shutdown().await.unwrap();
            assert_eq!(io.inner.out, expected_400(), "max {max}");
            assert!(io.inner.shut_down);

            let mut io = ProblemIo::new(Trickle::new(max));
            // hyper is told its whole head went out in one go, once the substitute has.
            assert_eq!(
                write_all_vectored(&mut io, &[HYPER_400]).await,
                [HYPER_400.len()]
            );
            assert_eq!(io.inner.out, expected_400(), "max {max}");
        }
    }

    #[tokio::test]
    async fn bytes_before_the_head_go_out_first_and_unchanged() {
        let earlier = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        let mut expected = earlier.to_vec();
        expected.extend_from_slice(&expected_400());

        let mut flat = earlier.to_vec();
        flat.extend_from_slice(HYPER_400);
        for max in [1, 3, 4096] {
            let mut io = ProblemIo::new(Trickle::new(max));
            io.write_all(&flat).await.unwrap();
            assert_eq!(io.inner.out, expected, "max {max}");

            let mut io = ProblemIo::new(Trickle::new(max));
            let reported =
                write_all_vectored(&mut io, &[&earlier[..10], &earlier[10..], HYPER_400]).await;
            assert_eq!(
                reported.iter().sum::<usize>(),
                earlier.len() + HYPER_400.len()
            );
            assert_eq!(io.inner.out, expected, "max {max}");

            let mut io = ProblemIo::new(Trickle::new(max));
            write_all_vectored(&mut io, &[&flat, b""]).await;
            assert_eq!(io.inner.out, expected, "max {max}");
        }
    }

    #[tokio::test]
    async fn ordinary_writes_go_through_as_they_come() {
        let mut io = ProblemIo::new(Trickle::new(4096));
        assert!(io.is_write_vectored());
        let head: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(
            write_all_vectored(&mut io, &[head, b"hello"]).await,
            [head.len() + 5]
        );
        assert_eq!(
            io.inner.vectored_writes, 1,
            "one vectored write, as without the wrapper"
        );
        io.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(io.inner.writes, 1);
        let mut expected = [head, b"hello"].concat();
        expected.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(io.inner.out, expected);
    }

    #[test]
    fn only_heads_of_hypers_error_shape_are_recognised() {
        /// A head, and what the matcher must make of it.
        type Case = (&'static [u8], Rejection, Option<&'static [u8]>);
        let matching: [Case; 5] = [
            (HYPER_400, Rejection::BadRequest, Some(b"Wed, 02 Dec 2026 22:44:20 GMT")),
            (
                b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                Rejection::UriTooLong,
                None,
            ),
            (
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\
                  Date: Wed, 02 Dec 2026 22:44:20 GMT\r\n\r\n",
                Rejection::HeadersTooLarge,
                Some(b"Wed, 02 Dec 2026 22:44:20 GMT"),
            ),
            (
                b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 22:44:20 GMT\r\n\r\n",
                Rejection::BadRequest,
                Some(b"Wed, 02 Dec 2026 22:44:20 GMT"),
            ),
            (b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n", Rejection::BadRequest, None),
        ];
        for (bytes, rejection, date) in matching {
            let head = find_error_head(bytes)
                .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(bytes)));
            assert_eq!(
                (head.start, head.rejection, head.date),
                (0, rejection, date)
            );
        }

        let not_matching: [&[u8]; 11] = [
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nx-request-id: 1\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nx",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\ncontent-length: 0\r\n\r\n",
            b"HTTP/2.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 4000 Bad Request\r\ncontent-length: 0\r\n\r\n",
        ];
        for bytes in not_matching {
            assert!(
                find_error_head(bytes).is_none(),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }

        let mut after_a_response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec();
        after_a_response.extend_from_slice(HYPER_400);
        assert_eq!(
            find_error_head(&after_a_response).unwrap().start,
            after_a_response.len() - HYPER_400.len()
        );

        // Too far from the end to be a head hyper wrote.
        let padded = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx: {}\r\n\r\n",
            "a".repeat(300)
        );
        assert!(find_error_head(padded.as_bytes()).is_none());
    }

    #[test]
    fn the_problems_are_valid_json_matching_their_status() {
        for (rejection, code) in [
            (Rejection::BadRequest, "INVALID_REQUEST"),
            (Rejection::UriTooLong, "URI_TOO_LONG"),
            (Rejection::HeadersTooLarge, "HEADERS_TOO_LARGE"),
        ] {
            let problem: serde_json::Value = serde_json::from_slice(&rejection.problem()).unwrap();
            let status = StatusCode::from_u16(rejection.status()).unwrap();
            assert_eq!(problem["type"], "about:blank");
            assert_eq!(problem["title"], status.canonical_reason().unwrap());
            assert_eq!(problem["status"], rejection.status());
            assert_eq!(problem["code"], code);
            assert!(problem["detail"].is_string());
        }
    }
}
