//! Avatar rendering benchmark (issue 5): ms per frame to draw a built-in character posed by a
//! speaking lip-sync timeline, on one thread, at 512×512 and 1280×720.
//!
//! Run: `bench/avatar.sh` (release build).

use brazen_avatar::blendshape::Frame;
use brazen_avatar::character::{Catalog, Rgba};
use brazen_avatar::render::Renderer;
use brazen_avatar::{LipSync, Phone};
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
    for (w, h) in [(512, 512), (1280, 720)] {
        for c in catalog.characters() {
            let look = c.styles.values().next().expect("a style").clone();
            let mut r = Renderer::new(look, w, h, Rgba([0, 177, 64, 255])).expect("renderer");
            r.render(&frames[0]);
            let started = Instant::now();
            for f in &frames {
                r.render(f);
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0 / frames.len() as f64;
            println!("{w}×{h} {:<6} render {ms:.2} ms/frame", c.name);
        }
    }
}
