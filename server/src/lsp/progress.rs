//! `$/progress` for one piece of work (a run, the model load), with the rules clients rely on:
//! `begin` only after the client accepted `window/workDoneProgress/create` (or at once on a
//! token the client gave us), reports only between `begin` and `end`, and exactly one `end`.
//!
//! Until the client answers the create request, everything is buffered, so a run that is
//! faster than the client still shows `begin … end`. If the client refuses the token (or has no
//! `window.workDoneProgress`), nothing is sent at all: no `end` without a `begin`.

use lsp_server::Notification;
use lsp_types::{
    NumberOrString, ProgressParams, ProgressParamsValue, WorkDoneProgress, WorkDoneProgressBegin,
    WorkDoneProgressEnd, WorkDoneProgressReport,
};

use super::ext::PROGRESS_TITLE;

#[derive(Debug)]
enum State {
    /// Create sent; no answer yet. `end` set means the work already finished.
    Creating {
        begin_message: String,
        reports: Vec<String>,
        end: Option<String>,
    },
    /// `begin` sent.
    Active,
    /// `end` sent, or the client refused the token: nothing more goes out.
    Closed,
}

/// Progress on one token. Notifications to send are returned, never sent here.
#[derive(Debug)]
pub(crate) struct Progress {
    token: NumberOrString,
    state: State,
}

impl Progress {
    /// Progress on a token we asked the client to create; buffers until [`Progress::created`].
    pub(crate) fn pending(token: NumberOrString, begin_message: &str) -> Progress {
        Progress {
            token,
            state: State::Creating {
                begin_message: begin_message.to_owned(),
                reports: Vec::new(),
                end: None,
            },
        }
    }

    /// Progress on a token the client made (`workDoneToken`): `begin` goes out at once.
    pub(crate) fn started(token: NumberOrString, begin_message: &str) -> (Progress, Notification) {
        let progress = Progress {
            token,
            state: State::Active,
        };
        let begin = progress.notification(begin(begin_message));
        (progress, begin)
    }

    /// Still waiting for the client to accept the token.
    pub(crate) fn is_pending(&self) -> bool {
        matches!(self.state, State::Creating { .. })
    }

    pub(crate) fn token(&self) -> &NumberOrString {
        &self.token
    }

    /// The client answered the create request.
    pub(crate) fn created(&mut self, accepted: bool) -> Vec<Notification> {
        let State::Creating {
            begin_message,
            reports,
            end,
        } = std::mem::replace(&mut self.state, State::Closed)
        else {
            return Vec::new();
        };
        if !accepted {
            return Vec::new();
        }
        let mut res = vec![self.notification(begin(&begin_message))];
        // A long backlog of streamed text is not worth replaying: the phases and the last
        // report are.
        let skip = reports.len().saturating_sub(32);
        for message in &reports[skip..] {
            res.push(self.notification(report(message)));
        }
        match end {
            Some(message) => res.push(self.notification(end_value(&message))),
            None => self.state = State::Active,
        }
        res
    }

    pub(crate) fn report(&mut self, message: &str) -> Option<Notification> {
        match &mut self.state {
            State::Creating { reports, .. } => {
                reports.push(message.to_owned());
                None
            }
            State::Active => Some(self.notification(report(message))),
            State::Closed => None,
        }
    }

    /// Ends the progress; later calls do nothing.
    pub(crate) fn end(&mut self, message: &str) -> Option<Notification> {
        match &mut self.state {
            State::Creating { end, .. } => {
                end.get_or_insert_with(|| message.to_owned());
                None
            }
            State::Active => {
                self.state = State::Closed;
                Some(self.notification(end_value(message)))
            }
            State::Closed => None,
        }
    }

    fn notification(&self, value: WorkDoneProgress) -> Notification {
        let params = ProgressParams {
            token: self.token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        };
        Notification::new("$/progress".to_owned(), params)
    }
}

fn begin(message: &str) -> WorkDoneProgress {
    WorkDoneProgress::Begin(WorkDoneProgressBegin {
        title: PROGRESS_TITLE.to_owned(),
        cancellable: Some(true),
        message: Some(message.to_owned()),
        percentage: None,
    })
}

fn report(message: &str) -> WorkDoneProgress {
    WorkDoneProgress::Report(WorkDoneProgressReport {
        cancellable: Some(true),
        message: Some(message.to_owned()),
        percentage: None,
    })
}

fn end_value(message: &str) -> WorkDoneProgress {
    WorkDoneProgress::End(WorkDoneProgressEnd {
        message: Some(message.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(notifications: &[Notification]) -> Vec<String> {
        notifications
            .iter()
            .map(|n| n.params["value"]["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn buffers_until_created_and_ends_once() {
        let mut progress = Progress::pending(NumberOrString::String("t".into()), "starting");
        assert!(progress.report("generating").is_none());
        assert!(progress.end("done").is_none());
        assert!(progress.end("failed: twice").is_none());
        let sent = progress.created(true);
        assert_eq!(kinds(&sent), ["begin", "report", "end"]);
        assert_eq!(sent[2].params["value"]["message"], "done");
        assert!(progress.report("late").is_none());
        assert!(progress.end("done").is_none());
    }

    #[test]
    fn a_refused_token_sends_nothing() {
        let mut progress = Progress::pending(NumberOrString::String("t".into()), "starting");
        assert!(progress.created(false).is_empty());
        assert!(progress.report("x").is_none());
        assert!(progress.end("done").is_none());
    }
}
