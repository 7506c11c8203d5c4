//! A pool of Whisper workers: transcription runs on its own threads, never on the caller's.
//!
//! Each worker owns a [`Recognizer`] over the shared model and decodes one turn at a time with
//! `threads` CPU threads. Final transcripts go before previews (a preview is only a courtesy
//! while the user speaks); a job whose cancel flag is set before it starts is skipped, and one
//! cancelled while it runs is aborted at whisper.cpp's next check.

use crate::SpeechError;
use crate::whisper::{Decode, SAMPLE_RATE, Transcript, WhisperModel};
use brazen_audio::Resampler;
use brazen_providers::catch_panic;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// What a job's answer is handed to.
pub type Reply = Box<dyn FnOnce(Result<Transcript, SpeechError>) + Send>;

/// One utterance to transcribe.
pub struct Job {
    /// Mono 16-bit samples.
    pub samples: Vec<i16>,
    /// Their rate (converted to 16 kHz on the worker).
    pub sample_rate: u32,
    /// Language and prompt (threads are the pool's).
    pub decode: Decode,
    /// A preview of a turn still being spoken: runs only when no final transcript waits.
    pub preview: bool,
    /// Someone waits on it now ([`brazen_providers::AsrRequest::urgent`]): it runs first, and
    /// is counted in [`WhisperPool::urgency`].
    pub urgent: bool,
    /// Worth doing only when the pool has nothing else to do
    /// ([`brazen_providers::AsrRequest::optional`]): answered with [`SpeechError::Busy`] at once
    /// when other work is queued or running, and aborted (answered so) when urgent work comes.
    pub optional: bool,
    /// Set it to drop the job (before it starts) or abort it (while it runs).
    pub cancel: Arc<AtomicBool>,
    /// Receives the transcript or the error.
    pub reply: Reply,
}

#[derive(Default)]
struct Queue {
    /// Jobs and when they were queued (the wait is logged).
    finals: VecDeque<(Job, Instant)>,
    previews: VecDeque<(Job, Instant)>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Jobs queued or being decoded.
    active: Arc<AtomicUsize>,
    /// Urgent jobs queued or being decoded.
    urgent: Arc<AtomicUsize>,
    /// The abort flags of optional jobs being decoded: urgent work sets them.
    optional: Mutex<Vec<Arc<AtomicBool>>>,
    /// Turns a language model is generating on the same cores ([`WhisperPool::generating`]).
    generating: Arc<AtomicUsize>,
}

/// Whisper workers sharing one model.
pub struct WhisperPool {
    shared: Arc<Shared>,
    multilingual: bool,
}

impl WhisperPool {
    /// Starts `workers` threads, each decoding with `threads` CPU threads.
    pub fn start(model: WhisperModel, workers: usize, threads: usize) -> Result<WhisperPool, SpeechError> {
        let model = Arc::new(model);
        let multilingual = model.is_multilingual();
        let shared = Arc::new(Shared::new());
        for i in 0..workers.max(1) {
            let (model, shared) = (model.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("whisper-{i}"))
                .spawn(move || work(&model, &shared, threads.max(1)))
                .map_err(|e| SpeechError::Engine(format!("cannot start a Whisper worker: {e}")))?;
        }
        Ok(WhisperPool { shared, multilingual })
    }

    /// Whether the model knows languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// How many jobs are queued or being decoded, kept up to date: other engines sharing the
    /// CPU can give way while speech is being recognised.
    pub fn activity(&self) -> Arc<AtomicUsize> {
        self.shared.active.clone()
    }

    /// How many urgent jobs are queued or being decoded: a reply being generated pauses for
    /// them.
    pub fn urgency(&self) -> Arc<AtomicUsize> {
        self.shared.urgent.clone()
    }

    /// Work outside the pool on the same cores, to be kept up to date by whoever does it (turns
    /// a language model is generating): optional jobs are refused while it is above zero.
    pub fn generating(&self) -> Arc<AtomicUsize> {
        self.shared.generating.clone()
    }

    /// Queues a job (an optional one only when the pool, and the work of
    /// [`WhisperPool::generating`], are idle).
    pub fn submit(&self, job: Job) {
        let busy = self.shared.active.load(Ordering::Relaxed) > 0 || self.shared.generating.load(Ordering::Relaxed) > 0;
        if job.optional && busy {
            answer(job.reply, Err(SpeechError::Busy));
            return;
        }
        if job.urgent {
            // Optional decodes give their cores up to it.
            for abort in self.shared.optional.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                abort.store(true, Ordering::Relaxed);
            }
        }
        self.shared.active.fetch_add(1, Ordering::Relaxed);
        if job.urgent {
            self.shared.urgent.fetch_add(1, Ordering::Relaxed);
        }
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if job.urgent {
            q.finals.push_front((job, now));
        } else if job.preview {
            q.previews.push_back((job, now));
        } else {
            q.finals.push_back((job, now));
        }
        drop(q);
        self.shared.ready.notify_one();
    }
}

impl Drop for WhisperPool {
    fn drop(&mut self) {
        self.shared.queue.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.shared.ready.notify_all();
    }
}

impl Shared {
    /// An empty queue, nothing active.
    fn new() -> Shared {
        Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            active: Arc::new(AtomicUsize::new(0)),
            urgent: Arc::new(AtomicUsize::new(0)),
            optional: Mutex::new(Vec::new()),
            generating: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A job was answered or dropped.
    fn done(&self, urgent: bool) {
        if urgent {
            self.urgent.fetch_sub(1, Ordering::Relaxed);
        }
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

fn next_job(shared: &Shared) -> Option<(Job, Instant)> {
    let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if q.closed {
            return None;
        }
        if let Some(job) = q.finals.pop_front().or_else(|| q.previews.pop_front()) {
            return Some(job);
        }
        q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
    }
}

fn work(model: &WhisperModel, shared: &Shared, threads: usize) {
    let mut recognizer = match model.recognizer() {
        Ok(r) => r,
        Err(e) => {
            // Answer every job with the reason rather than leave callers waiting.
            while let Some((job, _)) = next_job(shared) {
                let _done = Done { shared, urgent: job.urgent };
                answer(job.reply, Err(SpeechError::Engine(format!("the Whisper worker could not start: {e}"))));
            }
            return;
        }
    };
    // The first decode of a recogniser sets up its buffers (≈0.4 s more than the next): done
    // now, not on a user's first turn. A short hum: it is neither trimmed away as silence nor
    // long enough for the padded retry.
    let hum: Vec<f32> = (0..SAMPLE_RATE as usize * 2 / 5)
        .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 180.0 / SAMPLE_RATE as f32).sin() * 0.1)
        .collect();
    let started = Instant::now();
    let warm = recognizer.transcribe(&hum, &Decode { threads, ..Decode::default() });
    tracing::debug!(
        "whisper: a worker warmed up in {} ms: {:?}",
        started.elapsed().as_millis(),
        warm.map(|t| t.ending)
    );
    while let Some((job, queued)) = next_job(shared) {
        // Counted as done however the job ends, a panic included.
        let _done = Done { shared, urgent: job.urgent };
        if job.cancel.load(Ordering::Relaxed) {
            continue;
        }
        let decode = Decode { threads, ..job.decode };
        let started = Instant::now();
        if job.optional {
            shared.optional.lock().unwrap_or_else(|p| p.into_inner()).push(job.cancel.clone());
        }
        // A panic in the decoder fails this job, not the worker (every later job of every
        // session still has it); its recogniser, perhaps left half-way, is made again.
        let result = catch_panic(|| {
            let audio = to_whisper_rate(&job.samples, job.sample_rate);
            recognizer.transcribe_cancellable(&audio, &decode, &job.cancel)
        })
        .unwrap_or_else(|panic| {
            tracing::error!("whisper: a decode failed unexpectedly: {panic}");
            match model.recognizer() {
                Ok(fresh) => recognizer = fresh,
                Err(e) => tracing::error!("whisper: the worker's recogniser cannot be made again: {e}"),
            }
            Err(SpeechError::Engine(format!("Whisper failed unexpectedly: {panic}")))
        });
        if job.optional {
            shared.optional.lock().unwrap_or_else(|p| p.into_inner()).retain(|a| !Arc::ptr_eq(a, &job.cancel));
        }
        // Given up for urgent work (its caller never reads the result of one it cancelled).
        let result = if job.optional && result.is_err() && job.cancel.load(Ordering::Relaxed) {
            Err(SpeechError::Busy)
        } else {
            result
        };
        tracing::debug!(
            "whisper: {:.2} s of audio (preview: {}, urgent: {}) waited {} ms, decoded in {} ms: {:?}, {} tokens",
            job.samples.len() as f64 / f64::from(job.sample_rate.max(1)),
            job.preview,
            job.urgent,
            started.duration_since(queued).as_millis(),
            started.elapsed().as_millis(),
            result.as_ref().map(|t| t.ending),
            result.as_ref().map_or(0, |t| t.tokens)
        );
        answer(job.reply, result);
    }
}

/// CPU threads per Whisper decode when none are chosen: half the cores, 1 to 4. whisper.cpp's
/// threads wait for each other at every step by spinning, so a decode with as many threads as
/// cores slows down badly when anything else runs, or when its threads start on cores that
/// were idle, as a pause's preview does. Measured on 2 cores (`bench/speech.sh --previews
/// --threads N --idle-ms 100`, bench/README.md "Issue 19, session 21"): after 100 ms of idle, 2
/// threads took 150–157 ms at the median and 245–282 at p90, 1 thread 124–130 and 191–212;
/// beside one busy core, 616 against 107 ms at the median. (Idle and alone, 2 threads are
/// quicker: 67–80 against 108 ms.) Machines with more cores were not measured.
pub fn default_whisper_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores / 2).clamp(1, 4)
}

/// Hands a job its answer; a panic in the code it hands it to is logged, not the worker's end.
fn answer(reply: Reply, result: Result<Transcript, SpeechError>) {
    if let Err(panic) = catch_panic(move || reply(result)) {
        tracing::error!("whisper: a transcript's receiver failed: {panic}");
    }
}

/// Counts a job as done ([`Shared::done`]) when dropped.
struct Done<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.shared.done(self.urgent);
    }
}

/// 16-bit samples at any rate as Whisper's 16 kHz floats.
pub fn to_whisper_rate(samples: &[i16], rate: u32) -> Vec<f32> {
    let floats: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32_768.0).collect();
    if rate == SAMPLE_RATE {
        return floats;
    }
    let mut resampler = Resampler::new(rate, SAMPLE_RATE);
    let mut out = Vec::with_capacity(floats.len() * SAMPLE_RATE as usize / rate.max(1) as usize + 32);
    resampler.process(&floats, &mut out);
    resampler.flush(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_job_is_refused_by_a_busy_pool_and_gives_way_to_urgent_work() {
        // A pool without workers: what is queued stays queued.
        let without_workers = || WhisperPool { shared: Arc::new(Shared::new()), multilingual: false };
        let pool = without_workers();
        let answers = Arc::new(Mutex::new(Vec::new()));
        let job = |optional: bool, urgent: bool| {
            let answers = answers.clone();
            Job {
                samples: vec![0; 160],
                sample_rate: 16_000,
                decode: Decode::default(),
                preview: true,
                urgent,
                optional,
                cancel: Arc::new(AtomicBool::new(false)),
                reply: Box::new(move |r: Result<Transcript, SpeechError>| {
                    answers.lock().unwrap().push(r.map(|t| t.text))
                }),
            }
        };
        // Idle: an optional job is queued like any other.
        pool.submit(job(true, false));
        assert_eq!(pool.activity().load(Ordering::Relaxed), 1);
        assert!(answers.lock().unwrap().is_empty());
        // Busy: the next is answered at once, and not counted.
        pool.submit(job(true, false));
        assert_eq!(pool.activity().load(Ordering::Relaxed), 1);
        assert!(matches!(answers.lock().unwrap().as_slice(), [Err(SpeechError::Busy)]), "{answers:?}");
        // So is one while a language model generates a turn on the same cores.
        let idle = without_workers();
        idle.generating().store(1, Ordering::Relaxed);
        idle.submit(job(true, false));
        assert_eq!(idle.activity().load(Ordering::Relaxed), 0);
        assert_eq!(answers.lock().unwrap().len(), 2);
        // An optional decode in progress is told to stop when urgent work comes; other work
        // does not stop it.
        let running = Arc::new(AtomicBool::new(false));
        pool.shared.optional.lock().unwrap().push(running.clone());
        pool.submit(job(false, false));
        assert!(!running.load(Ordering::Relaxed));
        pool.submit(job(false, true));
        assert!(running.load(Ordering::Relaxed));
        assert_eq!(pool.activity().load(Ordering::Relaxed), 3);
        assert_eq!(pool.urgency().load(Ordering::Relaxed), 1);
    }

    #[test]
    fn audio_is_converted_to_16_khz() {
        assert_eq!(to_whisper_rate(&[16_384, -16_384], 16_000), vec![0.5, -0.5]);
        assert_eq!(to_whisper_rate(&vec![0; 24_000], 24_000).len(), 16_000);
        assert_eq!(to_whisper_rate(&vec![0; 8_000], 8_000).len(), 16_000);
    }
}
