//! Run scheduling on the main loop: a validated `punie.ask` becomes a [`Run`] with its
//! progress, waits its turn on the engine ([`RunQueue`](crate::features::RunQueue)), gets a
//! thread, streams its steps as `$/progress`, and ends with exactly one `end` and one answer.
//! `shutdown` and `exit` cancel what still runs.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use lsp_server::{ErrorCode, Message, Notification, RequestId, Response, ResponseError};
use lsp_types::{MessageType, NumberOrString};
use serde_json::Value;

use crate::agent::{RunEvent, RunStatus};
use crate::cancel::CancelFlag;

use super::ext::AnswerParams;
use super::global_state::{Pending, Server};
use super::main_loop::{RunFinished, Task};
use super::progress::Progress;
use super::run::{RunContext, RunSpec};

/// Streamed answer text goes out as a report at most this often, so a fast model cannot flood
/// the client (or delay a `codeAction` answer behind a queue of reports).
const TEXT_REPORT_INTERVAL: Duration = Duration::from_millis(200);
/// After `shutdown`, cancelled runs get this long to send their `end` and answer.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// After `exit` (or the end of input), cancelled runs get this long to wind down: the server
/// exits within a second whatever an engine or a client is doing.
const EXIT_GRACE: Duration = Duration::from_millis(600);

/// One run the server knows about: queued, running, or finishing.
pub(crate) struct Run {
    pub spec: Arc<RunSpec>,
    pub cancel: CancelFlag,
    pub progress: Option<Progress>,
    pub thread: Option<JoinHandle<()>>,
    pub streamed: StreamedText,
}

/// The tail of a run's streamed text, reported as `generating: …` at once when the last report
/// is older than `TEXT_REPORT_INTERVAL` (so the first words show as soon as the model writes
/// them) and otherwise at the next tick.
#[derive(Default)]
pub(crate) struct StreamedText {
    tail: String,
    unreported: bool,
    last_report: Option<Instant>,
}

impl StreamedText {
    /// Characters of the tail a report shows.
    const SHOWN_CHARS: usize = 60;

    fn push(&mut self, text: &str) {
        self.tail.push_str(text);
        let keep_from = self
            .tail
            .char_indices()
            .rev()
            .nth(Self::SHOWN_CHARS - 1)
            .map_or(0, |(idx, _)| idx);
        self.tail.drain(..keep_from);
        self.unreported = true;
    }

    /// The report due at `now`, if any.
    fn report_due(&mut self, now: Instant) -> Option<String> {
        let due = self
            .last_report
            .is_none_or(|last| now.duration_since(last) >= TEXT_REPORT_INTERVAL);
        if !(self.unreported && due) {
            return None;
        }
        self.unreported = false;
        self.last_report = Some(now);
        let snippet = self.tail.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(format!("generating: …{snippet}"))
    }
}

impl Server {
    /// Registers a validated run. Returns the run id and its progress token; the run is
    /// scheduled once the `punie.ask` response has gone out ([`Server::schedule_run`]).
    pub(crate) fn start_run(
        &mut self,
        spec: RunSpec,
        client_token: Option<NumberOrString>,
    ) -> (String, Option<NumberOrString>) {
        self.next_run += 1;
        let run_id = format!("{}-{}", run_id_prefix(), self.next_run);
        let spec = Arc::new(RunSpec {
            run_id: run_id.clone(),
            ..spec
        });
        let mut begin_notification = None;
        let progress = match client_token {
            Some(token) => {
                let (progress, begin) = Progress::started(token, "starting");
                begin_notification = Some(begin);
                Some(progress)
            }
            None if self.caps.work_done_progress => Some(Progress::pending(
                NumberOrString::String(format!("punie/run/{run_id}")),
                "starting",
            )),
            None => None,
        };
        let token = progress.as_ref().map(|progress| progress.token().clone());
        self.runs.insert(
            run_id.clone(),
            Run {
                spec,
                cancel: CancelFlag::default(),
                progress,
                thread: None,
                streamed: StreamedText::default(),
            },
        );
        if let Some(begin) = begin_notification {
            self.send_notification(begin);
        }
        (run_id, token)
    }

    /// After the `punie.ask` response went out: ask for the progress token and queue the run.
    pub(crate) fn schedule_run(&mut self, run_id: &str) {
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        if let Some(NumberOrString::String(token)) =
            run.progress.as_ref().map(|p| p.token().clone())
            && token.starts_with("punie/run/")
        {
            let params = serde_json::json!({ "token": token });
            self.send_request(
                "window/workDoneProgress/create",
                params,
                Pending::ProgressCreate {
                    run_id: run_id.to_owned(),
                },
            );
        }
        if let Some(error) = self.engine.as_ref().and_then(|engine| engine.error.clone()) {
            // A model that failed to load fails every run at once, with the same reason.
            let reason = super::engine_lifecycle::engine_failure_reason(&error);
            self.finish_without_thread(run_id, RunStatus::Failed(reason));
            return;
        }
        let start = self.queue.push(run_id);
        self.start_and_report_positions(start);
    }

    /// Starts `start` (a run whose turn it is) and tells the waiting runs that moved.
    fn start_and_report_positions(&mut self, start: Option<String>) {
        if let Some(run_id) = start {
            self.spawn_run_thread(&run_id);
        }
        for (run_id, ahead) in self.queue.moved() {
            self.report(&run_id, &format!("queued ({ahead} ahead)"));
        }
    }

    fn spawn_run_thread(&mut self, run_id: &str) {
        let Some(engine) = self.engine.as_ref().map(|engine| engine.handle.clone()) else {
            let reason = "the engine is not running".to_owned();
            self.finish_without_thread(run_id, RunStatus::Failed(reason));
            return;
        };
        let settings = self.run_settings();
        let Some(run) = self.runs.get_mut(run_id) else {
            return;
        };
        let context = RunContext {
            spec: run.spec.clone(),
            engine,
            settings,
            caps: self.caps.clone(),
            documents: self.documents.clone(),
            tasks: self.task_sender.clone(),
            cancel: run.cancel.clone(),
            resources: self.resources.with_approvals(
                self.approvals
                    .entry(run.spec.ask.root.clone())
                    .or_default()
                    .clone(),
            ),
        };
        let thread = std::thread::Builder::new()
            .name(format!("punie-run-{run_id}"))
            .spawn(move || super::run::execute(context));
        match thread {
            Ok(thread) => run.thread = Some(thread),
            Err(err) => {
                let reason = format!("cannot start a thread for the run: {err}");
                self.finish_without_thread(run_id, RunStatus::Failed(reason));
            }
        }
    }

    /// Cancels a run. Returns false for unknown or finished runs.
    pub(crate) fn cancel_run(&mut self, run_id: &str) -> bool {
        let Some(run) = self.runs.get(run_id) else {
            return false;
        };
        run.cancel.cancel();
        if self.queue.remove_waiting(run_id) {
            // A queued run has no thread: it ends here, at once.
            self.finish_without_thread(run_id, RunStatus::Cancelled);
        }
        true
    }

    pub(crate) fn run_for_token(&self, token: &NumberOrString) -> Option<String> {
        self.runs
            .iter()
            .find(|(_, run)| {
                run.progress
                    .as_ref()
                    .is_some_and(|progress| progress.token() == token)
            })
            .map(|(run_id, _)| run_id.clone())
    }

    fn finish_without_thread(&mut self, run_id: &str, status: RunStatus) {
        let markdown = match &status {
            RunStatus::Failed(reason) => reason.clone(),
            _ => String::new(),
        };
        self.on_run_finished(RunFinished {
            run_id: run_id.to_owned(),
            status,
            markdown,
            answer_file: None,
        });
    }

    pub(crate) fn on_run_finished(&mut self, finished: RunFinished) {
        let Some(mut run) = self.runs.remove(&finished.run_id) else {
            return;
        };
        if let Some(mut progress) = run.progress.take() {
            match progress.end(&finished.status.to_string()) {
                Some(end) => self.send_notification(end),
                None if progress.is_pending() => {
                    self.ended_progress
                        .insert(finished.run_id.clone(), progress);
                }
                None => {}
            }
        }
        self.deliver_answer(&run, &finished);
        if let Some(thread) = run.thread.take() {
            // `Finished` is the thread's last act, so this returns at once.
            let _ = thread.join();
        }
        let start = self.queue.finished(&finished.run_id);
        self.start_and_report_positions(start);
    }

    fn deliver_answer(&mut self, run: &Run, finished: &RunFinished) {
        if self.caps.punie_answer {
            let params = AnswerParams {
                run_id: finished.run_id.clone(),
                uri: run.spec.uri.clone(),
                range: run.spec.range,
                markdown: finished.markdown.clone(),
                status: finished.status.name(),
            };
            let notification =
                Notification::new(super::ext::ANSWER_NOTIFICATION.to_owned(), params);
            self.send_notification(notification);
            return;
        }
        let (kind, text) = match &finished.status {
            RunStatus::Failed(_) => (
                MessageType::ERROR,
                format!("Punie failed: {}", finished.markdown),
            ),
            RunStatus::Cancelled if finished.markdown.trim().is_empty() => {
                (MessageType::INFO, "Punie: cancelled".to_owned())
            }
            RunStatus::Cancelled => (
                MessageType::INFO,
                format!("Punie (cancelled):\n\n{}", finished.markdown),
            ),
            RunStatus::Truncated(_) => (
                MessageType::WARNING,
                format!("Punie (truncated):\n\n{}", finished.markdown),
            ),
            RunStatus::Done | RunStatus::TurnLimit { .. } => {
                (MessageType::INFO, finished.markdown.clone())
            }
        };
        self.show_message(kind, &text);
        if let Some(path) = &finished.answer_file
            && let Some(uri) = super::uri::from_path(path)
        {
            let params =
                serde_json::json!({"uri": uri.as_str(), "external": false, "takeFocus": false});
            self.send_request("window/showDocument", params, Pending::Ignore);
        }
    }

    pub(crate) fn report(&mut self, run_id: &str, message: &str) {
        if let Some(progress) = self
            .runs
            .get_mut(run_id)
            .and_then(|run| run.progress.as_mut())
            && let Some(notification) = progress.report(message)
        {
            self.send_notification(notification);
        }
    }

    /// The client answered the create request of a run's progress token.
    pub(crate) fn run_progress_created(&mut self, run_id: &str, accepted: bool) {
        // A run that already ended left its progress in `ended_progress`.
        let mut ended = self.ended_progress.remove(run_id);
        let progress = match self.runs.get_mut(run_id) {
            Some(run) => run.progress.as_mut(),
            None => ended.as_mut(),
        };
        let Some(progress) = progress else { return };
        for notification in progress.created(accepted) {
            self.send(Message::Notification(notification).into());
        }
    }

    pub(crate) fn on_run_event(&mut self, run_id: &str, event: RunEvent) {
        if let RunEvent::Text { text, .. } = &event {
            let report = self.runs.get_mut(run_id).and_then(|run| {
                run.streamed.push(text);
                run.streamed.report_due(Instant::now())
            });
            if let Some(message) = report {
                self.report(run_id, &message);
            }
            return;
        }
        if let Some(message) = event.progress_message() {
            self.report(run_id, &message);
        }
    }

    /// Streamed text held back by `TEXT_REPORT_INTERVAL` goes out once it is due.
    pub(crate) fn flush_streamed_text(&mut self) {
        let now = Instant::now();
        let reports: Vec<(String, String)> = self
            .runs
            .iter_mut()
            .filter_map(|(run_id, run)| Some((run_id.clone(), run.streamed.report_due(now)?)))
            .collect();
        for (run_id, message) in reports {
            self.report(&run_id, &message);
        }
    }

    // ---- shutdown ----

    /// `shutdown`: cancel every run; answer once they have ended (or after a grace period).
    pub(crate) fn begin_shutdown(&mut self, id: RequestId) {
        self.shutdown_requested = true;
        let run_ids: Vec<String> = self.runs.keys().cloned().collect();
        for run_id in run_ids {
            self.cancel_run(&run_id);
        }
        self.shutdown = Some((id, Instant::now() + SHUTDOWN_GRACE));
        if self.runs.is_empty() {
            self.finish_shutdown();
        }
    }

    pub(crate) fn check_shutdown_deadline(&mut self) {
        if let Some((_, deadline)) = &self.shutdown
            && (self.runs.is_empty() || Instant::now() >= *deadline)
        {
            self.finish_shutdown();
        }
    }

    fn finish_shutdown(&mut self) {
        if let Some((id, _)) = self.shutdown.take() {
            self.send(Message::Response(Response::new_ok(id, Value::Null)).into());
        }
    }

    /// Leaving the loop: cancel what still runs, let the threads end, join them.
    pub(crate) fn stop(&mut self, tasks: &Receiver<Task>) {
        for run in self.runs.values() {
            run.cancel.cancel();
        }
        // Cancelled runs stop within 100 ms; while they wind down they may still ask the loop
        // for things (a client request), so keep serving their tasks until each has ended.
        let deadline = Instant::now() + EXIT_GRACE;
        // Only a task changes what is left to wait for, so each wait is for the next task.
        while self.runs.values().any(|run| run.thread.is_some()) && Instant::now() < deadline {
            match tasks.recv_deadline(deadline) {
                Ok(Task::ClientRequest { reply, .. }) => {
                    let _ = reply.send(Err(ResponseError {
                        code: ErrorCode::RequestCanceled as i32,
                        message: "the server is exiting".to_owned(),
                        data: None,
                    }));
                }
                Ok(Task::Finished(finished)) => {
                    if let Some(mut run) = self.runs.remove(&finished.run_id)
                        && let Some(thread) = run.thread.take()
                    {
                        let _ = thread.join();
                    }
                }
                Ok(_) | Err(_) => {}
            }
        }
        self.release_engine();
    }
}

/// Run ids: unique across restarts, since answers are kept in `.punie/answers/<runId>.md`.
fn run_id_prefix() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(0);
    format!("{millis:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_words_are_reported_at_once_and_later_ones_at_most_every_interval() {
        let start = Instant::now();
        let mut streamed = StreamedText::default();
        assert_eq!(streamed.report_due(start), None, "nothing written yet");
        streamed.push("Hello");
        assert_eq!(
            streamed.report_due(start).as_deref(),
            Some("generating: …Hello")
        );
        streamed.push(" world");
        let soon = start + TEXT_REPORT_INTERVAL / 2;
        assert_eq!(streamed.report_due(soon), None);
        let later = start + TEXT_REPORT_INTERVAL;
        assert_eq!(
            streamed.report_due(later).as_deref(),
            Some("generating: …Hello world")
        );
        assert_eq!(
            streamed.report_due(later + TEXT_REPORT_INTERVAL),
            None,
            "nothing new"
        );
    }

    #[test]
    fn a_report_shows_the_last_characters_on_one_line() {
        let mut streamed = StreamedText::default();
        streamed.push(&"é".repeat(100));
        streamed.push("\nend  of\tline");
        let report = streamed.report_due(Instant::now()).unwrap();
        // The last 60 characters: 47 of the é, then "\nend  of\tline" with its spaces as one.
        assert_eq!(
            report,
            format!("generating: …{} end of line", "é".repeat(47))
        );
    }
}
