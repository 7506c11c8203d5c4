//! Avatar video benchmark (issue 5): ms per frame to draw a built-in character (or warp the photo
//! avatar's portrait) posed by a speaking lip-sync timeline, convert it to I420 and encode it as
//! H.264 (OpenH264, 1 Mbit/s, 25 fps, a key frame every 10), on one thread, at 512×512 and
//! 1280×720.
//!
//! Run: `bench/avatar.sh` (release build).

use brazen_avatar::blendshape::Frame;
use brazen_avatar::character::{Catalog, Rgba};
use brazen_avatar::render::Renderer;
use brazen_avatar::{Backdrop, LipSync, MouthSpot, Phone, PhotoRenderer, Scene};
use brazen_media::{H264Encoder, I420, VideoSettings};
use std::time::Instant;

/// A drawn character or a photo avatar.
enum Face {
    Drawn(Renderer),
    Photo(PhotoRenderer),
}

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
    // The photo avatar's portrait: a 768×768 picture with detail everywhere (a gradient and rings).
    let portrait = Backdrop::from_rgba(
        768,
        768,
        (0..768u32 * 768)
            .flat_map(|i| {
                let (x, y) = ((i % 768) as f32, (i / 768) as f32);
                let ring = (((x - 384.0).hypot(y - 400.0) / 9.0).sin() * 40.0) as i32;
                [(150 + ring).clamp(0, 255) as u8, (x / 4.0) as u8, (y / 4.0) as u8, 255]
            })
            .collect(),
    )
    .expect("portrait");
    for (w, h) in [(512u32, 512u32), (1280, 720)] {
        let characters = catalog.characters().iter().map(|c| {
            let look = c.styles.values().next().expect("a style").clone();
            (c.name.clone(), Face::Drawn(Renderer::new(look, w, h, Rgba([0, 177, 64, 255])).expect("renderer")))
        });
        let mut photo = PhotoRenderer::new(
            (w, h),
            ((0, 0), (w, h)),
            Rgba([0, 177, 64, 255]),
            MouthSpot::default(),
            Scene::default(),
        )
        .expect("photo renderer");
        photo.set_portrait(&portrait);
        for (name, mut face) in characters.chain([("photo".to_owned(), Face::Photo(photo))]) {
            let mut picture = I420::new(w as usize, h as usize).expect("picture");
            let mut encoder = H264Encoder::new(VideoSettings::default()).expect("encoder");
            let (mut render, mut convert, mut encode, mut bytes) = (0.0, 0.0, 0.0, 0);
            for f in &frames {
                let t = Instant::now();
                let rgba = match &mut face {
                    Face::Drawn(r) => r.render(f),
                    Face::Photo(r) => r.render(f),
                };
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
                name,
                ms(render),
                ms(convert),
                ms(encode),
                ms(render + convert + encode),
                bytes as f64 * 8.0 / (frames.len() as f64 / 25.0) / 1000.0
            );
        }
    }
}
