//! The `openai` engine: an OpenAI-compatible server (llama-server, vLLM, …) over HTTP.
//!
//! For teams that serve one big model to many editors. Punie renders the prompt itself (the
//! fine-tune needs its training text byte for byte), so this engine uses the raw-text
//! `/completions` endpoint, streamed as server-sent events, never `/chat/completions`.
//! Stop strings are sent to the server and also applied here, since servers differ in whether
//! they honour them in streams.
//!
//! **What a server may not do to a run.** The answer must be an HTTP 2xx with
//! `Content-Type: text/event-stream` (or `application/json`, a server that ignored
//! `"stream": true`); anything else, such as a proxy's HTML login page with status 200, is an
//! error that names the status, the type and the first bytes, never an empty answer. A stream
//! must end with `[DONE]` or a `finish_reason`; one that stops short is an error, not a complete
//! answer. Lines and the body are bounded, a silent server is given up on after
//! [`EngineConfig::idle_timeout`], and a cancel, the handle's drop or the engine deadline close
//! the socket within a few milliseconds (`http.rs`).
//!
//! What a message's words spell reaches the server as text: the turn markers in the ranges
//! the prompt quotes are broken (`quoting.rs`), since the server parses control tokens' text
//! anywhere in a prompt.
//!
//! The context size of a server is not part of the API: `PUNIE_CTX_SIZE` states it, and
//! without it the agent cannot fit conversations to it.

mod http;
mod quoting;

use std::time::Instant;

use serde_json::{Value, json};

use self::http::{HttpError, Limits, Response, Url, printable};
use super::stop::StopMatcher;
use super::{
    CancelFlag, DEFAULT_IDLE_TIMEOUT, Engine, EngineConfig, EngineError, FinishReason,
    GenerateRequest, Generation, Timings, estimate_tokens,
};

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// One server-sent event line: a completion chunk is a few hundred bytes.
const MAX_LINE: usize = 1024 * 1024;
/// A whole response: a few thousand tokens of stream are well under a megabyte.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How much of an error body goes into the message.
const DETAIL_CHARS: usize = 300;

pub struct OpenAiEngine {
    url: Url,
    model: String,
    limits: Limits,
    n_ctx: Option<usize>,
}

impl OpenAiEngine {
    /// `base_url` is the API root, e.g. `http://127.0.0.1:8080/v1`.
    pub fn new(
        base_url: &str,
        model: &str,
        config: &EngineConfig,
    ) -> Result<OpenAiEngine, EngineError> {
        let url = Url::parse(base_url).map_err(|reason| EngineError::Http {
            url: base_url.to_owned(),
            reason,
        })?;
        Ok(OpenAiEngine {
            url,
            model: model.to_owned(),
            limits: Limits {
                connect_timeout: CONNECT_TIMEOUT,
                idle_timeout: config.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
                max_line: MAX_LINE,
                max_body: MAX_BODY,
            },
            n_ctx: config.n_ctx.map(|n| n as usize),
        })
    }

    fn http_error(&self, reason: impl ToString) -> EngineError {
        EngineError::Http {
            url: self.url.display("/completions"),
            reason: reason.to_string(),
        }
    }

    /// Reads a `text/event-stream` body into `res`; false when the stop flag ended it.
    fn read_stream(
        &self,
        response: &mut Response,
        stops: &mut StopMatcher,
        res: &mut Generation,
        on_text: &mut dyn FnMut(&str),
        first_text: &mut dyn FnMut(),
    ) -> Result<(), HttpError> {
        let mut finished = false;
        let mut stopped_here = false;
        while let Some(line) = response.line(self.limits.max_line)? {
            let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                // Blank lines end events; `:` comments, `event:`, `id:`, `retry:` carry nothing.
                continue;
            };
            if data == "[DONE]" {
                finished = true;
                break;
            }
            let event: Value = serde_json::from_str(data).map_err(|err| {
                HttpError::Failed(format!(
                    "an event is not JSON ({err}): {}",
                    printable(data, 80)
                ))
            })?;
            if let Some(error) = event.get("error") {
                let message = error["message"]
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_owned);
                return Err(HttpError::Failed(format!(
                    "the server reported an error: {}",
                    printable(&message, DETAIL_CHARS)
                )));
            }
            read_usage(&event, res);
            let Some(choice) = event["choices"].get(0) else {
                continue;
            };
            let piece = choice["text"].as_str().unwrap_or("");
            if !piece.is_empty() && !stopped_here {
                first_text();
                let step = stops.push(piece);
                if !step.emit.is_empty() {
                    on_text(&step.emit);
                    res.text.push_str(&step.emit);
                }
                if step.stopped {
                    // Keep reading only to pick up the usage event and the end.
                    stopped_here = true;
                    res.finish = FinishReason::Stop;
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                finished = true;
                if reason == "length" && !stopped_here {
                    res.finish = FinishReason::Length;
                }
            }
        }
        if !finished {
            return Err(HttpError::Failed(
                "the stream ended before the completion did (no finish_reason, no [DONE])"
                    .to_owned(),
            ));
        }
        if !stopped_here {
            let rest = stops.finish();
            if !rest.is_empty() {
                on_text(&rest);
                res.text.push_str(&rest);
            }
        }
        Ok(())
    }

    /// Reads a whole `application/json` completion (a server that does not stream) into `res`.
    fn read_json(
        &self,
        response: &mut Response,
        stops: &mut StopMatcher,
        res: &mut Generation,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(), HttpError> {
        let body = response.text(self.limits.max_body)?;
        let value: Value = serde_json::from_str(&body).map_err(|err| {
            HttpError::Failed(format!(
                "the JSON answer does not parse ({err}): {}",
                printable(&body, 80)
            ))
        })?;
        let choice = value["choices"].get(0).ok_or_else(|| {
            HttpError::Failed(format!(
                "the JSON answer has no choices: {}",
                printable(&body, 80)
            ))
        })?;
        let text = choice["text"].as_str().ok_or_else(|| {
            HttpError::Failed(
                "the JSON answer's choice has no text (is this /chat/completions?)".to_owned(),
            )
        })?;
        read_usage(&value, res);
        let step = stops.push(text);
        let mut kept = step.emit;
        if step.stopped {
            res.finish = FinishReason::Stop;
        } else {
            kept.push_str(&stops.finish());
            if choice["finish_reason"].as_str() == Some("length") {
                res.finish = FinishReason::Length;
            }
        }
        if !kept.is_empty() {
            on_text(&kept);
            res.text = kept;
        }
        Ok(())
    }
}

fn read_usage(event: &Value, res: &mut Generation) {
    if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
        res.n_prompt = usage["prompt_tokens"].as_u64().unwrap_or(0) as usize;
        res.n_generated = usage["completion_tokens"].as_u64().unwrap_or(0) as usize;
    }
}

impl Engine for OpenAiEngine {
    fn describe(&self) -> String {
        format!("openai:{} model {}", self.url.display(""), self.model)
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, EngineError> {
        let started = Instant::now();
        let sampling = &request.sampling;
        let prompt = quoting::break_quoted_markers(&request.prompt, &request.quoted);
        let mut body = json!({
            "model": self.model,
            "prompt": prompt,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
            "stream": true,
            "stream_options": {"include_usage": true},
            // llama-server: keep the prompt's KV cache for the next turn of the conversation.
            "cache_prompt": true,
        });
        if !sampling.stop.is_empty() {
            // The OpenAI API accepts at most 4 stop strings.
            body["stop"] = json!(sampling.stop.iter().take(4).collect::<Vec<_>>());
        }
        if sampling.top_k > 0 {
            body["top_k"] = json!(sampling.top_k);
        }
        let mut res = Generation::empty(0);
        let mut stops = StopMatcher::new(&sampling.stop);
        let mut first_text_at = None;
        let read = http::post_json(
            &self.url,
            "/completions",
            body.to_string().as_bytes(),
            cancel,
            self.limits,
        )
        .and_then(|mut response| {
            if !(200..300).contains(&response.status) {
                let detail = response.text(DETAIL_CHARS * 4).unwrap_or_default();
                return Err(HttpError::Failed(format!(
                    "HTTP {} {}: {}",
                    response.status,
                    response.reason.trim(),
                    printable(detail.trim(), DETAIL_CHARS)
                )));
            }
            match response.content_type.clone().as_str() {
                "text/event-stream" => self.read_stream(
                    &mut response,
                    &mut stops,
                    &mut res,
                    on_text,
                    &mut || {
                        first_text_at.get_or_insert_with(|| started.elapsed());
                    },
                ),
                "application/json" => {
                    self.read_json(&mut response, &mut stops, &mut res, on_text)?;
                    first_text_at = Some(started.elapsed());
                    Ok(())
                }
                other => {
                    let begins = response.text(DETAIL_CHARS * 4).unwrap_or_default();
                    Err(HttpError::Failed(format!(
                        "HTTP {} with Content-Type {}, not an event stream: is {} the API root (…/v1)? The body begins {}",
                        response.status,
                        if other.is_empty() { "(none)" } else { other },
                        self.url.display(""),
                        printable(begins.trim(), DETAIL_CHARS)
                    )))
                }
            }
        });
        match read {
            Ok(()) => {}
            Err(HttpError::Stopped) => res.finish = FinishReason::Cancelled,
            Err(HttpError::Failed(reason)) => return Err(self.http_error(reason)),
        }
        // Servers that stream no usage (llama-cpp-python's) get the estimate; servers have no
        // common tokenize endpoint.
        if res.n_prompt == 0 {
            res.n_prompt = estimate_tokens(&request.prompt);
        }
        if res.n_generated == 0 {
            res.n_generated = estimate_tokens(&res.text);
        }
        res.n_evaluated = res.n_prompt;
        let ttft = first_text_at.unwrap_or_else(|| started.elapsed());
        res.timings = Timings {
            prefill: ttft,
            time_to_first_token: ttft,
            decode: started.elapsed().saturating_sub(ttft),
        };
        Ok(res)
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EngineError> {
        Ok(estimate_tokens(text))
    }

    fn context_size(&self) -> Option<usize> {
        self.n_ctx
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;
    use crate::engine::Sampling;

    /// A one-shot HTTP server on loopback: reads one request, lets `respond` write to the
    /// socket, and returns the request it received.
    fn serve_once(
        respond: impl FnOnce(&mut TcpStream) + Send + 'static,
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read headers, then the body by Content-Length.
            loop {
                let n = stream.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(header_end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= header_end + 4 + length {
                        break;
                    }
                }
            }
            respond(&mut stream);
            String::from_utf8_lossy(&request).to_string()
        });
        (url, server)
    }

    /// `status`, `content_type` and `body` sized by Content-Length.
    fn reply(status: &str, content_type: &str, body: String) -> impl FnOnce(&mut TcpStream) {
        let status = status.to_owned();
        let content_type = content_type.to_owned();
        move |stream| {
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    }

    fn event(text: &str) -> String {
        format!(
            "data: {}\n\n",
            json!({"choices": [{"text": text, "finish_reason": null}]})
        )
    }

    fn request() -> GenerateRequest {
        GenerateRequest {
            prompt: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n".into(),
            quoted: Vec::new(),
            turn: 0,
            sampling: Sampling::default(),
        }
    }

    fn engine(url: &str) -> OpenAiEngine {
        OpenAiEngine::new(url, "m", &EngineConfig::default()).unwrap()
    }

    fn generate(url: &str) -> Result<Generation, EngineError> {
        engine(url).generate(&request(), &CancelFlag::default(), &mut |_| {})
    }

    #[track_caller]
    fn check_error(result: Result<Generation, EngineError>, expected: &[&str]) {
        let message = result.unwrap_err().to_string();
        for part in expected {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }

    #[test]
    fn streams_text_and_applies_stop_strings_across_events() {
        let body = [
            event("Hello"),
            event(" world<|im"),
            event("_end|>ignored"),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let (url, server) = serve_once(reply("200 OK", "text/event-stream", body));
        let mut streamed = Vec::new();
        let generation = engine(&url)
            .generate(&request(), &CancelFlag::default(), &mut |t| {
                streamed.push(t.to_owned())
            })
            .unwrap();
        assert_eq!(generation.text, "Hello world");
        assert_eq!(streamed.concat(), "Hello world");
        assert_eq!(generation.finish, FinishReason::Stop);
        let sent = server.join().unwrap();
        assert!(
            sent.starts_with("POST /v1/completions HTTP/1.1\r\n"),
            "{sent}"
        );
        let body: Value =
            serde_json::from_str(&sent[sent.find("\r\n\r\n").unwrap() + 4..]).unwrap();
        assert_eq!(
            (body["stream"].as_bool(), body["model"].as_str()),
            (Some(true), Some("m"))
        );
        assert_eq!(body["prompt"].as_str(), Some(request().prompt.as_str()));
    }

    #[test]
    fn chunked_streams_are_decoded() {
        let body = [event("a"), event("b"), "data: [DONE]\n\n".into()].concat();
        let (url, server) = serve_once(move |stream| {
            let mut response = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
            // Chunks that split events and lines anywhere.
            for piece in body.as_bytes().chunks(7) {
                response.push_str(&format!(
                    "{:x}\r\n{}\r\n",
                    piece.len(),
                    String::from_utf8_lossy(piece)
                ));
            }
            response.push_str("0\r\n\r\n");
            let _ = stream.write_all(response.as_bytes());
        });
        let generation = generate(&url).unwrap();
        server.join().unwrap();
        assert_eq!(generation.text, "ab");
    }

    #[test]
    fn usage_and_length_are_reported() {
        let body = [
            format!(
                "data: {}\n\n",
                json!({"choices": [{"text": "abc", "finish_reason": "length"}]})
            ),
            format!(
                "data: {}\n\n",
                json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}})
            ),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let (url, server) = serve_once(reply("200 OK", "text/event-stream", body));
        let generation = generate(&url).unwrap();
        server.join().unwrap();
        assert_eq!(
            (
                generation.finish,
                generation.n_prompt,
                generation.n_generated
            ),
            (FinishReason::Length, 12, 3)
        );
    }

    #[test]
    fn a_server_that_does_not_stream_is_read_whole() {
        let body = json!({"choices": [{"text": "whole<|im_end|>x", "finish_reason": "stop"}]});
        let (url, server) = serve_once(reply("200 OK", "application/json", body.to_string()));
        let generation = generate(&url).unwrap();
        server.join().unwrap();
        assert_eq!(
            (generation.text.as_str(), generation.finish),
            ("whole", FinishReason::Stop)
        );
    }

    #[test]
    fn http_errors_are_clear() {
        let (url, server) = serve_once(reply(
            "404 Not Found",
            "text/plain",
            "model not found".into(),
        ));
        check_error(generate(&url), &["HTTP 404 Not Found", "model not found"]);
        server.join().unwrap();
    }

    #[test]
    fn an_html_page_with_200_is_an_error_not_an_empty_answer() {
        let page = "<html><body>Please log in</body></html>".to_owned();
        let (url, server) = serve_once(reply("200 OK", "text/html", page));
        check_error(
            generate(&url),
            &[
                "HTTP 200 with Content-Type text/html",
                "/v1",
                "<html><body>Please log in",
            ],
        );
        server.join().unwrap();
    }

    #[test]
    fn a_stream_that_stops_short_is_an_error() {
        let (url, server) = serve_once(reply("200 OK", "text/event-stream", event("half")));
        check_error(
            generate(&url),
            &["the stream ended before the completion did"],
        );
        server.join().unwrap();
        let (url, server) = serve_once(reply(
            "200 OK",
            "text/event-stream",
            "data: {oops\n\n".into(),
        ));
        check_error(generate(&url), &["an event is not JSON", "{oops"]);
        server.join().unwrap();
        let error = format!(
            "data: {}\n\n",
            json!({"error": {"message": "out of memory"}})
        );
        let (url, server) = serve_once(reply("200 OK", "text/event-stream", error));
        check_error(
            generate(&url),
            &["the server reported an error", "out of memory"],
        );
        server.join().unwrap();
    }

    #[test]
    fn a_body_without_line_breaks_is_bounded() {
        let (url, server) = serve_once(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
            let block = vec![b'x'; 64 * 1024];
            // Far more than the line limit; the client gives up and closes the socket.
            for _ in 0..64 {
                if stream.write_all(&block).is_err() {
                    break;
                }
            }
        });
        check_error(generate(&url), &["without a line break"]);
        server.join().unwrap();
    }

    #[test]
    fn unreachable_server_is_an_error_not_a_hang() {
        // Bind then drop, so the port is closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = generate(&format!("http://127.0.0.1:{port}/v1")).unwrap_err();
        assert!(matches!(err, EngineError::Http { .. }), "{err}");
    }

    /// Sends one event, then holds the connection open without a byte until the client closes.
    fn stall_after_one_event(stream: &mut TcpStream) {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
        let _ = stream.write_all(event("a").as_bytes());
        let mut byte = [0u8; 1];
        // Returns when the client closes its end.
        let _ = stream.read(&mut byte);
    }

    #[test]
    fn cancel_during_a_stall_closes_the_connection_at_once() {
        let (url, server) = serve_once(stall_after_one_event);
        let cancel = CancelFlag::default();
        let canceller = cancel.clone();
        let cancelled_at = std::sync::Arc::new(std::sync::Mutex::new(None));
        let cancelled_at_writer = cancelled_at.clone();
        let generation = engine(&url)
            .generate(&request(), &cancel, &mut move |_| {
                let canceller = canceller.clone();
                let at = cancelled_at_writer.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    *at.lock().unwrap() = Some(Instant::now());
                    canceller.cancel();
                });
            })
            .unwrap();
        let latency = cancelled_at.lock().unwrap().unwrap().elapsed();
        assert_eq!(
            (generation.finish, generation.text.as_str()),
            (FinishReason::Cancelled, "a")
        );
        // Generous for a loaded machine; what it catches is waiting out the stall (the idle
        // timeout, two minutes).
        assert!(latency < Duration::from_secs(2), "{latency:?}");
        // The server saw the connection close.
        server.join().unwrap();
    }

    #[test]
    fn a_silent_server_is_given_up_on() {
        let (url, server) = serve_once(stall_after_one_event);
        let config = EngineConfig {
            idle_timeout: Some(Duration::from_millis(300)),
            ..EngineConfig::default()
        };
        let started = Instant::now();
        let err = OpenAiEngine::new(&url, "m", &config)
            .unwrap()
            .generate(&request(), &CancelFlag::default(), &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("sent nothing for 0.3 s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        server.join().unwrap();
    }
}
