//! ACP's framing: one JSON-RPC 2.0 message per line on stdin and stdout. A line that is not
//! JSON, not an object or too long is answered with a JSON-RPC error and reading goes on; a
//! message is classified as a request, a notification or a response here, once.

use std::io::{BufRead, Write};

use serde_json::{Value, json};

/// The longest line read: a prompt can embed whole files, but not without bound.
pub(crate) const MAX_LINE_BYTES: usize = 32 * 1024 * 1024;

/// JSON-RPC error codes.
pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;
pub(crate) const INTERNAL_ERROR: i64 = -32603;

/// One message from the client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    Response {
        id: Value,
        result: Result<Value, Value>,
    },
    /// Not a message: answered with this error (`id` null when it could not be read).
    Invalid {
        id: Value,
        code: i64,
        message: String,
    },
}

/// Reads the next line; `None` at the end of input. Blank lines are skipped.
pub(crate) fn read_message(input: &mut dyn BufRead) -> std::io::Result<Option<Incoming>> {
    loop {
        let mut line = Vec::new();
        let n_read = std::io::Read::take(&mut *input, MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n_read == 0 {
            return Ok(None);
        }
        if line.len() > MAX_LINE_BYTES && !line.ends_with(b"\n") {
            // Skip the rest of the line, reading in bounded pieces.
            loop {
                let buffer = input.fill_buf()?;
                if buffer.is_empty() {
                    break;
                }
                match buffer.iter().position(|&b| b == b'\n') {
                    Some(idx) => {
                        input.consume(idx + 1);
                        break;
                    }
                    None => {
                        let n = buffer.len();
                        input.consume(n);
                    }
                }
            }
            return Ok(Some(Incoming::Invalid {
                id: Value::Null,
                code: INVALID_REQUEST,
                message: format!("message longer than {MAX_LINE_BYTES} bytes"),
            }));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return Ok(Some(classify(&line)));
    }
}

fn classify(line: &[u8]) -> Incoming {
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(err) => {
            return Incoming::Invalid {
                id: Value::Null,
                code: PARSE_ERROR,
                message: format!("not JSON: {err}"),
            };
        }
    };
    let Value::Object(mut object) = value else {
        return Incoming::Invalid {
            id: Value::Null,
            code: INVALID_REQUEST,
            message: "a message must be a JSON object".to_owned(),
        };
    };
    let id = object.remove("id");
    let params = object.remove("params").unwrap_or(Value::Null);
    match (object.remove("method"), id) {
        (Some(Value::String(method)), Some(id)) if valid_id(&id) => {
            Incoming::Request { id, method, params }
        }
        (Some(Value::String(method)), None) => Incoming::Notification { method, params },
        (None, Some(id)) if object.contains_key("result") || object.contains_key("error") => {
            let result = match object.remove("error") {
                Some(error) => Err(error),
                None => Ok(object.remove("result").unwrap_or(Value::Null)),
            };
            Incoming::Response { id, result }
        }
        (_, id) => Incoming::Invalid {
            id: id.filter(valid_id).unwrap_or(Value::Null),
            code: INVALID_REQUEST,
            message: "expected a request, a notification or a response".to_owned(),
        },
    }
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// Writes one message as one line.
pub(crate) fn write_message(output: &mut dyn Write, message: &Value) -> std::io::Result<()> {
    serde_json::to_writer(&mut *output, message)?;
    output.write_all(b"\n")?;
    output.flush()
}

pub(crate) fn response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub(crate) fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

pub(crate) fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

pub(crate) fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expect: &[Incoming]) {
        let mut reader = std::io::Cursor::new(input.as_bytes().to_vec());
        let mut res = Vec::new();
        while let Some(message) = read_message(&mut reader).unwrap() {
            res.push(message);
        }
        assert_eq!(res, expect);
    }

    #[test]
    fn every_line_is_a_message_or_an_error() {
        check(
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}\n\n\
             not json\n[1]\n{\"jsonrpc\":\"2.0\",\"method\":\"session/cancel\"}\n\
             {\"id\":\"a\",\"result\":{\"x\":1}}\n{\"id\":2}",
            &[
                Incoming::Request {
                    id: json!(1),
                    method: "initialize".to_owned(),
                    params: json!({}),
                },
                Incoming::Invalid {
                    id: Value::Null,
                    code: PARSE_ERROR,
                    message: "not JSON: expected ident at line 1 column 2".to_owned(),
                },
                Incoming::Invalid {
                    id: Value::Null,
                    code: INVALID_REQUEST,
                    message: "a message must be a JSON object".to_owned(),
                },
                Incoming::Notification {
                    method: "session/cancel".to_owned(),
                    params: Value::Null,
                },
                Incoming::Response {
                    id: json!("a"),
                    result: Ok(json!({"x": 1})),
                },
                Incoming::Invalid {
                    id: json!(2),
                    code: INVALID_REQUEST,
                    message: "expected a request, a notification or a response".to_owned(),
                },
            ],
        );
    }

    #[test]
    fn an_overlong_line_is_skipped_and_reading_goes_on() {
        let input = format!(
            "{}\n{{\"jsonrpc\":\"2.0\",\"method\":\"x\"}}\n",
            "a".repeat(MAX_LINE_BYTES + 10)
        );
        let mut reader = std::io::Cursor::new(input.into_bytes());
        assert!(matches!(
            read_message(&mut reader).unwrap(),
            Some(Incoming::Invalid {
                code: INVALID_REQUEST,
                ..
            })
        ));
        assert!(matches!(
            read_message(&mut reader).unwrap(),
            Some(Incoming::Notification { .. })
        ));
    }
}
