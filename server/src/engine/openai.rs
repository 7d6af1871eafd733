//! The `openai` engine: an OpenAI-compatible server (llama-server, vLLM, …) over HTTP.
//!
//! For teams that serve one big model to many editors. Punie renders the prompt itself (the
//! fine-tune needs its training text byte for byte), so this engine uses the raw-text
//! `/completions` endpoint, streamed as server-sent events, never `/chat/completions`.
//! Stop strings are sent to the server and also applied here, since servers differ in whether
//! they honour them in streams. Cancelling drops the connection, which stops the server too.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::stop::StopMatcher;
use super::{
    CancelFlag, Engine, EngineError, FinishReason, GenerateRequest, Generation, Timings,
    estimate_tokens,
};

/// A server that sends nothing for this long is considered gone.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct OpenAiEngine {
    completions_url: String,
    model: String,
    agent: ureq::Agent,
}

impl OpenAiEngine {
    /// `base_url` is the API root, e.g. `http://127.0.0.1:8080/v1`.
    pub fn new(base_url: &str, model: &str) -> OpenAiEngine {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .http_status_as_error(false)
            .build();
        OpenAiEngine {
            completions_url: format!("{}/completions", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    fn http_error(&self, reason: impl ToString) -> EngineError {
        EngineError::Http {
            url: self.completions_url.clone(),
            reason: reason.to_string(),
        }
    }
}

impl Engine for OpenAiEngine {
    fn describe(&self) -> String {
        format!("openai:{} model {}", self.completions_url, self.model)
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, EngineError> {
        let started = Instant::now();
        let sampling = &request.sampling;
        let mut body = json!({
            "model": self.model,
            "prompt": request.prompt,
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
        let response = self
            .agent
            .post(&self.completions_url)
            .send_json(&body)
            .map_err(|e| self.http_error(e))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.into_body().read_to_string().unwrap_or_default();
            let detail: String = detail.chars().take(300).collect();
            return Err(self.http_error(format!("HTTP {status}: {detail}")));
        }
        let mut reader = BufReader::new(response.into_body().into_reader());
        let mut stops = StopMatcher::new(&sampling.stop);
        let mut res = Generation::empty(0);
        let mut first_text_at = None;
        let mut line = String::new();
        let mut stopped_here = false;
        loop {
            if cancel.is_cancelled() {
                res.finish = FinishReason::Cancelled;
                break;
            }
            line.clear();
            let n_read = reader
                .read_line(&mut line)
                .map_err(|e| self.http_error(e))?;
            if n_read == 0 {
                break;
            }
            let Some(data) = line.trim_end().strip_prefix("data:").map(str::trim) else {
                continue;
            };
            if data == "[DONE]" {
                break;
            }
            let event: Value = serde_json::from_str(data)
                .map_err(|e| self.http_error(format!("bad event: {e}")))?;
            if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
                res.n_prompt = usage["prompt_tokens"].as_u64().unwrap_or(0) as usize;
                res.n_generated = usage["completion_tokens"].as_u64().unwrap_or(0) as usize;
            }
            let Some(choice) = event["choices"].get(0) else {
                continue;
            };
            let piece = choice["text"].as_str().unwrap_or("");
            if !piece.is_empty() && !stopped_here {
                first_text_at.get_or_insert_with(|| started.elapsed());
                let step = stops.push(piece);
                if !step.emit.is_empty() {
                    on_text(&step.emit);
                    res.text.push_str(&step.emit);
                }
                if step.stopped {
                    // Keep reading only to pick up the usage event; stop at once if cancelled.
                    stopped_here = true;
                    res.finish = FinishReason::Stop;
                }
            }
            if choice["finish_reason"].as_str() == Some("length") && !stopped_here {
                res.finish = FinishReason::Length;
            }
        }
        if !stopped_here && res.finish != FinishReason::Cancelled {
            let rest = stops.finish();
            if !rest.is_empty() {
                on_text(&rest);
                res.text.push_str(&rest);
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Sampling;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-shot HTTP server on loopback that answers with `body` as an event stream and
    /// returns the request it received.
    fn serve_once(status: &str, body: String) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let status = status.to_owned();
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
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
            String::from_utf8_lossy(&request).to_string()
        });
        (url, server)
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
            turn: 0,
            sampling: Sampling::default(),
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
        let (url, server) = serve_once("200 OK", body);
        let mut engine = OpenAiEngine::new(&url, "m");
        let mut streamed = Vec::new();
        let generation = engine
            .generate(&request(), &CancelFlag::default(), &mut |t| {
                streamed.push(t.to_owned())
            })
            .unwrap();
        assert_eq!(generation.text, "Hello world");
        assert_eq!(streamed.concat(), "Hello world");
        assert_eq!(generation.finish, FinishReason::Stop);
        let sent = server.join().unwrap();
        assert!(sent.starts_with("POST /v1/completions"), "{sent}");
        let body: Value =
            serde_json::from_str(&sent[sent.find("\r\n\r\n").unwrap() + 4..]).unwrap();
        assert_eq!(
            (body["stream"].as_bool(), body["model"].as_str()),
            (Some(true), Some("m"))
        );
        assert_eq!(body["prompt"].as_str(), Some(request().prompt.as_str()));
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
        let (url, server) = serve_once("200 OK", body);
        let generation = OpenAiEngine::new(&url, "m")
            .generate(&request(), &CancelFlag::default(), &mut |_| {})
            .unwrap();
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
    fn http_errors_are_clear() {
        let (url, server) = serve_once("404 Not Found", "model not found".into());
        let err = OpenAiEngine::new(&url, "m")
            .generate(&request(), &CancelFlag::default(), &mut |_| {})
            .unwrap_err();
        server.join().unwrap();
        let message = err.to_string();
        assert!(
            message.contains("HTTP 404") && message.contains("model not found"),
            "{message}"
        );
    }

    #[test]
    fn unreachable_server_is_an_error_not_a_hang() {
        // Bind then drop, so the port is closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut engine = OpenAiEngine::new(&format!("http://127.0.0.1:{port}/v1"), "m");
        let err = engine
            .generate(&request(), &CancelFlag::default(), &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, EngineError::Http { .. }), "{err}");
    }

    #[test]
    fn cancel_stops_reading() {
        let body = [event("a"), event("b"), "data: [DONE]\n\n".into()].concat();
        let (url, server) = serve_once("200 OK", body);
        let cancel = CancelFlag::default();
        let generation = OpenAiEngine::new(&url, "m")
            .generate(&request(), &cancel.clone(), &mut |_| cancel.cancel())
            .unwrap();
        server.join().unwrap();
        assert_eq!(
            (generation.finish, generation.text.as_str()),
            (FinishReason::Cancelled, "a")
        );
    }
}
