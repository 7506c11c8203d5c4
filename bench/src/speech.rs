//! Speech-engine benchmark (issue 3): Silero VAD cost per live stream, Whisper tiny.en latency
//! from the end of a ~3 s turn to its transcript, Piper latency and real-time factor, and the
//! peak memory of the loaded speech stack.
//!
//! Run: `bench/speech.sh` (release build). Models are installed into the default store first.
//! `bench/speech.sh --whisper-files A.bin B.bin …` instead times Whisper alone from each ggml
//! file on the same turns, the files taking turns round by round (a conversion's A/B).
//! `bench/speech.sh --previews` times Whisper as a pause's preview meets it: the five callers'
//! questions and paused sentences, cut 70 ms after the sound stops (at the end, and at the pause
//! inside), with the decoding steps each took and how each decode ended.

mod spoken;
#[path = "stats.rs"]
mod stats;
mod voices;
use brazen_audio::{Resampler, Vad};
use brazen_models::{Manifest, Store, progress};
use brazen_speech::wer::word_error_rate;
use brazen_speech::{
    Decode, KokoroVoice, PiperVoice, SMART_TURN_FILE, SileroModel, SmartTurnModel, SpeechPart, Voice, WhisperModel,
    to_whisper_rate,
};
use stats::percentile;
use std::time::Instant;

fn install(name: &str) -> std::path::PathBuf {
    Store::new(Store::default_root())
        .install(Manifest::builtin().get(name).expect("in the manifest"), &progress())
        .expect("installed")
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Whisper's test turns: about 3 s each as the server commits them (300 ms of prefix padding
/// before the speech, 500 ms of silence after it), at 24 kHz, with their text.
const TURNS: [&str; 5] = [
    "Where is my order from last Tuesday?",
    "Can I change the delivery address, please?",
    "I would like to return the blue shoes.",
    "Do you have these headphones in black?",
    "How much is the express shipping to Leeds?",
];

/// [`TURNS`] spoken by `voice`.
fn framed_turns(voice: &PiperVoice) -> Vec<(String, Vec<i16>)> {
    TURNS
        .iter()
        .map(|text| {
            let speech = voice.synthesize(text, 1.0).expect("synthesis");
            let mut at24 = Vec::new();
            Resampler::new(speech.sample_rate, 24_000).process_i16(&speech.samples, &mut at24);
            (text.to_string(), [vec![0; 7_200], at24, vec![0; 12_000]].concat())
        })
        .collect()
}

/// `--whisper-files`: each file's transcript time (2 threads, greedy) and WER on [`TURNS`], ten
/// rounds, every file once per round.
fn whisper_files(voice: &PiperVoice, files: &[String]) {
    let framed = framed_turns(voice);
    let models: Vec<WhisperModel> =
        files.iter().map(|f| WhisperModel::load(std::path::Path::new(f)).expect("Whisper loads")).collect();
    let mut recognizers: Vec<_> = models.iter().map(|m| m.recognizer().expect("state")).collect();
    let decode = Decode { threads: 2, beam_size: 1, ..Decode::default() };
    let mut took = vec![Vec::new(); files.len()];
    let mut wer = vec![0.0; files.len()];
    for round in 0..11 {
        for (i, recognizer) in recognizers.iter_mut().enumerate() {
            for (text, samples) in &framed {
                let t = Instant::now();
                let transcript = recognizer.transcribe(&to_whisper_rate(samples, 24_000), &decode).expect("transcript");
                if round > 0 {
                    took[i].push(t.elapsed().as_secs_f64() * 1000.0);
                    wer[i] += word_error_rate(text, &transcript.text) / (10 * framed.len()) as f64;
                }
            }
        }
    }
    for (i, file) in files.iter().enumerate() {
        println!(
            "{file}: transcript p50 {:.0} ms, p95 {:.0} ms (WER {:.1}%)",
            percentile(took[i].clone(), 0.5),
            percentile(took[i].clone(), 0.95),
            wer[i] * 100.0
        );
    }
}

/// Audio heard before a pause is noticed: how long after the sound stops a preview starts.
const PREVIEW_AFTER_MS: usize = 70;

/// `audio` (24 kHz, 300 ms of silence first) up to [`PREVIEW_AFTER_MS`] after the first stretch
/// of 300 ms or more of quiet that follows speech, or after its last sound.
fn heard_until_pause(audio: &[i16]) -> &[i16] {
    const LOUD: u16 = 300;
    let quiet_run = 24 * 300;
    let first = audio.iter().position(|s| s.unsigned_abs() > LOUD).unwrap_or(0);
    let mut last_loud = first;
    for (i, s) in audio.iter().enumerate().skip(first) {
        if s.unsigned_abs() > LOUD {
            last_loud = i;
        } else if i - last_loud >= quiet_run {
            break;
        }
    }
    &audio[..(last_loud + 24 * PREVIEW_AFTER_MS).min(audio.len())]
}

/// `--previews [--threads N] [--idle-ms MS]`: Whisper on what a pause's preview hears (module
/// doc), greedy, with `threads` CPU threads (the server's default: half the cores, 1 to 4), each
/// decode after `idle_ms` of idle (0): in the server, a pause's preview comes after the cores
/// idled. Also prints Smart Turn's probability that each is a finished turn (untimed).
fn previews() {
    let voices = voices::Voices::load();
    let whisper = WhisperModel::load(&install("whisper-tiny-en").join("ggml-model.bin")).expect("Whisper loads");
    let mut recognizer = whisper.recognizer().expect("state");
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let turn = SmartTurnModel::load(&install("smart-turn-v3.2").join(SMART_TURN_FILE), &ort).expect("Smart Turn loads");
    let number = |flag: &str, default: u64| {
        let args: Vec<String> = std::env::args().collect();
        let at = args.iter().position(|a| a == flag);
        at.map_or(default, |i| args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{flag} N")))
    };
    let threads = number("--threads", brazen_speech::default_whisper_threads() as u64) as usize;
    let idle_ms = number("--idle-ms", 0);
    let decode = Decode { threads, beam_size: 1, ..Decode::default() };
    let mut cases: Vec<(String, Vec<i16>)> = Vec::new();
    for (voice, name) in voices.speakers() {
        let texts = spoken::QUESTIONS.iter().map(|q| (*q, None));
        for (text, pause) in texts.chain(spoken::PAUSED.iter().map(|(t, after)| (*t, Some((*after, 500))))) {
            let (speech, label) = spoken::spoken(voice, name, text, pause);
            let audio = [vec![0; 24 * 300], speech].concat();
            if pause.is_some() {
                cases.push((format!("{label} (to the pause)"), heard_until_pause(&audio).to_vec()));
            }
            let end = audio.iter().rposition(|s| s.unsigned_abs() > 300).unwrap_or(0) + 24 * PREVIEW_AFTER_MS;
            cases.push((label, audio[..end.min(audio.len())].to_vec()));
        }
    }
    let (mut took, mut tokens, mut endings) = (Vec::new(), Vec::new(), std::collections::BTreeMap::new());
    let mut finished = Vec::new();
    for round in 0..4 {
        for (label, audio) in &cases {
            if idle_ms > 0 {
                std::thread::sleep(std::time::Duration::from_millis(idle_ms));
            }
            let t = Instant::now();
            let transcript = recognizer.transcribe(&to_whisper_rate(audio, 24_000), &decode).expect("transcript");
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if round == 0 {
                // Untimed: the warm-up round also hears the end-of-turn model.
                finished.push(turn.probability(audio, 24_000).expect("Smart Turn"));
                continue;
            }
            took.push(ms);
            tokens.push(transcript.tokens as f64);
            *endings.entry(format!("{:?}", transcript.ending)).or_insert(0) += 1;
            if round == 1 {
                println!(
                    "{ms:4.0} ms {:2} tokens {:?} Smart Turn {:.2}: {label} → {:?}",
                    transcript.tokens,
                    transcript.ending,
                    finished[took.len() - 1],
                    transcript.text
                );
            }
        }
    }
    println!(
        "{} previews × 3 rounds, {threads} thread(s), {idle_ms} ms idle before each: p50 / p75 / p90 / max {:.0} / {:.0} / {:.0} / {:.0} ms; tokens p50 {:.0}, {:.0} a round; endings {endings:?}",
        cases.len(),
        percentile(took.clone(), 0.5),
        percentile(took.clone(), 0.75),
        percentile(took.clone(), 0.9),
        percentile(took, 1.0),
        percentile(tokens.clone(), 0.5),
        tokens.iter().sum::<f64>() / 3.0
    );
}

fn main() {
    if std::env::args().any(|a| a == "--previews") {
        return previews();
    }
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let piper_dir = install("piper-en-us-joe-medium");
    let vad_dir = install("silero-vad");

    // Piper: 12-word sentences; first audio = text in → first streamed audio chunk out.
    let t = Instant::now();
    let voice =
        PiperVoice::load(&piper_dir.join("en_US-joe-medium.onnx"), &piper_dir.join("en_US-joe-medium.onnx.json"), &ort)
            .expect("Piper loads");
    let piper_load = t.elapsed().as_secs_f64();
    let files: Vec<String> = std::env::args().skip_while(|a| a != "--whisper-files").skip(1).collect();
    if !files.is_empty() {
        return whisper_files(&voice, &files);
    }
    let sentences = [
        "Your order of two blue running shoes shipped this morning from Leeds.",
        "The refund for order number five four two will arrive within three days.",
        "Our store on Main Street is open from nine in the morning today.",
        "I can help you track a parcel, change an address, or return items.",
    ];
    voice.synthesize("Warm up.", 1.0).expect("synthesis");
    let (mut latencies, mut audio_s, mut synth_s, mut phonemize) = (Vec::new(), 0.0, 0.0, Vec::new());
    for round in 0..3 {
        for s in sentences {
            let t = Instant::now();
            voice.phonemes(s).expect("phonemes");
            phonemize.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let (mut first, mut samples) = (None, 0);
            voice
                .speak(s, "", 1.0, &mut |part| {
                    if let SpeechPart::Audio(chunk) = part {
                        first.get_or_insert_with(|| t.elapsed().as_secs_f64());
                        samples += chunk.len();
                    }
                    true
                })
                .expect("synthesis");
            let took = t.elapsed().as_secs_f64();
            latencies.push(first.expect("audio") * 1000.0);
            if round > 0 {
                synth_s += took;
                audio_s += samples as f64 / voice.sample_rate() as f64;
            }
        }
    }

    // Kokoro: the higher-quality voice.
    let kokoro = KokoroVoice::load(&install("kokoro-82m"), &ort, "af_heart").expect("Kokoro loads");
    kokoro.synthesize("Warm up.", "af_heart", 1.0).expect("synthesis");
    let (mut k_audio, mut k_synth, mut k_first) = (0.0, 0.0, Vec::new());
    for s in sentences {
        let t = Instant::now();
        let speech = kokoro.synthesize(s, "af_heart", 1.0).expect("synthesis");
        let took = t.elapsed().as_secs_f64();
        k_first.push(took * 1000.0);
        k_synth += took;
        k_audio += speech.samples.len() as f64 / speech.sample_rate as f64;
    }

    // Silero: per-frame cost on speech-like input, as a share of one core per live stream.
    let model = SileroModel::load(&vad_dir.join("silero_vad.onnx"), &ort).expect("Silero loads");
    let mut vad = model.detector();
    let speech = voice.synthesize(sentences[0], 1.0).expect("synthesis").samples;
    let floats: Vec<f32> = speech.iter().map(|s| *s as f32 / 32_768.0).collect();
    let mut at16 = Vec::new();
    Resampler::new(voice.sample_rate(), 16_000).process(&floats, &mut at16);
    let frames: Vec<&[f32]> = at16.chunks_exact(512).collect();
    let mut per_frame = Vec::new();
    for _ in 0..20 {
        for f in &frames {
            let t = Instant::now();
            vad.process(f);
            per_frame.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let mean_frame = per_frame.iter().sum::<f64>() / per_frame.len() as f64;

    // Whisper tiny.en: [`TURNS`], from 24 kHz samples to the transcript.
    let t = Instant::now();
    let whisper = WhisperModel::load(&install("whisper-tiny-en").join("ggml-model.bin")).expect("Whisper loads");
    let whisper_load = t.elapsed().as_secs_f64();
    let mut recognizer = whisper.recognizer().expect("state");
    let framed = framed_turns(&voice);
    let mut asr = std::collections::BTreeMap::new();
    for (threads, beam_size) in [(2, 1), (2, 3), (1, 1)] {
        let decode = Decode { threads, beam_size, ..Decode::default() };
        let (mut took, mut wer, mut seconds) = (Vec::new(), 0.0, 0.0);
        for round in 0..5 {
            for (text, samples) in &framed {
                let t = Instant::now();
                let transcript = recognizer.transcribe(&to_whisper_rate(samples, 24_000), &decode).expect("transcript");
                if round > 0 {
                    took.push(t.elapsed().as_secs_f64() * 1000.0);
                    wer += word_error_rate(text, &transcript.text) / (4 * framed.len()) as f64;
                    seconds += samples.len() as f64 / 24_000.0 / (4 * framed.len()) as f64;
                }
            }
        }
        asr.insert((threads, beam_size), (took, wer, seconds));
    }

    println!("whisper tiny.en load       {:.2} s", whisper_load);
    for ((threads, beam), (took, wer, seconds)) in asr.iter().rev() {
        println!(
            "whisper tiny.en {threads} thread(s), beam {beam}: turn of {seconds:.1} s → transcript p50 {:.0} ms, p95 {:.0} ms (WER {:.1}%)",
            percentile(took.clone(), 0.5),
            percentile(took.clone(), 0.95),
            wer * 100.0
        );
    }
    println!("piper load                 {:.2} s", piper_load);
    println!(
        "piper 12-word sentence     first audio p50 {:.0} ms, p95 {:.0} ms (streamed; espeak-ng phonemes p50 {:.1} ms)",
        percentile(latencies.clone(), 0.5),
        percentile(latencies, 0.95),
        percentile(phonemize, 0.5)
    );
    println!("piper real-time factor     {:.3} ({:.1} s of audio in {:.2} s)", synth_s / audio_s, audio_s, synth_s);
    println!(
        "kokoro 12-word sentence    first audio p50 {:.0} ms; real-time factor {:.3} ({:.1} s of audio in {:.2} s)",
        percentile(k_first, 0.5),
        k_synth / k_audio,
        k_audio,
        k_synth
    );
    println!(
        "silero per 32 ms frame     mean {:.3} ms, p99 {:.3} ms = {:.2}% of one core per live stream",
        mean_frame,
        percentile(per_frame, 0.99),
        mean_frame / 32.0 * 100.0
    );
    println!("peak RSS (Piper, Kokoro, Silero, Whisper) {:.0} MiB", peak_rss_kib() as f64 / 1024.0);
}
