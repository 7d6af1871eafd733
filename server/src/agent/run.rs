//! The run loop: render → generate (streaming) → parse → run the snippets → append the tool
//! responses → generate again, until the model answers without a tool call or the turn limit.
//!
//! **Invariant:** the conversation is only ever appended to, and the assistant's raw output is
//! stored verbatim, so the prompt of turn k+1 starts with the prompt of turn k followed by the
//! turn-k output. Engines with a KV cache then evaluate only the new tokens. The loop checks the
//! invariant each turn and records it in the transcript (`prefix_reused`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cancel::{CancelFlag, Interrupted};
use crate::engine::{
    ContextWindow, EngineHandle, FinishReason, GenerateRequest, Generation, Sampling, StreamEvent,
    TokenCounter,
};
use crate::prompt::{self, Message, Prompt, Role};
use crate::sandbox::ToolHost;
use crate::toolcall;

use super::context::{self, Budget};
use super::event::{RunEvent, TurnStats};
use super::executor::{CodeRunner, ToolActivity, error_line};
use super::feedback;
use super::transcript::Transcript;
use super::types::{
    RunOutcome, RunRequest, RunStatus, Strategy, ToolCallRecord, ToolUse, Truncation,
};

/// A tool output's cap when the engine does not say how large its context is (an
/// OpenAI-compatible server without `PUNIE_CTX_SIZE`): 64 KiB of text, by the estimate.
const OUTPUT_CAP_WITHOUT_CONTEXT: usize = 16 * 1024;
/// A tool output's cap however full the prompt is: the note about the cut, and a little.
const MIN_OUTPUT_CAP: usize = 160;

/// Runs one question to its end. Never panics on model output; engine failures end the run
/// with [`RunStatus::Failed`], cancellation (which wakes the wait on the engine at once, and
/// is seen by the sandbox while a snippet runs) with [`RunStatus::Cancelled`], a turn cut
/// by the token cap or the context with [`RunStatus::Truncated`], the turn limit with
/// [`RunStatus::TurnLimit`]. The last event is always `Answer` (done or the turn limit's
/// note), `Truncated`, `Cancelled` or `Failed`.
pub fn run(
    engine: &EngineHandle,
    runner: &mut dyn CodeRunner,
    host: &dyn ToolHost,
    cancel: &CancelFlag,
    request: RunRequest,
    on_event: &mut dyn FnMut(RunEvent),
) -> RunOutcome {
    run_with_strategy(
        engine,
        runner,
        host,
        cancel,
        request,
        Strategy::CodeMode,
        on_event,
    )
}

/// [`run`] with a choice of [`Strategy`]. With [`Strategy::ToolPerTurn`] only the first call of
/// a turn runs and it must name a tool directly (`read_file`, `write_file`, `run_command`);
/// `execute_code` and further calls go back to the model as rejected calls, so a transcript
/// that runs under this strategy really took one tool call per turn.
pub fn run_with_strategy(
    engine: &EngineHandle,
    runner: &mut dyn CodeRunner,
    host: &dyn ToolHost,
    cancel: &CancelFlag,
    request: RunRequest,
    strategy: Strategy,
    on_event: &mut dyn FnMut(RunEvent),
) -> RunOutcome {
    let mut state = RunState::new(request);
    state.strategy = strategy;
    on_event(RunEvent::Started {
        run_id: state.outcome.run_id.clone(),
        session_id: state.outcome.conversation.session_id().to_owned(),
    });
    let end = state.run_turns(engine, runner, host, cancel, on_event);
    state.finish(end, on_event)
}

/// How the turns ended, before the outcome is sealed.
enum End {
    Answer(String),
    /// The turn limit, with Punie's note saying so.
    TurnLimit(String, usize),
    Truncated(String, Truncation),
    Cancelled(String),
    Failed(String),
}

struct RunState {
    request: RunRequest,
    outcome: RunOutcome,
    transcript: Transcript,
    started: Instant,
    /// Where this run's question is in the conversation (earlier messages may be dropped).
    question: usize,
    /// The engine's context, once it has loaded; `None` when it does not say.
    window: Option<ContextWindow>,
    /// The previous turn's prompt followed by its output; `None` after context was trimmed.
    previous: Option<String>,
    /// Whether the front end has been told that the model's chat template is not used.
    template_fallback_told: bool,
    /// The log said that the template hides where the messages' words are.
    quoting_unknown_told: bool,
    strategy: Strategy,
}

impl RunState {
    fn new(request: RunRequest) -> RunState {
        let transcript = Transcript::open(request.transcript_dir.as_deref(), &request.run_id);
        let mut conversation = request.conversation.clone();
        let continued_messages = conversation.messages().len();
        conversation.set_system_prompt(prompt::system_prompt(&request.profile));
        let question = conversation.messages().len();
        conversation.push(Role::User, request.question.clone());
        let outcome = RunOutcome {
            transcript: transcript.path().map(ToOwned::to_owned),
            ..RunOutcome::new(&request.run_id, RunStatus::Done, conversation)
        };
        let mut state = RunState {
            request,
            outcome,
            transcript,
            started: Instant::now(),
            question,
            window: None,
            previous: None,
            template_fallback_told: false,
            quoting_unknown_told: false,
            strategy: Strategy::CodeMode,
        };
        state.transcript.write(
            "run",
            json!({
                "session_id": state.outcome.conversation.session_id(),
                "question": state.request.question,
                "profile": state.request.profile.name(),
                "max_turns": state.request.max_turns,
                "continued_messages": continued_messages,
            }),
        );
        state
    }

    fn run_turns(
        &mut self,
        engine: &EngineHandle,
        runner: &mut dyn CodeRunner,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> End {
        let max_turns = self.request.max_turns.max(1);
        // The prompt is fitted to the engine's context, so the engine must have loaded.
        if engine.load_state().is_none() {
            on_event(RunEvent::LoadingModel);
        }
        match engine.wait_ready_unless(cancel) {
            None => return End::Cancelled(String::new()),
            Some(Err(err)) => return End::Failed(err.to_string()),
            Some(Ok(_)) => self.window = engine.context_window(),
        }
        loop {
            if cancel.is_cancelled() {
                return End::Cancelled(String::new());
            }
            if self.outcome.turns == max_turns {
                return End::TurnLimit(self.turn_limit_answer(max_turns), max_turns);
            }
            self.outcome.turns += 1;
            let turn = self.outcome.turns;
            let prompt = match self.prepare_prompt(turn, on_event) {
                Ok(prompt) => prompt,
                Err(reason) => return End::Failed(reason),
            };
            on_event(RunEvent::TurnStarted { turn });
            let generation = match self.generate(engine, &prompt, turn, cancel, on_event) {
                Generated::Done(generation) => generation,
                Generated::Cancelled(partial) => {
                    return End::Cancelled(toolcall::parse(&partial).text.trim().to_owned());
                }
                Generated::Failed(reason) => return End::Failed(reason),
            };
            let raw = clip_invented_response(&generation.text).to_owned();
            self.record_generation(turn, &generation, &raw, on_event);
            self.outcome.conversation.push(Role::Assistant, raw.clone());
            self.previous = Some(prompt.text + &raw);

            let parsed = toolcall::parse(&raw);
            // A cut turn may hold half a call (the parser would repair its closing tags and run
            // it) or half a code block: nothing in it runs. Text clipped after a call was the
            // model inventing its result, so the cut fell in what was thrown away.
            let clipped = raw.len() < generation.text.len();
            if let Some(truncation) = truncation(&generation, &self.request.sampling)
                && !clipped
            {
                return End::Truncated(parsed.text.trim().to_owned(), truncation);
            }
            // Notes are repairs the parser made (a missing closing tag): the call still runs.
            let problems: Vec<String> = parsed.hard_errors().map(|p| p.message.clone()).collect();
            if parsed.calls.is_empty() && problems.is_empty() {
                return End::Answer(parsed.text.trim().to_owned());
            }
            for (call_idx, call) in parsed.calls.iter().enumerate() {
                if let Some(problem) = strategy_problem(self.strategy, call_idx, &call.name) {
                    self.reject(turn, &problem, on_event);
                    continue;
                }
                match feedback::code_for_call(&call.name, &call.arguments) {
                    Ok(code) => {
                        self.run_snippet(turn, &call.name, code, runner, host, cancel, on_event)
                    }
                    Err(problem) => self.reject(turn, &problem, on_event),
                }
                if cancel.is_cancelled() {
                    return End::Cancelled(parsed.text.trim().to_owned());
                }
            }
            if !problems.is_empty() {
                self.reject(turn, &problems.join(" "), on_event);
            }
        }
    }

    /// The prompt of this turn: the conversation fitted to the context, rendered, checked
    /// against the invariant and written to the transcript. An error when even the system
    /// prompt and the question do not fit.
    fn prepare_prompt(
        &mut self,
        turn: usize,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<Prompt, String> {
        // The prompt fitting the context measured, when that is the conversation as it stands.
        let mut measured = None;
        if let Some(window) = &self.window {
            let budget = Budget::new(window.n_ctx, self.request.sampling.max_tokens);
            let (profile, counter) = (&self.request.profile, &window.counter);
            let trim = context::fit(
                self.outcome.conversation.messages_mut(),
                &mut self.question,
                budget,
                &mut |messages| {
                    let prompt = prompt::render_prompt(profile, messages);
                    let tokens = count_rendered(counter, &prompt);
                    measured = Some(prompt);
                    tokens
                },
                &|words| counter.count_words(words),
            );
            if trim.changed_anything() {
                measured = None;
                // Deliberately not a continuation: the engine re-evaluates from the first change.
                self.previous = None;
                self.transcript.write(
                    "context_trimmed",
                    json!({
                        "turn": turn,
                        "dropped": trim.dropped,
                        "condensed": trim.condensed,
                        "tokens_before": trim.tokens_before,
                        "tokens_after": trim.tokens_after,
                        "n_ctx": window.n_ctx,
                    }),
                );
                on_event(RunEvent::ContextTrimmed {
                    dropped: trim.dropped,
                    condensed: trim.condensed,
                });
            }
            if trim.tokens_after >= window.n_ctx {
                return Err(format!(
                    "the question and the system prompt take {} tokens and the model's context holds {}: ask about less text, or raise PUNIE_CTX_SIZE",
                    trim.tokens_after, window.n_ctx
                ));
            }
        }
        let mut rendered = measured.unwrap_or_else(|| {
            prompt::render_prompt(&self.request.profile, self.outcome.conversation.messages())
        });
        if let Some(reason) = rendered.fallback_reason.take()
            && !self.template_fallback_told
        {
            tracing::warn!("{reason}");
            self.template_fallback_told = true;
            on_event(RunEvent::TemplateFallback { reason });
        }
        if rendered.quoted.is_none() && !self.quoting_unknown_told {
            // Control tokens' text in a file or a tool's output is then read as control tokens.
            tracing::warn!(
                "the chat template changes the messages' words, so where they are quoted is unknown"
            );
            self.quoting_unknown_told = true;
        }
        let prompt = rendered.text.as_str();
        // The text is not stored: it is the conversation rendered (see `transcript`).
        let mut line = json!({"turn": turn, "chars": prompt.len()});
        if let Some(previous) = self.previous.as_deref() {
            let appended = prompt.strip_prefix(previous);
            line["prefix_reused"] = appended.is_some().into();
            match appended {
                Some(appended) => line["appended_chars"] = appended.len().into(),
                // A profile that re-renders earlier turns differently (a chat template that
                // trims or rewrites assistant messages) costs a full prompt evaluation.
                None => tracing::warn!(
                    "turn {turn}: the prompt does not extend the previous one; the engine re-evaluates it"
                ),
            }
        }
        self.transcript.write("prompt", line);
        Ok(rendered)
    }

    /// The most tokens a tool output may take: what the prompt has room for once everything
    /// that may go has gone (earlier exchanges, this question's earlier outputs). Without a
    /// known context, a fixed cap.
    fn output_cap(&self) -> (usize, TokenCounter) {
        let Some(window) = &self.window else {
            return (OUTPUT_CAP_WITHOUT_CONTEXT, TokenCounter::default());
        };
        let messages = self.outcome.conversation.messages();
        let system = messages.first().filter(|m| m.role == Role::System);
        let least: Vec<Message> = system
            .into_iter()
            .chain(&messages[self.question..])
            .map(|m| match m.role {
                Role::Tool => Message::tool(context::CONDENSED_OUTPUT),
                _ => m.clone(),
            })
            .chain([Message::tool("")])
            .collect();
        let budget = Budget::new(window.n_ctx, self.request.sampling.max_tokens);
        let base = count_rendered(
            &window.counter,
            &prompt::render_prompt(&self.request.profile, &least),
        );
        let cap = budget
            .prompt_limit()
            .saturating_sub(base)
            .max(MIN_OUTPUT_CAP);
        (cap, window.counter.clone())
    }

    fn generate(
        &mut self,
        engine: &EngineHandle,
        prompt: &Prompt,
        turn: usize,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Generated {
        let ahead = engine.pending();
        if ahead > 0 {
            on_event(RunEvent::Queued { ahead });
        }
        let request = GenerateRequest {
            prompt: prompt.text.clone(),
            quoted: prompt.quoted.clone().unwrap_or_default(),
            turn: turn - 1,
            sampling: self.request.sampling.clone(),
        };
        let stream = engine.generate(request, cancel.clone());
        let mut partial = String::new();
        loop {
            // The engine thread sees the same flag and stops within a decode step, but the
            // run does not wait for it: a queued job may sit behind another run's generation.
            match cancel.wait(stream.receiver(), None) {
                Ok(StreamEvent::Text(text)) => {
                    if self.outcome.timings.first_token.is_none() {
                        self.outcome.timings.first_token = Some(self.started.elapsed());
                    }
                    partial.push_str(&text);
                    on_event(RunEvent::Text { turn, text });
                }
                Ok(StreamEvent::Done(Ok(generation))) => {
                    if generation.finish == FinishReason::Cancelled || cancel.is_cancelled() {
                        return Generated::Cancelled(partial);
                    }
                    return Generated::Done(generation);
                }
                Ok(StreamEvent::Done(Err(err))) => return Generated::Failed(err.to_string()),
                // No deadline was given: only a cancel interrupts the wait.
                Err(Interrupted::Cancelled | Interrupted::TimedOut) => {
                    return Generated::Cancelled(partial);
                }
                Err(Interrupted::Disconnected) => {
                    return Generated::Failed(crate::engine::EngineError::Stopped.to_string());
                }
            }
        }
    }

    fn record_generation(
        &mut self,
        turn: usize,
        generation: &Generation,
        raw: &str,
        on_event: &mut dyn FnMut(RunEvent),
    ) {
        let stats = TurnStats {
            n_prompt: generation.n_prompt,
            n_evaluated: generation.n_evaluated,
            n_generated: generation.n_generated,
            prefill: generation.timings.prefill,
            decode: generation.timings.decode,
        };
        self.outcome.tokens_in += stats.n_prompt;
        self.outcome.tokens_evaluated += stats.n_evaluated;
        self.outcome.tokens_out += stats.n_generated;
        self.outcome.timings.prefill += stats.prefill;
        self.outcome.timings.decode += stats.decode;
        self.transcript.write(
            "output",
            json!({
                "turn": turn,
                "text": generation.text,
                "kept": raw.len() < generation.text.len(),
                "finish": generation.finish.name(),
                "n_prompt": stats.n_prompt,
                "n_evaluated": stats.n_evaluated,
                "n_generated": stats.n_generated,
                "prefill_ms": millis(stats.prefill),
                "time_to_first_token_ms": millis(generation.timings.time_to_first_token),
                "decode_ms": millis(stats.decode),
            }),
        );
        on_event(RunEvent::TurnFinished { turn, stats });
    }

    #[allow(clippy::too_many_arguments)]
    fn run_snippet(
        &mut self,
        turn: usize,
        tool: &str,
        code: String,
        runner: &mut dyn CodeRunner,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(RunEvent),
    ) {
        // The code is in the turn's `output`.
        self.transcript
            .write("tool_call", json!({"turn": turn, "tool": tool}));
        on_event(RunEvent::CodeStarted {
            turn,
            code: code.clone(),
        });
        let mut tools: Vec<ToolUse> = Vec::new();
        let result = runner.run_code(&code, host, cancel, &mut |activity| match activity {
            ToolActivity::Started { tool, label } => {
                tools.push(ToolUse {
                    tool: tool.clone(),
                    label: label.clone(),
                    ok: true,
                    error: None,
                    permission: None,
                });
                on_event(RunEvent::ToolStarted { tool, label });
            }
            ToolActivity::Finished {
                tool,
                error,
                permission,
            } => {
                // Tools run one at a time, so the last started one of that name is the one ending.
                let label = match tools.iter_mut().rev().find(|t| t.tool == tool) {
                    Some(used) => {
                        used.ok = error.is_none();
                        used.error = error.clone();
                        used.permission = permission;
                        used.label.clone()
                    }
                    None => tool.clone(),
                };
                match error {
                    None => on_event(RunEvent::ToolFinished { tool, label }),
                    Some(error) => on_event(RunEvent::ToolFailed { tool, label, error }),
                }
            }
        });
        let error = error_line(&result);
        let (cap, counter) = self.output_cap();
        let cut = context::cut_output(&result.output, cap, &|words| counter.count_words(words));
        if let Some(cut) = &cut {
            on_event(RunEvent::OutputCut {
                turn,
                kept_chars: cut.kept_chars,
                total_chars: cut.total_chars,
            });
        }
        let shown = cut.as_ref().map_or(result.output.as_str(), |cut| &cut.text);
        let response = feedback::tool_response(shown, error.as_deref());
        self.outcome.timings.sandbox += result.elapsed;
        self.transcript.write(
            "tool_result",
            json!({
                "turn": turn,
                "ok": error.is_none(),
                "error": error,
                // What the model saw; the snippet's output is in it unless `cut` says otherwise.
                "response": response,
                "output_chars": result.output.chars().count(),
                "cut": cut.as_ref().map(|cut| json!({"kept_chars": cut.kept_chars})),
                "tools": tools.iter().map(|t| json!({"tool": t.tool, "label": t.label, "ok": t.ok, "error": t.error, "permission": t.permission.as_ref().map(super::transcript::ruling_json)})).collect::<Vec<_>>(),
                "elapsed_ms": millis(result.elapsed),
            }),
        );
        on_event(RunEvent::CodeFinished {
            turn,
            ok: error.is_none(),
            output: result.output.clone(),
            error: error.clone(),
        });
        self.outcome.conversation.push(Role::Tool, response.clone());
        self.outcome.tool_calls.push(ToolCallRecord {
            turn,
            tool: tool.to_owned(),
            code,
            ok: error.is_none(),
            output: result.output,
            error,
            response,
            tools,
            elapsed: result.elapsed,
        });
    }

    /// Tells the model its call could not run, as a tool response it can act on.
    fn reject(&mut self, turn: usize, problem: &str, on_event: &mut dyn FnMut(RunEvent)) {
        let response = feedback::rejected_call_response(problem, self.strategy);
        self.transcript.write(
            "rejected_call",
            json!({"turn": turn, "problem": problem, "response": response}),
        );
        on_event(RunEvent::CallRejected {
            turn,
            problem: problem.to_owned(),
        });
        self.outcome.conversation.push(Role::Tool, response);
    }

    fn turn_limit_answer(&self, max_turns: usize) -> String {
        let messages = self.outcome.conversation.messages();
        let prose = messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .map(|m| toolcall::parse(&m.content).text)
            .unwrap_or_default();
        let last_output = self
            .outcome
            .tool_calls
            .last()
            .map(|call| call.response.as_str());
        feedback::turn_limit_answer(max_turns, &prose, last_output)
    }

    fn finish(mut self, end: End, on_event: &mut dyn FnMut(RunEvent)) -> RunOutcome {
        let (status, answer) = match end {
            End::Answer(answer) => (RunStatus::Done, answer),
            End::TurnLimit(note, max_turns) => (RunStatus::TurnLimit { max_turns }, note),
            End::Truncated(partial, truncation) => (RunStatus::Truncated(truncation), partial),
            End::Cancelled(partial) => (RunStatus::Cancelled, partial),
            End::Failed(reason) => (RunStatus::Failed(reason), String::new()),
        };
        if !status.keeps_conversation() {
            // A follow-up should not continue from half a turn the user stopped, nor miss
            // what this run dropped to fit the context.
            self.outcome.conversation = self.request.conversation.clone();
        }
        self.outcome.timings.wall = self.started.elapsed();
        self.outcome.status = status;
        self.outcome.answer = answer;
        let outcome = self.outcome;
        self.transcript.write(
            "end",
            json!({
                "status": outcome.status.to_string(),
                "answer": outcome.answer,
                "turns": outcome.turns,
                "tool_calls": outcome.tool_calls.len(),
                "tokens_in": outcome.tokens_in,
                "tokens_evaluated": outcome.tokens_evaluated,
                "tokens_out": outcome.tokens_out,
                "wall_ms": millis(outcome.timings.wall),
                "first_token_ms": outcome.timings.first_token.map(millis),
                "prefill_ms": millis(outcome.timings.prefill),
                "decode_ms": millis(outcome.timings.decode),
                "sandbox_ms": millis(outcome.timings.sandbox),
            }),
        );
        match &outcome.status {
            RunStatus::Done | RunStatus::TurnLimit { .. } => on_event(RunEvent::Answer {
                text: outcome.answer.clone(),
            }),
            RunStatus::Truncated(truncation) => on_event(RunEvent::Truncated {
                text: outcome.answer.clone(),
                truncation: *truncation,
            }),
            RunStatus::Cancelled => on_event(RunEvent::Cancelled),
            RunStatus::Failed(reason) => on_event(RunEvent::Failed {
                reason: reason.clone(),
            }),
        }
        outcome
    }
}

enum Generated {
    Done(Generation),
    Cancelled(String),
    Failed(String),
}

/// What cut `generation` short, if the engine stopped it before the model ended its turn.
fn truncation(generation: &Generation, sampling: &Sampling) -> Option<Truncation> {
    match generation.finish {
        FinishReason::Length => Some(Truncation::TokenCap {
            max_tokens: sampling.max_tokens,
        }),
        FinishReason::ContextFull => Some(Truncation::Context {
            n_ctx: generation.n_prompt + generation.n_generated,
        }),
        FinishReason::Stop | FinishReason::Cancelled => None,
    }
}

/// Why a call may not run under `strategy`, if it may not: tool-per-turn runs one direct tool
/// call per turn, as the format before Code Mode did.
pub(super) fn strategy_problem(strategy: Strategy, call_idx: usize, name: &str) -> Option<String> {
    match strategy {
        Strategy::CodeMode => None,
        Strategy::ToolPerTurn if call_idx > 0 => Some(
            "one tool call per turn: this call did not run; call it again in the next turn"
                .to_owned(),
        ),
        Strategy::ToolPerTurn if name == "execute_code" => Some(
            "this run calls one tool per turn: call read_file, write_file or run_command directly"
                .to_owned(),
        ),
        Strategy::ToolPerTurn => None,
    }
}

/// The output up to a `<tool_response>` the model wrote itself after a call: the real
/// response comes from the sandbox, and an invented one must not reach the conversation.
fn clip_invented_response(text: &str) -> &str {
    match text.find("</tool_call>") {
        Some(end) => match text[end..].find("<tool_response>") {
            Some(invented) => text[..end + invented].trim_end(),
            None => text,
        },
        None => text,
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// The tokens of `prompt`, counted as the engine will read it (the messages' words quoted).
fn count_rendered(counter: &TokenCounter, prompt: &Prompt) -> usize {
    counter.count_prompt(&prompt.text, prompt.quoted.as_deref().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::{Strategy, clip_invented_response, strategy_problem};

    #[test]
    fn tool_per_turn_runs_one_direct_call_per_turn() {
        assert_eq!(
            strategy_problem(Strategy::CodeMode, 3, "execute_code"),
            None
        );
        assert_eq!(
            strategy_problem(Strategy::ToolPerTurn, 0, "read_file"),
            None
        );
        assert!(strategy_problem(Strategy::ToolPerTurn, 0, "execute_code").is_some());
        assert!(strategy_problem(Strategy::ToolPerTurn, 1, "read_file").is_some());
    }

    #[test]
    fn invented_responses_are_clipped() {
        let call = "<tool_call><function=execute_code>\n<parameter=code>\nx\n</parameter>\n</function></tool_call>";
        assert_eq!(clip_invented_response(call), call);
        let invented = format!("{call}\n<tool_response>\nmade up\n</tool_response>");
        assert_eq!(clip_invented_response(&invented), call);
        assert_eq!(
            clip_invented_response("<tool_response> in prose"),
            "<tool_response> in prose"
        );
    }
}
