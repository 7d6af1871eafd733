//! `session/prompt` from request to `stopReason`: the prompt becomes a features run, waits its
//! turn on the engine, runs on its own thread with an [`AcpFrontEnd`], and its end answers the
//! request. `session/cancel` ends it within 100 ms (a queued prompt at once).

use serde_json::{Value, json};

use crate::agent::{self, RunOutcome, RunStatus};
use crate::cancel::CancelFlag;
use crate::features::{self, RunInput, Settings};
use crate::policy;

use super::front_end::AcpFrontEnd;
use super::main_loop::{Agent, Failure, Handled, PromptRun, Task};
use super::prompt::{PromptPlan, plan};
use super::transport::{INTERNAL_ERROR, error_response, response};
use super::wire;

impl Agent {
    pub(crate) fn handle_prompt(
        &mut self,
        request_id: Value,
        params: &Value,
    ) -> Result<Handled, Failure> {
        let session_id = params["sessionId"]
            .as_str()
            .ok_or_else(|| Failure::invalid_params("sessionId: missing or not a string"))?
            .to_owned();
        let session = self.sessions.get(&session_id).ok_or_else(|| {
            Failure::invalid_params(format!("sessionId {session_id}: no such session"))
        })?;
        if session.active.is_some() {
            return Err(Failure::invalid_params(format!(
                "sessionId {session_id}: a prompt is already running in it"
            )));
        }
        let ask = match plan(&session.cwd, &params["prompt"]).map_err(Failure::invalid_params)? {
            PromptPlan::Reply(text) => {
                self.send_update(&session_id, wire::agent_text(&text));
                return Ok(Handled::reply(json!({"stopReason": "end_turn"})));
            }
            PromptPlan::Run(ask) => ask,
        };
        // The user's policy file: a protected rule turned into ask, a tool allowed, its limits.
        // ACP has no message outside a session's updates: a problem is told once, in the
        // answer it first affects (the LSP server shows it at `initialize`, `punie ask` fails).
        let (users, problems) = features::load_policy_file();
        for problem in problems {
            tracing::warn!("the policy file: {problem}; that entry is left out");
            if !self.policy_problems_told.contains(&problem) {
                let told = format!(
                    "Punie left out an entry of your policy file: {}\n\n",
                    policy::markdown_literal(&policy::one_line(&problem))
                );
                self.send_update(&session_id, wire::agent_text(&told));
                self.policy_problems_told.push(problem);
            }
        }
        let settings = self.settings_for(&session.model, users);
        let run_id = agent::new_run_id();
        let input = RunInput {
            run_id: run_id.clone(),
            profile: features::profile_for(&settings),
            conversation: session.conversation.clone(),
            remember_as: None,
            follow_ups: true,
            transcript_dir: Some(agent::default_transcript_dir(&session.cwd)),
            ask,
            settings,
        };
        let session = self.sessions.get_mut(&session_id).expect("checked above");
        if session.title.is_none() {
            session.title = Some(super::sessions::title_of(&input.ask.question()));
        }
        session.active = Some(run_id.clone());
        self.runs.insert(
            run_id.clone(),
            PromptRun {
                session_id,
                request_id,
                cancel: CancelFlag::default(),
                input: Some(input),
                thread: None,
            },
        );
        if let Some(start) = self.queue.push(&run_id) {
            self.start_run(&start);
        }
        Ok(Handled::Later)
    }

    /// `session/cancel`: the session's prompt stops; a cancel of an idle session does nothing.
    pub(crate) fn cancel_session(&mut self, session_id: &str) {
        let Some(run_id) = self.sessions.get(session_id).and_then(|s| s.active.clone()) else {
            return;
        };
        let Some(run) = self.runs.get(&run_id) else {
            return;
        };
        run.cancel.cancel();
        if self.queue.remove_waiting(&run_id) {
            // It never started: it ends here, at once.
            let outcome = cancelled_before_start(&run_id);
            self.on_run_finished(
                &run_id,
                features::Finished {
                    outcome,
                    markdown: String::new(),
                },
            );
        }
    }

    fn start_run(&mut self, run_id: &str) {
        let Some(run) = self.runs.get_mut(run_id) else {
            return;
        };
        let Some(input) = run.input.take() else {
            return;
        };
        let session_id = run.session_id.clone();
        let cancel = run.cancel.clone();
        let Some(session) = self.sessions.get(&session_id) else {
            return;
        };
        let model = session.model.clone();
        let cwd = session.cwd.clone();
        let resources = self.resources.with_approvals(session.approvals.clone());
        let (_, engine) = self.engine_for(&model);
        let front_end = AcpFrontEnd::new(
            &session_id,
            &cwd,
            run_id,
            self.fs,
            self.out.clone(),
            self.tasks.clone(),
            cancel.clone(),
        );
        let tasks = self.tasks.clone();
        let thread_run_id = run_id.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("punie-acp-{run_id}"))
            .spawn(move || {
                let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let finished =
                        features::execute(input, &engine, &resources, &front_end, &cancel);
                    front_end.finish(&finished);
                    finished
                }))
                .unwrap_or_else(|_| {
                    tracing::error!("prompt run {thread_run_id} panicked");
                    features::Finished {
                        outcome: failed(&thread_run_id, "internal error (see the agent's log)"),
                        markdown: String::new(),
                    }
                });
                let _ = tasks.send(Task::Finished {
                    run_id: thread_run_id,
                    finished: Box::new(finished),
                });
            });
        match thread {
            Ok(thread) => {
                if let Some(run) = self.runs.get_mut(run_id) {
                    run.thread = Some(thread);
                }
            }
            Err(err) => {
                let outcome = failed(run_id, &format!("cannot start a thread: {err}"));
                self.on_run_finished(
                    run_id,
                    features::Finished {
                        outcome,
                        markdown: String::new(),
                    },
                );
            }
        }
    }

    /// A run ended: keep its conversation, answer the prompt, start the next one.
    pub(crate) fn on_run_finished(&mut self, run_id: &str, finished: features::Finished) {
        let Some(mut run) = self.runs.remove(run_id) else {
            return;
        };
        if let Some(thread) = run.thread.take() {
            // `Finished` is the thread's last act, so this returns at once.
            let _ = thread.join();
        }
        let outcome = finished.outcome;
        let profile = run
            .input
            .as_ref()
            .map(|input| input.profile.name().to_owned());
        if let Some(session) = self.sessions.get_mut(&run.session_id) {
            session.active = None;
            if outcome.status.keeps_conversation() {
                session.conversation = outcome.conversation.clone();
            }
        }
        if outcome.status.keeps_conversation() {
            let profile = profile.unwrap_or_else(|| self.profile_name(&run.session_id));
            self.save_session(&run.session_id, &profile);
        }
        let message = match wire::stop_reason(&outcome.status) {
            Some(stop_reason) => {
                // Figures for clients and benchmarks (`_meta` is ACP's extension point).
                let timings = &outcome.timings;
                let meta = json!({"punie": {
                    "firstTokenMs": timings.first_token.map(|d| d.as_secs_f64() * 1e3),
                    "wallMs": timings.wall.as_secs_f64() * 1e3,
                    "tokensIn": outcome.tokens_in,
                    "tokensEvaluated": outcome.tokens_evaluated,
                    "tokensOut": outcome.tokens_out,
                }});
                response(
                    run.request_id,
                    json!({"stopReason": stop_reason, "_meta": meta}),
                )
            }
            None => {
                let reason = match &outcome.status {
                    RunStatus::Failed(reason) => reason.clone(),
                    other => other.to_string(),
                };
                error_response(run.request_id, INTERNAL_ERROR, &reason)
            }
        };
        self.send(message);
        if let Some(next) = self.queue.finished(run_id) {
            self.start_run(&next);
        }
    }

    fn profile_name(&self, session_id: &str) -> String {
        let model = self
            .sessions
            .get(session_id)
            .map(|s| s.model.clone())
            .unwrap_or_default();
        let spec = self.engine_spec_of(&model);
        features::profile_for(&Settings {
            engine: spec,
            profile: self.options.profile.clone(),
            ..Settings::default()
        })
        .name()
        .to_owned()
    }
}

fn cancelled_before_start(run_id: &str) -> RunOutcome {
    let mut outcome = failed(run_id, "");
    outcome.status = RunStatus::Cancelled;
    outcome
}

fn failed(run_id: &str, reason: &str) -> RunOutcome {
    RunOutcome::new(
        run_id,
        RunStatus::Failed(reason.to_owned()),
        agent::Conversation::new(),
    )
}
