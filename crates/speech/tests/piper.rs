//! Piper on the installed voice: phonemes, ids, and speech that the Silero VAD hears as speech.

use brazen_audio::{Resampler, Vad};
use brazen_models::{Manifest, Store, progress};
use brazen_speech::{PiperVoice, SileroVad, SpeechPart, Voice};

fn install(name: &str) -> std::path::PathBuf {
    let store = Store::new(Store::default_root());
    store.install(Manifest::builtin().get(name).unwrap(), &progress()).unwrap()
}

fn voice() -> PiperVoice {
    let dir = install("piper-en-us-joe-medium");
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    PiperVoice::load(&dir.join("en_US-joe-medium.onnx"), &dir.join("en_US-joe-medium.onnx.json"), &ort).unwrap()
}

#[test]
fn phonemes_keep_clause_punctuation_and_map_to_piper_ids() {
    let v = voice();
    let ipa = v.phonemes("Hello, your order has shipped. It costs $59.99!").unwrap();
    assert!(ipa.starts_with("həlˈoʊ,"), "{ipa}");
    assert!(ipa.contains("ʃˈɪpt. ") && ipa.ends_with('!'), "{ipa}");
    assert!(ipa.contains("fˈɪfti"), "numbers are read out: {ipa}");
    let ids = v.ids("hə");
    assert_eq!(ids.first(), Some(&1), "^");
    assert_eq!(ids.last(), Some(&2), "$");
    assert_eq!(ids.len(), 2 + 2 * 2 + 1, "^ _ h _ ə _ $");
    let leading_dash = v.phonemes("-v and --help are words here").unwrap();
    assert!(leading_dash.contains("hˈɛlp"), "text is never taken for options: {leading_dash}");
}

#[test]
fn piper_speaks_what_a_detector_hears_as_speech() {
    let v = voice();
    let text = "Your order shipped yesterday and will arrive on Monday.";
    let audio = v.synthesize(text, 1.0).unwrap().samples;
    let seconds = audio.len() as f64 / v.sample_rate() as f64;
    assert!((1.5..6.0).contains(&seconds), "{seconds} s for {} characters", text.len());
    let slower = v.synthesize(text, 0.5).unwrap().samples;
    assert!(slower.len() as f64 > audio.len() as f64 * 1.5, "rate 0.5 speaks slower");
    assert!(v.synthesize(" , . ", 1.0).unwrap().samples.is_empty());

    let floats: Vec<f32> = audio.iter().map(|s| *s as f32 / 32_768.0).collect();
    let mut at16 = Vec::new();
    Resampler::new(v.sample_rate(), 16_000).process(&floats, &mut at16);
    let mut vad = SileroVad::load(
        &install("silero-vad").join("silero_vad.onnx"),
        &install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY),
    )
    .unwrap();
    let probs: Vec<f32> = at16.chunks_exact(512).map(|f| vad.process(f)).collect();
    let voiced = probs.iter().filter(|p| **p > 0.5).count() as f64 / probs.len() as f64;
    assert!(voiced > 0.6, "{:.0}% of frames heard as speech", voiced * 100.0);
}

#[test]
fn phoneme_timings_cover_the_audio_exactly() {
    let v = voice();
    for text in ["Your refund of $24.50 was approved.", "Hi!", "The store opens at 9:30am, and closes at 6."] {
        let speech = v.synthesize(text, 1.0).unwrap();
        let p = &speech.phonemes;
        assert!(!p.is_empty(), "{text}: no timings");
        assert_eq!(p.first().unwrap().phoneme, '^');
        assert_eq!(p.last().unwrap().phoneme, '$');
        for pair in p.windows(2) {
            assert_eq!(pair[0].start + pair[0].len, pair[1].start, "{text}: spans are contiguous");
        }
        let covered = p.last().map(|s| s.start + s.len).unwrap();
        let diff = covered.abs_diff(speech.samples.len());
        assert!(diff <= 256, "{text}: timings cover {covered} samples, audio has {} (±1 frame)", speech.samples.len());
        // One span per phoneme the IPA holds (pads merged, word breaks kept).
        let symbols = speech.ipa.chars().filter(|c| v.ids(&c.to_string()).len() > 3).count();
        assert_eq!(p.len(), symbols + 2, "{text}: {}", speech.ipa);
    }
}

#[test]
fn words_are_placed_on_the_audio() {
    let v = voice();
    let text = "Your parcel arrives tomorrow morning.";
    let speech = v.synthesize(text, 1.0).unwrap();
    let words = speech.words(text);
    let names: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    assert_eq!(names, ["Your", "parcel", "arrives", "tomorrow", "morning."]);
    assert!(words[0].start > 0 && words[0].start < 22_050 / 2, "leading silence is short: {}", words[0].start);
    for pair in words.windows(2) {
        assert_eq!(pair[0].start + pair[0].len, pair[1].start);
    }
    let last = words.last().unwrap();
    assert_eq!(last.start + last.len, speech.samples.len());
    // "tomorrow" (3 syllables) takes longer than "Your" (1).
    assert!(words[3].len > words[0].len, "{words:?}");
    // A price is spoken as several words; the text keeps its own words, in proportion.
    let text = "Only $24.50 today";
    let speech = v.synthesize(text, 1.0).unwrap();
    let names: Vec<String> = speech.words(text).into_iter().map(|w| w.text).collect();
    assert_eq!(names, ["Only", "$24.50", "today"]);
}

#[test]
fn streamed_audio_comes_after_the_timing_in_chunks_that_equal_one_whole_decode() {
    let text = "Your order of two blue running shoes shipped this morning from Leeds, and it will arrive soon.";
    let whole = voice().with_noise(0.0, 0.0).with_chunks(100_000, 100_000).synthesize(text, 1.0).unwrap();
    let v = voice().with_noise(0.0, 0.0);
    let mut parts = Vec::new();
    let mut samples = Vec::new();
    v.speak(text, "", 1.0, &mut |part| {
        match part {
            SpeechPart::Timing(t) => {
                assert!(t.samples.is_empty() && samples.is_empty(), "the timing comes first, without audio");
                assert_eq!(t.phonemes, whole.phonemes, "the same timing");
                parts.push(t.len());
            }
            SpeechPart::Audio(chunk) => {
                samples.extend_from_slice(chunk);
                parts.push(chunk.len());
            }
        }
        true
    })
    .unwrap();
    assert_eq!(parts[0], whole.samples.len(), "the timing says how long the audio is");
    assert_eq!(parts[1], 32 * 256, "a short first chunk: {parts:?}");
    assert!(parts.len() >= 4, "several chunks: {parts:?}");
    assert_eq!(samples.len(), whole.samples.len());
    let worst = samples.iter().zip(&whole.samples).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(worst <= 2, "chunked audio differs from the whole decode by up to {worst} (of 32768)");

    // A listener that goes away stops the synthesis at the next chunk.
    let mut chunks = 0;
    v.speak(text, "", 1.0, &mut |part| {
        if let SpeechPart::Audio(_) = part {
            chunks += 1;
        }
        chunks < 1
    })
    .unwrap();
    assert_eq!(chunks, 1);
}

#[test]
fn timings_fitted_to_the_audio_alone_land_near_the_voices_own() {
    // A cloud voice returns audio without timings; brazen fits its phonemizer's phonemes to the
    // sound (brazen_speech::fit). Piper knows its true timings, so it can grade the fit.
    let v = voice().with_noise(0.0, 0.0);
    let text = "Thanks for calling, your order shipped yesterday. It should arrive on Monday, before noon.";
    let truth = v.synthesize(text, 1.0).unwrap();
    let fitted = brazen_speech::fit::fit_timing(text, "en-us", truth.samples.clone(), truth.sample_rate);
    let (a, b) = (truth.words(text), fitted.words(text));
    assert_eq!(a.len(), b.len());
    let ms = |samples: usize| samples as f64 * 1000.0 / truth.sample_rate as f64;
    let errors: Vec<f64> = a.iter().zip(&b).map(|(t, f)| (ms(t.start) - ms(f.start)).abs()).collect();
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    let worst = errors.iter().cloned().fold(0.0, f64::max);
    eprintln!("word starts: mean error {mean:.0} ms, worst {worst:.0} ms over {} words", errors.len());
    assert!(mean < 120.0 && worst < 300.0, "mean {mean:.0} ms, worst {worst:.0} ms: {errors:?}");
}
