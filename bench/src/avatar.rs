//! Avatar video benchmark (issue 5): ms per frame to draw a built-in character posed by a
//! speaking lip-sync timeline, convert it to I420 and encode it as H.264 (OpenH264, 1 Mbit/s,
//! 25 fps, a key frame every 10), on one thread, at 512×512 and 1280×720.
//!
//! Run: `bench/avatar.sh` (release build).

use brazen_avatar::blendshape::Frame;
use brazen_avatar::character::{Catalog, Rgba};
use brazen_avatar::render::Renderer;
use brazen_avatar::{LipSync, Phone};
use brazen_media::{H264Encoder, I420, VideoSettings};
use std::time::Instant;

fn main() {
    // Ten seconds of speech-like phonemes.
    let symbols: Vec<char> = "^hɛloʊ aɪm ˈeɪvə, ˈjʊɹ ˈɔɹdɚ ʃɪpt ðɪs ˈmɔɹnɪŋ fɹʌm ˈpɔɹtlənd.$".chars().collect();
    let mut phones = Vec::new();
    let mut t = 0.0;
    while t < 10_000.0 {
        for &symbol in &symbols {
            let d = if "aeiouɛɪʊɔəɚʌæ".contains(symbol) { 110.0 } else { 70.0 };
            phones.push(Phone { symbol, start_ms: t, duration_ms: d });
            t += d;
        }
    }
    let mut lipsync = LipSync::new(3, 0.0);
    lipsync.add_phrase(0.0, t, &phones);
    let frames: Vec<Frame> = (0..250).map(|i| lipsync.frame_at(i as f64 * 40.0)).collect();
    let catalog = Catalog::built_in();
    for (w, h) in [(512u32, 512u32), (1280, 720)] {
        for c in catalog.characters() {
            let look = c.styles.values().next().expect("a style").clone();
            let mut r = Renderer::new(look, w, h, Rgba([0, 177, 64, 255])).expect("renderer");
            let mut picture = I420::new(w as usize, h as usize).expect("picture");
            let mut encoder = H264Encoder::new(VideoSettings::default()).expect("encoder");
            let (mut render, mut convert, mut encode, mut bytes) = (0.0, 0.0, 0.0, 0);
            for f in &frames {
                let t = Instant::now();
                let rgba = r.render(f);
                let t1 = Instant::now();
                picture.fill_from_rgba(rgba, [0, 177, 64]).expect("convert");
                let t2 = Instant::now();
                bytes += encoder.encode(&picture).expect("encode").data.len();
                let t3 = Instant::now();
                render += (t1 - t).as_secs_f64();
                convert += (t2 - t1).as_secs_f64();
                encode += (t3 - t2).as_secs_f64();
            }
            let ms = |s: f64| s * 1000.0 / frames.len() as f64;
            println!(
                "{w}×{h} {:<5} render {:.2} + convert {:.2} + encode {:.2} = {:.2} ms/frame ({:.0} kbit/s)",
                c.name,
                ms(render),
                ms(convert),
                ms(encode),
                ms(render + convert + encode),
                bytes as f64 * 8.0 / (frames.len() as f64 / 25.0) / 1000.0
            );
        }
    }
}
