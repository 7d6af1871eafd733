//! A small HTTP/1.1 client for one JSON `POST` with a streamed response, that a cancel flag can
//! stop at any moment.
//!
//! Why not an HTTP library: a blocking client (ureq, which this replaced) sits in `read` until
//! the next byte or its read timeout, so a cancelled run waited on a stalled server, and it
//! buffered a body without newlines without bound. Here the socket does not block: each wait
//! is a `poll` on it and on the flag (the run's cancel, the engine's shutdown and its deadline
//! joined into one), which wakes the moment the flag is set, and lasts at most until the
//! server has been silent too long; byte budgets bound the headers, each line, the whole body
//! and all that the server sends (chunk framing included), and the buffers hold at most an
//! unfinished line and one read. Dropping the [`Response`] closes the socket, which is
//! also how a server learns that the generation is no longer wanted. The subset spoken is what
//! `/completions` servers use: HTTP/1.1, `Connection: close`, bodies sized by
//! `Content-Length`, chunked or ended by the close. There is no TLS: `openai:` URLs are `http://`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::cancel::{CancelFlag, Interrupted, poll_for, poll_until};

/// Status line and headers together.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// A chunk-size line.
const MAX_CHUNK_LINE: usize = 1024;
/// What one read from the socket takes at most.
const READ_SIZE: usize = 16 * 1024;

/// Where to send requests: `http://host[:port][/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Url {
    /// `host:port` as written (for the `Host` header and for resolving).
    authority: String,
    /// The path without a trailing `/` (`/v1`), or empty.
    base_path: String,
}

impl Url {
    pub(super) fn parse(url: &str) -> Result<Url, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url}: only http:// URLs are supported (put a TLS proxy in front of an https server)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains(['@', ' ', '?', '#']) {
            return Err(format!("{url}: expected http://HOST[:PORT]/PATH"));
        }
        let has_port = match authority.rfind(']') {
            Some(bracket) => authority[bracket..].contains(':'),
            None => authority.contains(':'),
        };
        Ok(Url {
            authority: if has_port {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            },
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The full URL of `path` under the base, for messages.
    pub(super) fn display(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.authority, self.base_path)
    }
}

/// Time and size limits of one request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub connect_timeout: Duration,
    /// How long the server may send nothing (and, while the request is written, take nothing).
    pub idle_timeout: Duration,
    /// The longest line of the body.
    pub max_line: usize,
    /// The whole body, after chunked decoding. The response as sent, with its headers and
    /// chunk framing, may be twice as long.
    pub max_body: usize,
}

/// Why a request did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HttpError {
    /// The flag was set; the socket is closed.
    Stopped,
    /// Anything else, in words.
    Failed(String),
}

impl From<String> for HttpError {
    fn from(reason: String) -> HttpError {
        HttpError::Failed(reason)
    }
}

impl From<&str> for HttpError {
    fn from(reason: &str) -> HttpError {
        HttpError::Failed(reason.to_owned())
    }
}

/// A response whose status line and headers have been read; the body is read on demand.
pub(super) struct Response {
    pub status: u16,
    pub reason: String,
    /// The `Content-Type` without parameters, lowercase; empty when absent.
    pub content_type: String,
    body: Body,
}

/// Sends `POST base/path` with a JSON body and reads the response head.
pub(super) fn post_json(
    url: &Url,
    path: &str,
    json: &[u8],
    stop: &CancelFlag,
    limits: Limits,
) -> Result<Response, HttpError> {
    let stream = connect(&url.authority, stop, limits.connect_timeout)?;
    stream
        .set_nonblocking(true)
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|err| format!("socket: {err}"))?;
    let mut socket = Socket {
        stream,
        stop: stop.clone(),
        idle_timeout: limits.idle_timeout,
        last_progress: Instant::now(),
    };
    let head = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: text/event-stream, application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: punie\r\n\r\n",
        url.base_path,
        url.authority,
        json.len()
    );
    socket.write_all(head.as_bytes())?;
    socket.write_all(json)?;

    let mut reader = Reader {
        socket,
        buffer: Vec::new(),
        start: 0,
        received: 0,
        max_received: limits.max_body.saturating_mul(2),
    };
    let status_line = reader
        .line(MAX_HEADER_BYTES)?
        .ok_or("the server closed the connection without answering")?;
    let (status, reason) = parse_status_line(&status_line)?;
    let mut header_bytes = status_line.len();
    let mut content_type = String::new();
    let mut content_length = None;
    let mut chunked = false;
    loop {
        let line = reader
            .line(MAX_HEADER_BYTES)?
            .ok_or("the connection closed inside the response headers")?;
        header_bytes += line.len();
        if header_bytes > MAX_HEADER_BYTES {
            return Err(format!("response headers longer than {MAX_HEADER_BYTES} bytes").into());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed response header {}", printable(line, 80)).into());
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => {
                content_type = value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
            }
            "content-length" => {
                content_length =
                    Some(value.parse::<usize>().map_err(|_| {
                        format!("malformed Content-Length {}", printable(value, 40))
                    })?);
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let framing = if chunked {
        Framing::Chunked { left_in_chunk: 0 }
    } else if let Some(length) = content_length {
        Framing::Length { left: length }
    } else {
        Framing::UntilClose
    };
    Ok(Response {
        status,
        reason,
        content_type,
        body: Body {
            reader,
            framing,
            decoded: Vec::new(),
            start: 0,
            total: 0,
            max_body: limits.max_body,
            done: false,
        },
    })
}

impl Response {
    /// The next line of the body without its line ending; `None` at the end. A line longer than
    /// `max_line` bytes, or a body past `max_body`, is an error.
    pub(super) fn line(&mut self, max_line: usize) -> Result<Option<String>, HttpError> {
        self.body.line(max_line)
    }

    /// The body as text, at most `max_bytes` of it (the rest is left unread).
    pub(super) fn text(&mut self, max_bytes: usize) -> Result<String, HttpError> {
        let mut bytes = Vec::new();
        loop {
            let pending = &self.body.decoded[self.body.start..];
            let take = pending.len().min(max_bytes - bytes.len());
            bytes.extend_from_slice(&pending[..take]);
            self.body.start += take;
            if bytes.len() >= max_bytes || !self.body.fill()? {
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
}

/// Text safe to put in a one-line message: control characters escaped, at most `max` chars.
pub(super) fn printable(text: &str, max: usize) -> String {
    let mut res: String = text
        .chars()
        .take(max)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > max {
        res.push('…');
    }
    format!("`{res}`")
}

fn parse_status_line(line: &str) -> Result<(u16, String), String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/1.") && (100..600).contains(&code) => {
            Ok((code, parts.next().unwrap_or("").to_owned()))
        }
        _ => Err(format!(
            "not an HTTP/1.x response: it begins {}",
            printable(line, 80)
        )),
    }
}

/// Connects on a thread of its own, so that a cancel does not wait for the connect timeout; a
/// connection that completes after the caller gave up is closed by that thread.
fn connect(authority: &str, stop: &CancelFlag, timeout: Duration) -> Result<TcpStream, HttpError> {
    let (sender, receiver) = crossbeam_channel::bounded(1);
    let authority_owned = authority.to_owned();
    std::thread::Builder::new()
        .name("punie-http-connect".to_owned())
        .spawn(move || {
            let _ = sender.send(connect_blocking(&authority_owned, timeout));
        })
        .map_err(|err| format!("cannot start a connection thread: {err}"))?;
    match stop.wait(&receiver, None) {
        Ok(result) => result.map_err(HttpError::Failed),
        // No deadline was given: the connect timeout is the thread's.
        Err(Interrupted::Cancelled | Interrupted::TimedOut) => Err(HttpError::Stopped),
        Err(Interrupted::Disconnected) => {
            Err(HttpError::Failed("the connection thread ended".to_owned()))
        }
    }
}

fn connect_blocking(authority: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addresses: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {authority}: {err}"))?
        .collect();
    let mut last_error = format!("{authority} has no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => last_error = format!("cannot connect to {authority}: {err}"),
        }
    }
    Err(last_error)
}

/// The socket with the rules of the module doc: waits that the flag wakes, the idle clock.
struct Socket {
    stream: TcpStream,
    stop: CancelFlag,
    idle_timeout: Duration,
    last_progress: Instant,
}

impl Socket {
    /// Waits until the socket is ready for `events`, the flag is set or the server has been
    /// idle too long; then [`Socket::check`].
    fn wait(&self, events: libc::c_short, doing: &str) -> Result<(), HttpError> {
        let mut fds = [poll_for(self.stream.as_raw_fd(), events)];
        poll_until(
            &mut fds,
            self.last_progress + self.idle_timeout,
            Some(&self.stop),
        );
        self.check(doing)
    }

    /// After a wait that moved nothing: stop if asked to or if the server has been idle too long.
    fn check(&self, doing: &str) -> Result<(), HttpError> {
        if self.stop.is_cancelled() {
            return Err(HttpError::Stopped);
        }
        let idle = self.last_progress.elapsed();
        if idle >= self.idle_timeout {
            return Err(HttpError::Failed(format!(
                "the server {doing} for {:.1} s (PUNIE_ENGINE_IDLE_TIMEOUT sets the limit)",
                idle.as_secs_f64()
            )));
        }
        Ok(())
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), HttpError> {
        while !bytes.is_empty() {
            match self.stream.write(bytes) {
                Ok(0) => return Err("the server closed the connection".to_owned().into()),
                Ok(n) => {
                    bytes = &bytes[n..];
                    self.last_progress = Instant::now();
                }
                Err(err) if is_wait(&err) => {
                    self.wait(libc::POLLOUT, "took no more of the request")?;
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(format!("sending the request: {err}").into()),
            }
        }
        Ok(())
    }

    /// Reads some bytes; 0 at the end of the stream.
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, HttpError> {
        loop {
            match self.stream.read(buffer) {
                Ok(n) => {
                    self.last_progress = Instant::now();
                    return Ok(n);
                }
                Err(err) if is_wait(&err) => self.wait(libc::POLLIN, "sent nothing")?,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(format!("reading the response: {err}").into()),
            }
        }
    }
}

fn is_wait(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Raw bytes from the socket with a buffer, for the head and the chunk framing.
struct Reader {
    socket: Socket,
    buffer: Vec<u8>,
    start: usize,
    /// Every byte read so far, against `max_received`: the decoded body has its own budget,
    /// but a chunk-size line can carry a kilobyte of extension for each byte of body.
    received: usize,
    max_received: usize,
}

impl Reader {
    /// More bytes into the buffer; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, HttpError> {
        // Only `line` and `take` fill, and only when the unread bytes are an unfinished line (at
        // most its limit) or nothing: dropping what was read keeps the buffer to that plus one
        // read, however the reads fall across the lines.
        self.buffer.drain(..self.start);
        self.start = 0;
        let mut chunk = [0u8; READ_SIZE];
        let n = self.socket.read(&mut chunk)?;
        self.received += n;
        if self.received > self.max_received {
            return Err(format!(
                "the response is larger than {} MiB with its headers and chunk framing",
                self.max_received / (1024 * 1024)
            )
            .into());
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn available(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    /// A raw line with its `\n`; `None` at the end of the stream before any byte.
    fn line(&mut self, max: usize) -> Result<Option<String>, HttpError> {
        loop {
            if let Some(newline) = self.available().iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.available()[..=newline]).into_owned();
                self.start += newline + 1;
                return Ok(Some(line));
            }
            if self.available().len() > max {
                return Err(format!("a line of the response is longer than {max} bytes").into());
            }
            if !self.fill()? {
                return if self.available().is_empty() {
                    Ok(None)
                } else {
                    Err("the connection closed in the middle of a line"
                        .to_owned()
                        .into())
                };
            }
        }
    }

    /// Up to `max` bytes; empty at the end of the stream.
    fn take(&mut self, max: usize) -> Result<Vec<u8>, HttpError> {
        if self.available().is_empty() && !self.fill()? {
            return Ok(Vec::new());
        }
        let n = max.min(self.available().len());
        let bytes = self.available()[..n].to_vec();
        self.start += n;
        Ok(bytes)
    }
}

enum Framing {
    Length { left: usize },
    Chunked { left_in_chunk: usize },
    UntilClose,
}

/// The decoded body, read line by line.
struct Body {
    reader: Reader,
    framing: Framing,
    decoded: Vec<u8>,
    start: usize,
    /// Decoded bytes so far, against `max_body`.
    total: usize,
    max_body: usize,
    done: bool,
}

impl Body {
    fn line(&mut self, max_line: usize) -> Result<Option<String>, HttpError> {
        loop {
            let pending = &self.decoded[self.start..];
            if let Some(newline) = pending.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&pending[..newline])
                    .trim_end_matches('\r')
                    .to_owned();
                self.start += newline + 1;
                return Ok(Some(line));
            }
            if pending.len() > max_line {
                return Err(format!(
                    "the server sent more than {max_line} bytes without a line break"
                )
                .into());
            }
            if !self.fill()? {
                let rest = &self.decoded[self.start..];
                if rest.is_empty() {
                    return Ok(None);
                }
                let line = String::from_utf8_lossy(rest).into_owned();
                self.start = self.decoded.len();
                return Ok(Some(line));
            }
        }
    }

    /// Decodes more of the body into `decoded`; false at its end.
    fn fill(&mut self) -> Result<bool, HttpError> {
        // As in `Reader::fill`: what is left is at most an unfinished line.
        self.decoded.drain(..self.start);
        self.start = 0;
        if self.done {
            return Ok(false);
        }
        let bytes = match &mut self.framing {
            Framing::Length { left } => {
                if *left == 0 {
                    Vec::new()
                } else {
                    let bytes = self.reader.take(*left)?;
                    if bytes.is_empty() {
                        return Err("the connection closed before the end of the body"
                            .to_owned()
                            .into());
                    }
                    *left -= bytes.len();
                    bytes
                }
            }
            Framing::UntilClose => self.reader.take(usize::MAX)?,
            Framing::Chunked { left_in_chunk } => {
                if *left_in_chunk == 0 {
                    *left_in_chunk = next_chunk_size(&mut self.reader)?;
                }
                if *left_in_chunk == 0 {
                    Vec::new()
                } else {
                    let bytes = self.reader.take(*left_in_chunk)?;
                    if bytes.is_empty() {
                        return Err("the connection closed inside a chunk".to_owned().into());
                    }
                    *left_in_chunk -= bytes.len();
                    if *left_in_chunk == 0 {
                        end_of_chunk(&mut self.reader)?;
                    }
                    bytes
                }
            }
        };
        if bytes.is_empty() {
            self.done = true;
            return Ok(false);
        }
        self.total += bytes.len();
        if self.total > self.max_body {
            return Err(format!(
                "the response is larger than {} MiB",
                self.max_body / (1024 * 1024)
            )
            .into());
        }
        self.decoded.extend_from_slice(&bytes);
        Ok(true)
    }
}

/// Reads the line break after a chunk's data, which is all that may be there.
fn end_of_chunk(reader: &mut Reader) -> Result<(), HttpError> {
    match reader.line("\r\n".len())? {
        Some(line) if line.trim_end_matches(['\r', '\n']).is_empty() => Ok(()),
        Some(line) => Err(format!(
            "chunk data followed by {} instead of a line break",
            printable(&line, 20)
        )
        .into()),
        None => Err("the connection closed inside a chunk".into()),
    }
}

/// Reads a chunk-size line; 0 for the last chunk.
fn next_chunk_size(reader: &mut Reader) -> Result<usize, HttpError> {
    let line = reader
        .line(MAX_CHUNK_LINE)?
        .ok_or("the connection closed before the last chunk")?;
    let size = line.trim().split(';').next().unwrap_or("").trim();
    usize::from_str_radix(size, 16)
        .map_err(|_| format!("malformed chunk size {}", printable(size, 20)).into())
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A chunk of one body byte whose chunk-size line carries 1 KiB of extension: 1 KiB on the
    /// wire per byte of body, so a 16 KiB read nearly always ends inside a chunk-size line.
    fn padded_chunk(body_byte: u8) -> Vec<u8> {
        let mut chunk = b"1;".to_vec();
        chunk.resize(MAX_CHUNK_LINE - 2, b'e');
        chunk.extend_from_slice(b"\r\n");
        chunk.push(body_byte);
        chunk.extend_from_slice(b"\r\n");
        chunk
    }

    /// A server on loopback that reads one request, lets `respond` write to the socket, and
    /// closes it.
    fn serve_once(
        respond: impl FnOnce(&mut TcpStream) + Send + 'static,
    ) -> (Url, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/v1", listener.local_addr().unwrap())).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then the two bytes of the `{}` body.
            while !request.windows(6).any(|window| window == b"\r\n\r\n{}") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the client sent no request");
                request.extend_from_slice(&buf[..n]);
            }
            respond(&mut stream);
        });
        (url, server)
    }

    const CHUNKED_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

    fn limits(max_body: usize) -> Limits {
        Limits {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_line: 1024,
            max_body,
        }
    }

    /// The body's lines until the first error or its end.
    fn read_lines(response: &mut Response) -> Result<Vec<String>, HttpError> {
        let mut lines = Vec::new();
        while let Some(line) = response.line(1024)? {
            lines.push(line);
        }
        Ok(lines)
    }

    #[test]
    fn only_a_line_break_may_follow_chunk_data() {
        let (url, server) = serve_once(|stream| {
            let body = b"4\r\nHey\nXX\r\n0\r\n\r\n";
            let _ = stream.write_all(&[CHUNKED_HEAD, body].concat());
        });
        let mut response =
            post_json(&url, "/x", b"{}", &CancelFlag::default(), limits(1024)).unwrap();
        assert_eq!(
            read_lines(&mut response),
            Err(HttpError::Failed(
                "chunk data followed by `XX\\r\\n` instead of a line break".to_owned()
            ))
        );
        server.join().unwrap();
    }

    #[test]
    fn chunk_framing_is_bounded_in_memory_and_on_the_wire() {
        let limits = limits(1024 * 1024);
        let (url, server) = serve_once(move |stream| {
            let mut block = Vec::new();
            for i in 0..64 {
                block.extend(padded_chunk(if i == 63 { b'\n' } else { b':' }));
            }
            // 8 MiB, four times the budget of twice `max_body`, for 8 KiB of body; the client
            // hangs up once it has had enough, which fails a write and ends the flood.
            let _ = stream.write_all(CHUNKED_HEAD).and_then(|()| {
                (0..8 * limits.max_body / block.len()).try_for_each(|_| stream.write_all(&block))
            });
        });
        let mut response =
            post_json(&url, "/completions", b"{}", &CancelFlag::default(), limits).unwrap();
        let mut most_held = 0;
        let outcome = loop {
            let line = response.line(limits.max_line);
            most_held = most_held.max(response.body.reader.buffer.capacity());
            match line {
                Ok(Some(_)) => {}
                other => break other,
            }
        };
        drop(response);
        server.join().unwrap();
        // An unfinished chunk-size line and one read (Vec doubles its capacity as it grows).
        assert!(
            most_held <= 2 * (MAX_CHUNK_LINE + READ_SIZE),
            "the reader held {most_held} bytes"
        );
        assert_eq!(
            outcome,
            Err(HttpError::Failed(
                "the response is larger than 2 MiB with its headers and chunk framing".to_owned()
            ))
        );
    }

    #[test]
    fn urls() {
        let url = Url::parse("http://127.0.0.1:8080/v1/").unwrap();
        assert_eq!(
            url.display("/completions"),
            "http://127.0.0.1:8080/v1/completions"
        );
        assert_eq!(
            Url::parse("http://localhost").unwrap().display("/x"),
            "http://localhost:80/x"
        );
        assert_eq!(
            Url::parse("http://[::1]:9/v1").unwrap().display(""),
            "http://[::1]:9/v1"
        );
        for bad in ["https://h/v1", "http:///v1", "http://u@h/v1", "ftp://h"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line("HTTP/1.1 200 OK\r\n"),
            Ok((200, "OK".to_owned()))
        );
        assert!(
            parse_status_line("<html>\r\n")
                .unwrap_err()
                .contains("not an HTTP/1.x response")
        );
    }

    #[test]
    fn printable_escapes_and_cuts() {
        assert_eq!(printable("a\u{1b}[2Jb", 10), "`a\\u{1b}[2Jb`");
        assert_eq!(printable("abcdef", 3), "`abc…`");
    }
}
