//! A fake OpenAI-compatible server for the engine-fault tests: loopback only, at most
//! [`MAX_CONNECTIONS`] connections, every wait bounded, gone when dropped. Each connection gets
//! the same [`Reply`]: a well-behaved stream, or one of the ways real servers and proxies
//! misbehave, or [`Reply::Turns`], one answer per request in order. The prompts it got are
//! kept ([`FakeOpenAi::prompts`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::json;

const MAX_CONNECTIONS: usize = 16;
/// How long a connection thread waits for a request, or holds a stalled stream open.
const HOLD: Duration = Duration::from_secs(60);

/// What the server answers every request with.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A stream of these text pieces, then `finish_reason: stop` and `[DONE]`.
    Stream(Vec<String>),
    /// The n-th request gets the n-th of these as a stream (the last one once they run out).
    Turns(Vec<String>),
    /// A proxy's login page: status 200, `text/html`.
    HtmlLogin,
    /// Status 200 and a body of this content type.
    WrongType(&'static str),
    /// An event stream that never sends a line break (8 MiB of `x`).
    NoNewlines,
    /// A chunked event stream that spends 1 KiB of chunk-size line (an extension) on each byte
    /// of body: 48 MiB on the wire for 48 KiB of blank lines.
    PaddedChunks,
    /// These text pieces, then silence with the connection open until the client closes it.
    StallAfter(Vec<String>),
}

pub(crate) struct FakeOpenAi {
    /// The API root, e.g. `http://127.0.0.1:PORT/v1`.
    pub(crate) url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    /// One message per request received.
    requests: Receiver<()>,
    /// The `prompt` of each request, in order.
    prompts: Receiver<String>,
    /// One message per connection the client closed while the server held it open.
    closed: Receiver<Instant>,
}

impl FakeOpenAi {
    pub(crate) fn start(reply: Reply) -> FakeOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let (request_sender, requests) = crossbeam_channel::unbounded();
        let (closed_sender, closed) = crossbeam_channel::unbounded();
        let (prompt_sender, prompts) = crossbeam_channel::unbounded();
        let answered = Arc::new(AtomicUsize::new(0));
        let thread_stop = stop.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let thread_accepted = accepted.clone();
        let thread = std::thread::spawn(move || {
            let mut served = 0;
            while !thread_stop.load(Ordering::Acquire) && served < MAX_CONNECTIONS {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        thread_accepted.fetch_add(1, Ordering::AcqRel);
                        let connection = Connection {
                            stream,
                            reply: reply.clone(),
                            stop: thread_stop.clone(),
                            requests: request_sender.clone(),
                            prompts: prompt_sender.clone(),
                            answered: answered.clone(),
                            closed: closed_sender.clone(),
                        };
                        std::thread::spawn(move || connection.serve());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeOpenAi {
            url,
            stop,
            thread: Some(thread),
            accepted,
            requests,
            prompts,
            closed,
        }
    }

    /// The engine SPEC that points at this server.
    pub(crate) fn spec(&self) -> String {
        format!("openai:{}#fake", self.url)
    }

    /// How many connections were made to the server so far.
    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }

    /// Waits for a request to arrive (for [`Reply::StallAfter`], and its pieces to be sent).
    pub(crate) fn wait_request(&self) {
        self.requests
            .recv_timeout(HOLD)
            .expect("the fake server got no request");
    }

    /// The prompts of the requests received since the last call, in order (a prompt that is not
    /// a string as its JSON).
    pub(crate) fn prompts(&self) -> Vec<String> {
        self.prompts.try_iter().collect()
    }

    /// When the client closed a stalled connection, if it did within `within`.
    pub(crate) fn wait_closed(&self, within: Duration) -> Option<Instant> {
        self.closed.recv_timeout(within).ok()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Connection {
    stream: TcpStream,
    reply: Reply,
    stop: Arc<AtomicBool>,
    requests: Sender<()>,
    prompts: Sender<String>,
    /// Requests read so far, over all connections.
    answered: Arc<AtomicUsize>,
    closed: Sender<Instant>,
}

impl Connection {
    fn serve(mut self) {
        let _ = self.stream.set_nonblocking(false);
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(50)));
        let Some(body) = self.read_request() else {
            return;
        };
        let index = self.answered.fetch_add(1, Ordering::AcqRel);
        let prompt = serde_json::from_slice::<serde_json::Value>(&body)
            .map(|body| match &body["prompt"] {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let _ = self.prompts.send(prompt);
        // A stalling reply tells of the request once its pieces are sent (a test that waits
        // for it then cancels during the stall, not before the server has written).
        if !matches!(self.reply, Reply::StallAfter(_)) {
            let _ = self.requests.send(());
        }
        let stream = &mut self.stream;
        let _ = match &self.reply {
            Reply::Stream(pieces) => write_stream(stream, pieces),
            Reply::Turns(answers) => {
                let answer = answers.get(index).or(answers.last()).cloned();
                write_stream(stream, &[answer.unwrap_or_default()])
            }
            Reply::HtmlLogin => write_response(
                stream,
                "text/html; charset=utf-8",
                b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please log in to continue.</body></html>",
            ),
            Reply::WrongType(content_type) => {
                let body: String = event("hello", Some("stop"));
                write_response(stream, content_type, body.as_bytes())
            }
            Reply::NoNewlines => stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: ")
                .and_then(|()| {
                    let block = vec![b'x'; 64 * 1024];
                    (0..128).try_for_each(|_| stream.write_all(&block))
                }),
            Reply::PaddedChunks => stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                .and_then(|()| {
                    let mut chunk = b"1;".to_vec();
                    chunk.resize(1020, b'e');
                    chunk.extend_from_slice(b"\r\n\n\r\n");
                    let block = chunk.repeat(1024);
                    (0..48).try_for_each(|_| stream.write_all(&block))
                }),
            Reply::StallAfter(pieces) => {
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
                let events: String = pieces.iter().map(|p| event(p, None)).collect();
                let sent = stream
                    .write_all(head)
                    .and_then(|()| stream.write_all(events.as_bytes()));
                let _ = self.requests.send(());
                if sent.is_ok() {
                    self.hold_until_closed();
                }
                sent
            }
        };
    }

    /// Reads the request head and its body, and returns the body; `None` if none came.
    fn read_request(&mut self) -> Option<Vec<u8>> {
        let started = Instant::now();
        let mut request = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while started.elapsed() < HOLD && request.len() < 8 * 1024 * 1024 {
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => request.extend_from_slice(&buf[..n]),
                Err(_) if self.stop.load(Ordering::Acquire) => return None,
                Err(_) => continue,
            }
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let length: usize = String::from_utf8_lossy(&request[..end])
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .and_then(|v| v.trim().parse().ok())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    return Some(request.split_off(end + 4));
                }
            }
        }
        None
    }

    /// Keeps the connection open, sending nothing, until the client closes it.
    fn hold_until_closed(&mut self) {
        let started = Instant::now();
        let mut byte = [0u8; 1];
        while started.elapsed() < HOLD && !self.stop.load(Ordering::Acquire) {
            match self.stream.read(&mut byte) {
                Ok(0) => {
                    let _ = self.closed.send(Instant::now());
                    return;
                }
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    let _ = self.closed.send(Instant::now());
                    return;
                }
            }
        }
    }
}

fn event(text: &str, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "text": text, "finish_reason": finish}]})
    )
}

/// `pieces` as an event stream, then `finish_reason: stop` and `[DONE]`.
fn write_stream(stream: &mut TcpStream, pieces: &[String]) -> std::io::Result<()> {
    let mut body: String = pieces.iter().map(|p| event(p, None)).collect();
    body.push_str(&event("", Some("stop")));
    body.push_str("data: [DONE]\n\n");
    write_response(stream, "text/event-stream", body.as_bytes())
}

fn write_response(stream: &mut TcpStream, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}
