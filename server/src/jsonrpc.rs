//! JSON-RPC framing over byte streams: `Content-Length` headers in, [`Incoming`] out. Our
//! LSP server (`lsp/`) and our client of a Python language server (`typed/navigation/`) both
//! frame messages here, below either of them.
//!
//! `lsp-server`'s own stdio transport ends its reader thread on the first malformed frame
//! (bad header, invalid UTF-8, invalid JSON, a JSON value that is not a message), after which
//! the server can no longer hear `shutdown` or `exit`. This reader never gives up on the
//! stream: a bad frame becomes [`Incoming::Invalid`], which the main loop answers with a
//! JSON-RPC error (`-32700` or `-32600`, id `null` when none could be read), and reading goes
//! on with the next frame. Only end of input (or an IO error) ends it.

use std::io::{self, BufRead, Write};

use lsp_server::{Message, Notification, Request, RequestId, Response};
use serde_json::Value;

/// Bodies larger than this are refused without being buffered: nothing in LSP comes close,
/// and a bogus length must not make the server allocate gigabytes.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// A header line longer than this is garbage; it is skipped without keeping it in memory.
const MAX_HEADER_LINE: usize = 8 * 1024;

/// What the reader hands the main loop.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    /// A frame that is not a JSON-RPC message. `id` is the request id when one could be read.
    Invalid {
        id: Option<Value>,
        code: i32,
        message: String,
    },
}

/// What the main loop hands the writer.
#[derive(Debug)]
pub enum Outgoing {
    Message(Message),
    /// An error response whose id is not a valid `RequestId` (JSON-RPC allows `null`).
    RawError {
        id: Value,
        code: i32,
        message: String,
    },
}

impl From<Message> for Outgoing {
    fn from(message: Message) -> Outgoing {
        Outgoing::Message(message)
    }
}

/// Reads one frame. `Ok(None)` at end of input. Malformed frames are `Some(Invalid)`;
/// only IO errors are `Err`.
pub(crate) fn read_frame(reader: &mut dyn BufRead) -> io::Result<Option<Incoming>> {
    let mut content_length: Option<usize> = None;
    let mut bad_header: Option<String> = None;
    let mut saw_header = false;
    loop {
        let Some(line) = read_header_line(reader)? else {
            return Ok(None);
        };
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if !saw_header {
                // Blank lines between frames are harmless; some clients send a stray "\r\n".
                continue;
            }
            break;
        }
        saw_header = true;
        match line.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                match value.trim().parse::<usize>() {
                    Ok(n) if n <= MAX_BODY_BYTES => content_length = Some(n),
                    Ok(n) => {
                        bad_header = Some(format!(
                            "Content-Length {n} is larger than {MAX_BODY_BYTES}"
                        ))
                    }
                    Err(_) => bad_header = Some(format!("bad Content-Length: {:?}", value.trim())),
                }
            }
            Some((name, _)) if name.trim().eq_ignore_ascii_case("content-type") => {}
            Some(_) => {}
            None => bad_header = Some(format!("malformed header line: {:?}", truncate(line, 80))),
        }
    }
    let Some(length) = content_length else {
        let message = bad_header.unwrap_or_else(|| "frame without Content-Length".to_owned());
        return Ok(Some(Incoming::Invalid {
            id: None,
            code: PARSE_ERROR,
            message,
        }));
    };
    let mut body = vec![0u8; length];
    if let Err(err) = reader.read_exact(&mut body) {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            return Ok(None);
        }
        return Err(err);
    }
    Ok(Some(parse_body(&body)))
}

const PARSE_ERROR: i32 = -32700;
const INVALID_REQUEST: i32 = -32600;

/// Reads one header line up to `\n`, never keeping more than `MAX_HEADER_LINE` bytes of it.
fn read_header_line(reader: &mut dyn BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok(if any {
                Some(String::from_utf8_lossy(&line).into_owned())
            } else {
                None
            });
        }
        any = true;
        let (consumed, done) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (available.len(), false),
        };
        let room = MAX_HEADER_LINE.saturating_sub(line.len());
        line.extend_from_slice(&available[..consumed.min(room)]);
        reader.consume(consumed);
        if done {
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// Classifies a body as a request, a response or a notification, as JSON-RPC 2.0 does.
pub(crate) fn parse_body(body: &[u8]) -> Incoming {
    let Ok(text) = std::str::from_utf8(body) else {
        return Incoming::Invalid {
            id: None,
            code: PARSE_ERROR,
            message: "body is not UTF-8".to_owned(),
        };
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            return Incoming::Invalid {
                id: None,
                code: PARSE_ERROR,
                message: format!("invalid JSON: {err}"),
            };
        }
    };
    let Value::Object(mut object) = value else {
        return Incoming::Invalid {
            id: None,
            code: INVALID_REQUEST,
            message: "a message must be a JSON object".to_owned(),
        };
    };
    let raw_id = object.remove("id");
    let invalid = |id: Option<Value>, message: &str| Incoming::Invalid {
        id: id.filter(|id| id.is_string() || id.is_number()),
        code: INVALID_REQUEST,
        message: message.to_owned(),
    };
    let id = match &raw_id {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(RequestId::from(id.clone())),
        Some(Value::Number(n)) => match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
            Some(n) => Some(RequestId::from(n)),
            None => return invalid(raw_id.clone(), "request id out of range"),
        },
        Some(_) => return invalid(None, "request id must be a number or a string"),
    };
    let params = object.remove("params").unwrap_or(Value::Null);
    match (object.remove("method"), id) {
        (Some(Value::String(method)), Some(id)) => {
            Incoming::Message(Message::Request(Request { id, method, params }))
        }
        (Some(Value::String(method)), None) => {
            if raw_id.is_some() {
                // `"id": null` on a request: answer with a null id rather than drop it.
                return invalid(None, "request id must not be null");
            }
            Incoming::Message(Message::Notification(Notification { method, params }))
        }
        (Some(_), _) => invalid(raw_id, "method must be a string"),
        (None, Some(id)) => {
            let result = object.remove("result");
            let error = object
                .remove("error")
                .and_then(|error| serde_json::from_value(error).ok());
            if result.is_none() && error.is_none() {
                return invalid(raw_id, "a response needs a result or an error");
            }
            Incoming::Message(Message::Response(Response { id, result, error }))
        }
        (None, None) => invalid(raw_id, "a message needs a method or an id"),
    }
}

/// Writes one frame and flushes.
pub(crate) fn write_frame(writer: &mut dyn Write, outgoing: &Outgoing) -> io::Result<()> {
    let body = match outgoing {
        Outgoing::Message(message) => {
            let mut value = serde_json::to_value(message)?;
            if let Value::Object(object) = &mut value {
                object.insert("jsonrpc".to_owned(), Value::from("2.0"));
            }
            serde_json::to_string(&value)?
        }
        Outgoing::RawError { id, code, message } => serde_json::to_string(&serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": code, "message": message},
        }))?,
    };
    write!(writer, "Content-Length: {}\r\n\r\n", body.len())?;
    writer.write_all(body.as_bytes())?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<String> {
        let mut reader = io::BufReader::new(input);
        let mut res = Vec::new();
        while let Some(incoming) = read_frame(&mut reader).unwrap() {
            res.push(match incoming {
                Incoming::Message(Message::Request(r)) => format!("request {} {}", r.id, r.method),
                Incoming::Message(Message::Notification(n)) => format!("notification {}", n.method),
                Incoming::Message(Message::Response(r)) => format!("response {}", r.id),
                Incoming::Invalid { id, code, .. } => format!("invalid {code} {id:?}"),
            });
        }
        res
    }

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn reads_good_and_bad_frames_and_keeps_going() {
        let input = [
            frame(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            frame("{not json"),
            "garbage line\r\n\r\n".to_owned(),
            frame("[1,2]"),
            frame(r#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#),
            frame(r#"{"jsonrpc":"2.0","id":"a","result":null}"#),
            frame(r#"{"jsonrpc":"2.0","method":"exit"}"#),
        ]
        .concat();
        let res = frames(input.as_bytes());
        assert_eq!(
            res,
            [
                "request 1 initialize",
                "invalid -32700 None",
                "invalid -32700 None",
                "invalid -32600 None",
                "invalid -32600 None",
                "response \"a\"",
                "notification exit",
            ]
        );
    }

    #[test]
    fn never_panics_on_random_bytes() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..2000 {
            let mut bytes = Vec::new();
            for _ in 0..(seed % 200) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(b"Content-Length: 12\r\n{}[]\"id\":1,method\xff"[(seed % 38) as usize]);
            }
            let _ = frames(&bytes);
        }
    }
}
