//! Whisper tiny.en (converted from the registry's CTranslate2 package) on real human speech and
//! on brazen's own voice.

use brazen_audio::Resampler;
use brazen_models::{Manifest, Store, progress};
use brazen_speech::wer::word_error_rate;
use brazen_speech::whisper::Ending;
use brazen_speech::{Decode, PiperVoice, WhisperModel};
use std::path::{Path, PathBuf};

fn install(name: &str) -> PathBuf {
    Store::new(Store::default_root()).install(Manifest::builtin().get(name).unwrap(), &progress()).unwrap()
}

/// Reads a mono PCM16 WAV file: samples as floats and the rate.
fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    let mut at = 12;
    let mut rate = 0;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            assert_eq!(u16::from_le_bytes([body[0], body[1]]), 1, "PCM");
            assert_eq!(u16::from_le_bytes([body[2], body[3]]), 1, "mono");
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            let samples = body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32_768.0).collect();
            return (samples, rate);
        }
        at += 8 + len + (len & 1);
    }
    panic!("{} has no data chunk", path.display());
}

fn to_16k(samples: &[f32], rate: u32) -> Vec<f32> {
    let mut r = Resampler::new(rate, 16_000);
    let mut out = Vec::new();
    r.process(samples, &mut out);
    r.flush(&mut out);
    out
}

fn model() -> WhisperModel {
    WhisperModel::load(&install("whisper-tiny-en").join("ggml-model.bin")).unwrap()
}

const BECKETT: &str = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.";
const TWO_CITIES: &str = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the \
    age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, \
    it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything \
    before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the other \
    way - in short, the period was so far like the present period, that some of its noisiest authorities \
    insisted on its being received, for good or for evil, in the superlative degree of comparison only.";

#[test]
fn real_human_speech_is_transcribed() {
    let model = model();
    let mut rec = model.recognizer().unwrap();
    let samples = install("speech-samples");
    let decode = Decode { threads: 2, ..Decode::default() };
    for (file, reference) in [("beckett.wav", BECKETT), ("two_cities.wav", TWO_CITIES)] {
        let (audio, rate) = read_wav(&samples.join(file));
        let t = rec.transcribe(&to_16k(&audio, rate), &decode).unwrap();
        let wer = word_error_rate(reference, &t.text);
        eprintln!("{file}: WER {:.1}% ({:?}) {:?}", wer * 100.0, t.ending, t.text);
        assert!(wer <= 0.10, "{file}: WER {:.1}%: {:?}", wer * 100.0, t.text);
    }
}

#[test]
fn brazens_voice_is_transcribed_and_silence_is_nothing() {
    let model = model();
    let mut rec = model.recognizer().unwrap();
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let dir = install("piper-en-us-joe-medium");
    let voice =
        PiperVoice::load(&dir.join("en_US-joe-medium.onnx"), &dir.join("en_US-joe-medium.onnx.json"), &ort).unwrap();
    let decode = Decode { threads: 2, ..Decode::default() };
    let text = "Your order will arrive on Friday.";
    let speech = voice.synthesize(text, 1.0).unwrap();
    let floats: Vec<f32> = speech.samples.iter().map(|&s| s as f32 / 32_768.0).collect();
    let mut audio = to_16k(&floats, speech.sample_rate);
    // A second of trailing silence: the case that makes a short-context decode loop.
    audio.extend(vec![0.0; 16_000]);
    let t = rec.transcribe(&audio, &decode).unwrap();
    assert_eq!(word_error_rate(text, &t.text), 0.0, "{t:?}");
    assert_ne!(t.ending, Ending::PaddedFallback, "{t:?}");

    let silence = rec.transcribe(&vec![0.0; 48_000], &decode).unwrap();
    assert_eq!(silence.text, "");
}

#[test]
fn other_languages_need_a_multilingual_model() {
    let model = model();
    assert!(!model.is_multilingual());
    let mut rec = model.recognizer().unwrap();
    let decode = Decode { threads: 1, language: Some("de-DE".into()), ..Decode::default() };
    let err = rec.transcribe(&vec![0.1; 16_000], &decode).unwrap_err().to_string();
    assert!(err.contains("English-only") && err.contains("\"de\""), "{err}");
    let english = Decode { threads: 1, language: Some("en-US".into()), ..Decode::default() };
    assert!(rec.transcribe(&vec![0.0; 16_000], &english).is_ok());
}

#[test]
fn a_missing_or_bad_model_file_is_a_clear_error() {
    let err = WhisperModel::load(Path::new("/nonexistent/ggml.bin")).err().unwrap().to_string();
    assert!(err.contains("/nonexistent/ggml.bin") && err.contains("no such file"), "{err}");
    let junk = std::env::temp_dir().join(format!("brazen-junk-{}.bin", std::process::id()));
    std::fs::write(&junk, b"not a model").unwrap();
    let err = WhisperModel::load(&junk).err().unwrap().to_string();
    std::fs::remove_file(&junk).unwrap();
    assert!(err.contains("not a Whisper ggml model"), "{err}");
}

/// German speech from espeak-ng (the phonemizer brazen already needs), as 16 kHz floats.
fn espeak_german(text: &str) -> Vec<f32> {
    let out = std::process::Command::new("espeak-ng").args(["-v", "de", "--stdout", text]).output().unwrap();
    assert!(out.status.success());
    let path = std::env::temp_dir().join(format!("brazen-de-{}.wav", std::process::id()));
    // espeak writes a streaming header (unknown sizes); fix the data size before parsing.
    let mut wav = out.stdout;
    let data_len = (wav.len() - 44) as u32;
    wav[40..44].copy_from_slice(&data_len.to_le_bytes());
    std::fs::write(&path, &wav).unwrap();
    let (audio, rate) = read_wav(&path);
    std::fs::remove_file(&path).unwrap();
    to_16k(&audio, rate)
}

#[test]
fn the_multilingual_model_honours_the_language() {
    let model = WhisperModel::load(&install("whisper-base").join("ggml-model.bin")).unwrap();
    assert!(model.is_multilingual());
    let mut rec = model.recognizer().unwrap();
    let text = "Guten Morgen. Wo ist mein Paket?";
    let audio = espeak_german(text);
    let german = Decode { threads: 2, language: Some("de-DE".into()), ..Decode::default() };
    let t = rec.transcribe(&audio, &german).unwrap();
    let wer = word_error_rate(text, &t.text);
    assert!(wer <= 0.34, "WER {:.0}%: {:?}", wer * 100.0, t.text);
    // Told the speech is English, Whisper translates or spells it out: not the German words.
    let english = Decode { threads: 2, language: Some("en".into()), ..Decode::default() };
    let t_en = rec.transcribe(&audio, &english).unwrap();
    assert_ne!(t_en.text, t.text);
}

#[test]
fn urgent_words_are_recognised_first_and_counted_while_they_wait() {
    use brazen_speech::{Job, WhisperPool};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    let pool = WhisperPool::start(model(), 1, 2).unwrap();
    let (urgency, activity) = (pool.urgency(), pool.activity());
    let order = Arc::new(Mutex::new(Vec::new()));
    let (done, finished) = mpsc::channel();
    let job = |name: &'static str, seconds: usize, preview: bool, urgent: bool| {
        let (order, done) = (order.clone(), done.clone());
        Job {
            samples: vec![0; 16_000 * seconds],
            sample_rate: 16_000,
            decode: Decode::default(),
            preview,
            urgent,
            optional: false,
            cancel: Arc::new(AtomicBool::new(false)),
            reply: Box::new(move |result| {
                assert!(result.is_ok(), "{name}: {:?}", result.err());
                order.lock().unwrap().push(name);
                done.send(()).unwrap();
            }),
        }
    };
    // The worker is busy with a turn; a preview, then words someone waits on, queue behind it.
    pool.submit(job("turn", 8, false, false));
    pool.submit(job("preview", 1, true, false));
    pool.submit(job("urgent", 1, true, true));
    assert_eq!(urgency.load(Ordering::Relaxed), 1, "the urgent job is counted while it waits");
    for _ in 0..3 {
        finished.recv_timeout(std::time::Duration::from_secs(60)).expect("every job is answered");
    }
    let order = order.lock().unwrap().clone();
    let at = |name| order.iter().position(|n| *n == name).unwrap();
    assert!(at("urgent") < at("preview"), "urgent words before a courtesy preview: {order:?}");
    // The counts drop as each job is done (just after its reply).
    let settled = std::time::Instant::now();
    while (urgency.load(Ordering::Relaxed), activity.load(Ordering::Relaxed)) != (0, 0) {
        assert!(settled.elapsed().as_secs() < 10, "the pool still counts a job it answered");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_job_that_panics_on_a_worker_does_not_stop_it() {
    use brazen_speech::{Job, WhisperPool};
    use std::time::Duration;
    let pool = WhisperPool::start(model(), 1, 2).unwrap();
    let job = |reply: brazen_speech::Reply| silent_second(reply);
    let (tx, rx) = std::sync::mpsc::channel();
    // A job panics on the one worker's thread in the code it hands the transcript to...
    pool.submit(job(Box::new(|_| panic!("a fault on the worker"))));
    // ...another while it is being decoded (audio at 0 Hz cannot be resampled): that one is
    // answered with the failure...
    pool.submit(Job { sample_rate: 0, ..job(sent_to(tx.clone())) });
    let failed = rx.recv_timeout(Duration::from_secs(60)).expect("the failed job is answered").unwrap_err();
    assert!(failed.contains("Whisper failed unexpectedly"), "{failed}");
    // ...and the next job is still answered, by the same single worker.
    pool.submit(job(sent_to(tx)));
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).expect("the next job is answered").unwrap(), "");
    // Every job is counted as done (other engines give way while any is counted).
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while pool.activity().load(std::sync::atomic::Ordering::Relaxed) > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pool.activity().load(std::sync::atomic::Ordering::Relaxed), 0);
}

/// A job of a second of silence at 16 kHz (a final transcript).
fn silent_second(reply: brazen_speech::Reply) -> brazen_speech::Job {
    brazen_speech::Job {
        samples: vec![0; 16_000],
        sample_rate: 16_000,
        decode: Decode::default(),
        preview: false,
        urgent: false,
        optional: false,
        cancel: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        reply,
    }
}

/// A reply that sends the transcript's text (or the error's) to `tx`.
fn sent_to(tx: std::sync::mpsc::Sender<Result<String, String>>) -> brazen_speech::Reply {
    Box::new(move |result| tx.send(result.map(|t| t.text).map_err(|e| e.to_string())).unwrap())
}
