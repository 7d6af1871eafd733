//! [`EngineHandle`]: the engine's own thread, and the channels callers use to reach it.
//!
//! The thread builds the engine (loading a model can take seconds, so `spawn` returns at once),
//! then serves jobs in arrival order: runs queue on the one engine. A failed load is remembered
//! and every later job fails fast with the same error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::{CancelFlag, Engine, EngineError, EngineSpec, GenerateRequest, Generation};

/// Settings that apply to every engine kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineConfig {
    /// Context size; `None` means min(the model's, 8192).
    pub n_ctx: Option<u32>,
    /// CPU threads; `None` means the number of physical cores.
    pub threads: Option<i32>,
    /// Where the default model lives (resolved by `models::default_model_path`).
    pub default_model: Option<PathBuf>,
    /// Let llama.cpp repack weights into CPU-specific layouts (its "extra buffer types", e.g.
    /// AMX tiles); `None` means yes, llama.cpp's default. See docs/benchmarks.md.
    pub repack_weights: Option<bool>,
    /// llama.cpp's flash attention; `None` means llama.cpp's `auto` in GPU builds and off in
    /// CPU-only builds, where it made decode more than twice as slow (docs/benchmarks.md).
    pub flash_attention: Option<bool>,
}

impl EngineConfig {
    /// The configuration a user sets through the environment: `PUNIE_CTX_SIZE` (context size in
    /// tokens), `PUNIE_THREADS` (CPU threads), `PUNIE_REPACK_WEIGHTS` and `PUNIE_FLASH_ATTN`
    /// (`1` or `0`), with the default model in the model directory.
    pub fn from_env() -> Result<EngineConfig, String> {
        fn positive<T: std::str::FromStr + Default + PartialOrd>(
            name: &str,
        ) -> Result<Option<T>, String> {
            match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(text) => match text.trim().parse::<T>() {
                    Ok(value) if value > T::default() => Ok(Some(value)),
                    _ => Err(format!("{name}={text}: expected a positive whole number")),
                },
            }
        }
        fn switch(name: &str) -> Result<Option<bool>, String> {
            match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(text) => match text.trim().to_ascii_lowercase().as_str() {
                    "1" | "on" | "true" | "yes" => Ok(Some(true)),
                    "0" | "off" | "false" | "no" => Ok(Some(false)),
                    _ => Err(format!("{name}={text}: expected 1 or 0")),
                },
            }
        }
        Ok(EngineConfig {
            n_ctx: positive("PUNIE_CTX_SIZE")?,
            threads: positive("PUNIE_THREADS")?,
            default_model: crate::models::default_model_path().ok(),
            repack_weights: switch("PUNIE_REPACK_WEIGHTS")?,
            flash_attention: switch("PUNIE_FLASH_ATTN")?,
        })
    }
}

/// Something that arrives from a running generation.
#[derive(Debug)]
pub enum StreamEvent {
    Text(String),
    Done(Result<Generation, EngineError>),
}

/// The receiving end of one generation: text pieces, then exactly one `Done`.
#[derive(Debug)]
pub struct GenerationStream {
    events: Receiver<StreamEvent>,
}

impl GenerationStream {
    /// Next event; `Done(Err(Stopped))` if the engine thread went away.
    pub fn next_event(&self) -> StreamEvent {
        self.events
            .recv()
            .unwrap_or(StreamEvent::Done(Err(EngineError::Stopped)))
    }

    /// The channel itself, for callers that `select!` over several sources.
    pub fn receiver(&self) -> &Receiver<StreamEvent> {
        &self.events
    }

    /// Drains the stream, passing text to `on_text`, and returns the final result.
    pub fn finish(self, mut on_text: impl FnMut(&str)) -> Result<Generation, EngineError> {
        loop {
            match self.next_event() {
                StreamEvent::Text(text) => on_text(&text),
                StreamEvent::Done(result) => return result,
            }
        }
    }
}

enum Job {
    Generate {
        request: GenerateRequest,
        cancel: CancelFlag,
        events: Sender<StreamEvent>,
    },
    CountTokens {
        text: String,
        reply: Sender<Result<usize, EngineError>>,
    },
}

type LoadState = Arc<Mutex<Option<Result<String, EngineError>>>>;

/// Owns the engine thread. Dropping it closes the job channel and joins the thread.
pub struct EngineHandle {
    // Drop order matters: the sender closes before the thread is joined (see `Drop`).
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Jobs sent and not yet finished, for "queued (N ahead)".
    pending: Arc<AtomicUsize>,
    load_state: LoadState,
    load_done: Receiver<()>,
}

impl EngineHandle {
    /// Starts the engine thread; loading happens there, in the background.
    pub fn spawn(spec: EngineSpec, config: EngineConfig) -> EngineHandle {
        let (job_sender, job_receiver) = crossbeam_channel::unbounded::<Job>();
        let (load_done_sender, load_done) = crossbeam_channel::bounded::<()>(1);
        let pending = Arc::new(AtomicUsize::new(0));
        let load_state: LoadState = Arc::new(Mutex::new(None));
        let thread_pending = pending.clone();
        let thread_load_state = load_state.clone();
        let thread = std::thread::Builder::new()
            .name("punie-engine".to_owned())
            .spawn(move || {
                let report_load = |result: Result<String, EngineError>| {
                    *thread_load_state.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    let _ = load_done_sender.send(());
                };
                let serve_jobs =
                    |engine: &mut dyn Engine| serve(engine, &job_receiver, &thread_pending);
                let outcome = match &spec {
                    EngineSpec::Default | EngineSpec::Llama { .. } => {
                        super::llama::run(&spec, &config, report_load, serve_jobs)
                    }
                    EngineSpec::OpenAi { url, model } => {
                        let mut engine = super::openai::OpenAiEngine::new(url, model);
                        report_load(Ok(engine.describe()));
                        serve_jobs(&mut engine);
                        Ok(())
                    }
                    EngineSpec::Scripted { path } => {
                        match super::scripted::ScriptedEngine::load(path) {
                            Ok(mut engine) => {
                                report_load(Ok(engine.describe()));
                                serve_jobs(&mut engine);
                                Ok(())
                            }
                            Err(err) => Err(err),
                        }
                    }
                };
                if let Err(err) = outcome {
                    tracing::error!("engine failed to load: {err}");
                    *thread_load_state.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Err(err.clone()));
                    let _ = load_done_sender.send(());
                    fail_all(&err, &job_receiver, &thread_pending);
                }
            })
            .expect("spawning the engine thread");
        EngineHandle {
            jobs: Some(job_sender),
            thread: Some(thread),
            pending,
            load_state,
            load_done,
        }
    }

    /// Blocks until the engine has loaded (or failed to). Returns its description.
    pub fn wait_ready(&self) -> Result<String, EngineError> {
        if let Some(state) = self.load_state() {
            return state;
        }
        let _ = self.load_done.recv();
        self.load_state().unwrap_or(Err(EngineError::Stopped))
    }

    /// The load outcome, if loading has finished.
    pub fn load_state(&self) -> Option<Result<String, EngineError>> {
        self.load_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Jobs waiting or running on the engine.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Queues a generation; events arrive on the returned stream.
    pub fn generate(&self, request: GenerateRequest, cancel: CancelFlag) -> GenerationStream {
        let (events_sender, events) = crossbeam_channel::unbounded();
        self.send(
            Job::Generate {
                request,
                cancel,
                events: events_sender.clone(),
            },
            || {
                let _ = events_sender.send(StreamEvent::Done(Err(EngineError::Stopped)));
            },
        );
        GenerationStream { events }
    }

    /// Counts the tokens of `text` with the engine's tokenizer.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EngineError> {
        let (reply_sender, reply) = crossbeam_channel::bounded(1);
        self.send(
            Job::CountTokens {
                text: text.to_owned(),
                reply: reply_sender,
            },
            || {},
        );
        reply.recv().unwrap_or(Err(EngineError::Stopped))
    }

    fn send(&self, job: Job, on_closed: impl FnOnce()) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            on_closed();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves jobs until every handle is gone.
fn serve(engine: &mut dyn Engine, jobs: &Receiver<Job>, pending: &AtomicUsize) {
    for job in jobs.iter() {
        match job {
            Job::Generate {
                request,
                cancel,
                events,
            } => {
                let result = if cancel.is_cancelled() {
                    Ok(cancelled_generation())
                } else {
                    engine.generate(&request, &cancel, &mut |text| {
                        let _ = events.send(StreamEvent::Text(text.to_owned()));
                    })
                };
                pending.fetch_sub(1, Ordering::AcqRel);
                let _ = events.send(StreamEvent::Done(result));
            }
            Job::CountTokens { text, reply } => {
                let _ = reply.send(engine.count_tokens(&text));
                pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

fn cancelled_generation() -> Generation {
    Generation {
        text: String::new(),
        finish: super::FinishReason::Cancelled,
        n_prompt: 0,
        n_evaluated: 0,
        n_generated: 0,
        timings: super::Timings::default(),
    }
}

/// After a failed load: answer every job with the load error, fast.
fn fail_all(err: &EngineError, jobs: &Receiver<Job>, pending: &AtomicUsize) {
    for job in jobs.iter() {
        match job {
            Job::Generate { events, .. } => {
                pending.fetch_sub(1, Ordering::AcqRel);
                let _ = events.send(StreamEvent::Done(Err(err.clone())));
            }
            Job::CountTokens { reply, .. } => {
                pending.fetch_sub(1, Ordering::AcqRel);
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
