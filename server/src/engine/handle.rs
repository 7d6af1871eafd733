//! [`EngineHandle`]: the engine's own thread, and the channels callers use to reach it.
//!
//! The thread builds the engine (loading a model can take seconds, so `spawn` returns at once),
//! then serves jobs in arrival order: runs queue on the one engine. A failed load is remembered
//! and every later job fails fast with the same error.
//!
//! **Nothing waits on the engine thread but its own jobs' callers.** Dropping the handle cancels
//! the job in progress (and a model load, between tensors), answers queued jobs with
//! [`EngineError::Stopped`], and hands the thread to a reaper thread that joins it in the
//! background: the caller (the language server's main loop swapping engines) never blocks on a
//! load or a stalled server. Every generation runs under an overall deadline
//! ([`EngineConfig::deadline`]); the engine sees one [`CancelFlag`] that is set by the run's
//! cancel, the handle's drop or the deadline, and polls it between decode steps or reads.

use crate::sync;
use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::llama::GgufTokenizer;
use super::{
    CancelFlag, ContextWindow, Engine, EngineError, EngineSpec, FinishReason, GenerateRequest,
    Generation, TokenCounter,
};
use crate::cancel::Interrupted;

/// How long one generation may take when the configuration does not say.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How long an OpenAI-compatible server may send nothing when the configuration does not say.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Settings that apply to every engine kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineConfig {
    /// Context size; `None` means min(the model's, 8192) for llama.cpp, and unknown (no
    /// context management) for an OpenAI-compatible server.
    pub n_ctx: Option<u32>,
    /// CPU threads; `None` means the physical cores for prompts, and between one and that many
    /// for generation, as measured step times say (`engine/llama/threads.rs`).
    pub threads: Option<i32>,
    /// Where the default model lives (resolved by `models::default_model_path`).
    pub default_model: Option<PathBuf>,
    /// Let llama.cpp repack weights into CPU-specific layouts (its "extra buffer types", e.g.
    /// AMX tiles); `None` means yes, llama.cpp's default. See docs/benchmarks.md.
    pub repack_weights: Option<bool>,
    /// llama.cpp's flash attention; `None` means llama.cpp's `auto` in GPU builds, and on the
    /// CPU as measured per CPU (`llama::FlashAttention::for_config`, docs/benchmarks.md).
    pub flash_attention: Option<bool>,
    /// The longest one generation may run, prompt evaluation included; `None` means
    /// [`DEFAULT_DEADLINE`]. Past it the job ends with [`EngineError::Deadline`].
    pub deadline: Option<Duration>,
    /// How long an OpenAI-compatible server may send nothing before it is given up on; `None`
    /// means [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Option<Duration>,
    /// Prompt-lookup drafts in greedy generation (`engine/llama/lookup.rs`); `None` means on
    /// where it is exact.
    pub prompt_lookup: Option<bool>,
}

impl EngineConfig {
    /// The configuration a user sets through the environment: `PUNIE_CTX_SIZE` (context size in
    /// tokens), `PUNIE_THREADS` (CPU threads), `PUNIE_REPACK_WEIGHTS`, `PUNIE_FLASH_ATTN` and
    /// `PUNIE_PROMPT_LOOKUP` (`1` or `0`), `PUNIE_ENGINE_DEADLINE` and
    /// `PUNIE_ENGINE_IDLE_TIMEOUT` (seconds), with the default model in the model directory.
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
        let seconds = |name: &str| Ok::<_, String>(positive(name)?.map(Duration::from_secs));
        Ok(EngineConfig {
            n_ctx: positive("PUNIE_CTX_SIZE")?,
            threads: positive("PUNIE_THREADS")?,
            default_model: crate::models::default_model_path().ok(),
            repack_weights: switch("PUNIE_REPACK_WEIGHTS")?,
            flash_attention: switch("PUNIE_FLASH_ATTN")?,
            deadline: seconds("PUNIE_ENGINE_DEADLINE")?,
            idle_timeout: seconds("PUNIE_ENGINE_IDLE_TIMEOUT")?,
            prompt_lookup: switch("PUNIE_PROMPT_LOOKUP")?,
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
    Prepare {
        prompt_start: String,
        quoted: Vec<Range<usize>>,
        done: Sender<Result<usize, EngineError>>,
    },
}

/// What a finished load left: the engine's description and its context, or the error.
#[derive(Clone)]
struct Loaded {
    description: String,
    context: Option<ContextWindow>,
}

/// State shared between the handle and its thread.
#[derive(Default)]
struct Shared {
    /// Jobs sent and not yet finished, for "queued (N ahead)".
    pending: AtomicUsize,
    load_state: Mutex<Option<Result<Loaded, EngineError>>>,
    /// Set when the handle is dropped: the job in progress stops, the rest fail fast.
    shutdown: CancelFlag,
    /// The stop flag of the [`Job::Prepare`] in progress: a generation sent meanwhile sets it.
    preparing: Mutex<Option<CancelFlag>>,
}

impl Shared {
    fn set_load_state(&self, state: Result<Loaded, EngineError>) {
        *sync::lock(&self.load_state) = Some(state);
    }
}

/// Owns the engine thread. Dropping it stops the engine without waiting for it (see the
/// module doc).
pub struct EngineHandle {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// Never sent on: the thread drops its sender once the load has finished (or failed), which
    /// wakes every waiter at once.
    load_done: Receiver<Infallible>,
}

impl EngineHandle {
    /// Starts the engine thread; loading happens there, in the background.
    pub fn spawn(spec: EngineSpec, config: EngineConfig) -> EngineHandle {
        let (job_sender, job_receiver) = crossbeam_channel::unbounded::<Job>();
        let (load_done_sender, load_done) = crossbeam_channel::bounded::<Infallible>(0);
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("punie-engine".to_owned())
            .spawn(move || {
                let shared = thread_shared;
                let deadline = config.deadline.unwrap_or(DEFAULT_DEADLINE);
                let load_done_sender = Cell::new(Some(load_done_sender));
                // The description arrives when the engine has loaded; the rest of what the
                // callers learn (the context) when serving begins, and only then are they told.
                let description = RefCell::new(String::new());
                let report_load = |result: Result<String, EngineError>| {
                    if let Ok(text) = result {
                        *description.borrow_mut() = text;
                    }
                };
                let serve_jobs = |engine: &mut dyn Engine| {
                    let counter = TokenCounter::new(tokenizer(&spec, &config));
                    let context = engine
                        .context_size()
                        .map(|n_ctx| ContextWindow { n_ctx, counter });
                    shared.set_load_state(Ok(Loaded {
                        description: description.take(),
                        context,
                    }));
                    drop(load_done_sender.take());
                    serve(engine, &job_receiver, &shared, deadline);
                };
                let outcome = match &spec {
                    EngineSpec::Default | EngineSpec::Llama { .. } => {
                        super::llama::run(&spec, &config, &shared.shutdown, report_load, serve_jobs)
                    }
                    EngineSpec::OpenAi { url, model } => {
                        super::openai::OpenAiEngine::new(url, model, &config).map(|mut engine| {
                            report_load(Ok(engine.describe()));
                            serve_jobs(&mut engine);
                        })
                    }
                    EngineSpec::Scripted { path } => super::scripted::ScriptedEngine::load(path)
                        .map(|mut engine| {
                            engine.default_context(config.n_ctx.map(|n| n as usize));
                            report_load(Ok(engine.describe()));
                            serve_jobs(&mut engine);
                        }),
                };
                if let Err(err) = outcome {
                    if shared.shutdown.is_cancelled() {
                        tracing::debug!("engine load stopped: {err}");
                    } else {
                        tracing::error!("engine failed to load: {err}");
                    }
                    shared.set_load_state(Err(err.clone()));
                    drop(load_done_sender.take());
                    fail_all(&err, &job_receiver, &shared.pending);
                }
            })
            .expect("spawning the engine thread");
        EngineHandle {
            jobs: Some(job_sender),
            thread: Some(thread),
            shared,
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

    /// [`EngineHandle::wait_ready`] that gives up the moment `cancel` is set: `None` then.
    pub fn wait_ready_unless(&self, cancel: &CancelFlag) -> Option<Result<String, EngineError>> {
        if let Some(state) = self.load_state() {
            return Some(state);
        }
        match cancel.wait(&self.load_done, None) {
            Err(Interrupted::Disconnected) => {
                Some(self.load_state().unwrap_or(Err(EngineError::Stopped)))
            }
            // A flag that has a deadline of its own reports it as a cancel.
            Err(Interrupted::Cancelled | Interrupted::TimedOut) => None,
        }
    }

    /// The load outcome, if loading has finished: the engine's description, or why it failed.
    pub fn load_state(&self) -> Option<Result<String, EngineError>> {
        self.loaded()
            .map(|state| state.map(|loaded| loaded.description))
    }

    /// The engine's context window and a token counter for it, once loaded; `None` while
    /// loading, after a failed load, and for engines whose context size is not known.
    pub fn context_window(&self) -> Option<ContextWindow> {
        self.loaded()?.ok()?.context
    }

    fn loaded(&self) -> Option<Result<Loaded, EngineError>> {
        sync::lock(&self.shared.load_state).clone()
    }

    /// Jobs waiting or running on the engine.
    pub fn pending(&self) -> usize {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// Queues a generation; events arrive on the returned stream. A preparation in progress
    /// stops for it.
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
        // After the send: a preparation that starts later sees the job waiting (`serve`).
        if let Some(preparing) = sync::lock(&self.shared.preparing).take() {
            preparing.cancel();
        }
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

    /// Queues [`Engine::prepare`] of `prompt_start`: the opening of the prompt the caller
    /// expects next (a new conversation's system prompt, a follow-up's turn markers), evaluated
    /// while the engine would sit idle. A generation sent meanwhile goes first: the preparation
    /// is skipped if it has not started, and stops after its decode call in progress if it has.
    /// Not counted in [`EngineHandle::pending`]. The receiver gets how many tokens were
    /// evaluated; nobody needs to wait for it. `quoted` are the ranges of `prompt_start` that
    /// quote a message's words, as in [`GenerateRequest::quoted`].
    pub fn prepare(
        &self,
        prompt_start: String,
        quoted: Vec<Range<usize>>,
    ) -> Receiver<Result<usize, EngineError>> {
        let (done, receiver) = crossbeam_channel::bounded(1);
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Prepare {
                prompt_start,
                quoted,
                done,
            });
        }
        receiver
    }

    fn send(&self, job: Job, on_closed: impl FnOnce()) {
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            self.shared.pending.fetch_sub(1, Ordering::AcqRel);
            on_closed();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            reap(thread);
        }
    }
}

/// Joins finished-with engine threads on a thread of its own, so that nobody else waits for a
/// model load or a stalled server to notice it is no longer wanted.
fn reap(thread: JoinHandle<()>) {
    static REAPER: OnceLock<Option<Sender<JoinHandle<()>>>> = OnceLock::new();
    let reaper = REAPER.get_or_init(|| {
        let (sender, receiver) = crossbeam_channel::unbounded::<JoinHandle<()>>();
        std::thread::Builder::new()
            .name("punie-engine-reaper".to_owned())
            .spawn(move || {
                for thread in receiver {
                    let started = Instant::now();
                    if thread.join().is_err() {
                        tracing::error!("an engine thread panicked");
                    }
                    tracing::debug!(
                        "engine thread ended {:?} after its handle",
                        started.elapsed()
                    );
                }
            })
            .map_err(|err| tracing::error!("cannot start the engine reaper: {err}"))
            .ok()
            .map(|_| sender)
    });
    // Without a reaper the thread is detached: it still ends on its own.
    if let Some(reaper) = reaper {
        let _ = reaper.send(thread);
    }
}

/// The model's own tokenizer for llama.cpp engines (its vocabulary loaded apart, so that it can
/// count from any thread while the engine thread decodes); `None` for the others.
fn tokenizer(spec: &EngineSpec, config: &EngineConfig) -> Option<Arc<GgufTokenizer>> {
    match spec {
        EngineSpec::Default | EngineSpec::Llama { .. } => {
            let path = super::llama::model_path(spec, config).ok()?;
            match GgufTokenizer::load(&path) {
                Ok(tokenizer) => Some(Arc::new(tokenizer)),
                Err(err) => {
                    tracing::warn!("token counts are estimated: {err}");
                    None
                }
            }
        }
        EngineSpec::OpenAi { .. } | EngineSpec::Scripted { .. } => None,
    }
}

/// Serves jobs until every handle is gone.
fn serve(engine: &mut dyn Engine, jobs: &Receiver<Job>, shared: &Shared, deadline: Duration) {
    for job in jobs.iter() {
        match job {
            Job::Generate {
                request,
                cancel,
                events,
            } => {
                let result = generate(engine, &request, &cancel, shared, deadline, &events);
                shared.pending.fetch_sub(1, Ordering::AcqRel);
                let _ = events.send(StreamEvent::Done(result));
            }
            Job::CountTokens { text, reply } => {
                let result = if shared.shutdown.is_cancelled() {
                    Err(EngineError::Stopped)
                } else {
                    engine.count_tokens(&text)
                };
                let _ = reply.send(result);
                shared.pending.fetch_sub(1, Ordering::AcqRel);
            }
            Job::Prepare {
                prompt_start,
                quoted,
                done,
            } => {
                let stop = CancelFlag::joined(&[&shared.shutdown], None);
                *sync::lock(&shared.preparing) = Some(stop.clone());
                // After publishing the flag: a generation sent before this is seen here, one
                // sent after it sets the flag.
                let result = if jobs.is_empty() {
                    engine.prepare(&prompt_start, &quoted, &stop)
                } else {
                    Ok(0)
                };
                sync::lock(&shared.preparing).take();
                match &result {
                    Ok(n_evaluated) => {
                        tracing::debug!("prepared the next prompt: {n_evaluated} tokens")
                    }
                    Err(err) => tracing::debug!("preparing the next prompt failed: {err}"),
                }
                let _ = done.send(result);
            }
        }
    }
}

/// One generation under the run's cancel, the handle's shutdown and the deadline.
fn generate(
    engine: &mut dyn Engine,
    request: &GenerateRequest,
    cancel: &CancelFlag,
    shared: &Shared,
    deadline: Duration,
    events: &Sender<StreamEvent>,
) -> Result<Generation, EngineError> {
    if cancel.is_cancelled() {
        return Ok(Generation {
            finish: FinishReason::Cancelled,
            ..Generation::empty(0)
        });
    }
    if shared.shutdown.is_cancelled() {
        return Err(EngineError::Stopped);
    }
    let stop = CancelFlag::joined(&[cancel, &shared.shutdown], Some(Instant::now() + deadline));
    let result = engine.generate(request, &stop, &mut |text| {
        let _ = events.send(StreamEvent::Text(text.to_owned()));
    });
    match result {
        // Stopped by something other than the run's own cancel.
        Ok(generation)
            if generation.finish == FinishReason::Cancelled && !cancel.is_cancelled() =>
        {
            if stop.deadline_passed() {
                Err(EngineError::Deadline {
                    millis: deadline.as_millis().try_into().unwrap_or(u64::MAX),
                })
            } else {
                Err(EngineError::Stopped)
            }
        }
        other => other,
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
            Job::Prepare { done, .. } => {
                let _ = done.send(Err(err.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Sampling;

    /// A scripted engine whose one turn streams for about `seconds` (20 ms a chunk of 8).
    fn slow_engine(dir: &std::path::Path, seconds: usize, config: EngineConfig) -> EngineHandle {
        let path = dir.join("slow.json");
        let turn = "x".repeat(8 * 50 * seconds);
        let script = serde_json::json!({"turns": [turn], "chunk_delay_ms": 20});
        std::fs::write(&path, script.to_string()).unwrap();
        let engine = EngineHandle::spawn(EngineSpec::Scripted { path }, config);
        engine.wait_ready().unwrap();
        engine
    }

    fn request() -> GenerateRequest {
        GenerateRequest {
            prompt: "p".into(),
            quoted: Vec::new(),
            turn: 0,
            sampling: Sampling {
                max_tokens: 100_000,
                ..Sampling::default()
            },
        }
    }

    #[test]
    fn dropping_the_handle_neither_waits_nor_leaves_jobs_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let engine = slow_engine(dir.path(), 60, EngineConfig::default());
        let running = engine.generate(request(), CancelFlag::default());
        let queued = engine.generate(request(), CancelFlag::default());
        // The first job is streaming.
        assert!(matches!(running.next_event(), StreamEvent::Text(_)));
        let started = Instant::now();
        drop(engine);
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(running.finish(|_| {}).unwrap_err(), EngineError::Stopped);
        assert_eq!(queued.finish(|_| {}).unwrap_err(), EngineError::Stopped);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_generation_past_its_deadline_fails_and_the_next_one_runs() {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig {
            deadline: Some(Duration::from_millis(300)),
            ..EngineConfig::default()
        };
        let engine = slow_engine(dir.path(), 60, config);
        let started = Instant::now();
        let err = engine
            .generate(request(), CancelFlag::default())
            .finish(|_| {})
            .unwrap_err();
        assert_eq!(err, EngineError::Deadline { millis: 300 });
        assert!(err.to_string().contains("within 0.3 s"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // A cancelled job is still a cancel, not a deadline.
        let cancel = CancelFlag::default();
        let stream = engine.generate(request(), cancel.clone());
        cancel.cancel();
        let generation = stream.finish(|_| {}).unwrap();
        assert_eq!(generation.finish, FinishReason::Cancelled);
    }
}
