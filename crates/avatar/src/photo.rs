//! The photo avatar (`type: "photo-avatar"`): a user's portrait animated on the CPU. Each frame
//! the portrait's mouth and jaw are warped by the blendshape frame — the chin and lower lip drop
//! with the jaw, the lips widen or purse — an inner-mouth layer (dark mouth, upper teeth) fills
//! the opening, and the whole portrait is placed by the `scene` controls (zoom, position,
//! rotation, amplitude). The portrait is resampled only when the scene changes; a frame is the
//! warp of the mouth region and a copy, so it costs little more than the video encoding. The head
//! itself stays still (a photo has no depth to turn). No model weights: where the mouth is comes
//! from the portrait's framing ([`MouthSpot`], a centred head-and-shoulders photo by default).

use crate::backdrop::Backdrop;
use crate::blendshape::{Frame, at};
use crate::character::Rgba;
use crate::render::{lay_backdrop, premultiplied};
use tiny_skia::{Color, FillRule, FilterQuality, Mask, Paint, PathBuilder, Pixmap, PixmapPaint, Rect, Transform};

pub use brazen_protocol::avatar::{MouthSpot, Scene};

/// Draws a portrait posed by blendshape frames.
pub struct PhotoRenderer {
    /// The portrait as given, premultiplied; `None` until it is given.
    portrait: Option<Pixmap>,
    /// The portrait at the picture's scale for the scene (zoom, fit, foreshortening), and the
    /// picture with it placed at rest on the background: redone when the scene changes.
    scaled: Option<(Pixmap, Pixmap)>,
    mouth: MouthSpot,
    scene: Scene,
    background: Rgba,
    backdrop: Option<Pixmap>,
    picture: (u32, u32),
    origin: (u32, u32),
    pixmap: Pixmap,
}

/// The inner mouth's colours: the dark of the mouth and the upper teeth.
const MOUTH_DARK: Rgba = Rgba([58, 18, 24, 255]);
const TEETH: Rgba = Rgba([236, 232, 222, 255]);

impl PhotoRenderer {
    /// A renderer of the part `crop` (top-left and bottom-right corners) of a `picture`-sized
    /// frame over `background`; it draws only the background until [`PhotoRenderer::set_portrait`].
    pub fn new(
        picture: (u32, u32),
        crop: ((u32, u32), (u32, u32)),
        background: Rgba,
        mouth: MouthSpot,
        scene: Scene,
    ) -> Result<PhotoRenderer, String> {
        let ((x0, y0), (x1, y1)) = crop;
        if x1 <= x0 || y1 <= y0 || x1 > picture.0 || y1 > picture.1 {
            return Err(format!(
                "the crop ({x0}, {y0})–({x1}, {y1}) is not inside the {}×{} picture",
                picture.0, picture.1
            ));
        }
        let pixmap = Pixmap::new(x1 - x0, y1 - y0).ok_or_else(|| format!("cannot draw at {}×{}", x1 - x0, y1 - y0))?;
        Ok(PhotoRenderer {
            portrait: None,
            scaled: None,
            mouth,
            scene,
            background,
            backdrop: None,
            picture,
            origin: (x0, y0),
            pixmap,
        })
    }

    /// The portrait to animate.
    pub fn set_portrait(&mut self, portrait: &Backdrop) {
        self.portrait = premultiplied(portrait);
        self.rescale();
    }

    /// Lays `backdrop` behind the portrait, as [`crate::Renderer::set_backdrop`] does.
    pub fn set_backdrop(&mut self, backdrop: &Backdrop) {
        let size = (self.pixmap.width(), self.pixmap.height());
        self.backdrop = lay_backdrop(backdrop, self.picture, self.origin, size, self.background);
        self.rescale();
    }

    /// New scene controls, from the next frame on.
    pub fn set_scene(&mut self, scene: Scene) {
        self.scene = scene;
        self.rescale();
    }

    /// Resamples the portrait at the picture's scale for the scene and lays it on the
    /// background (once, not every frame).
    fn rescale(&mut self) {
        self.scaled = self.portrait.as_ref().and_then(|p| {
            let (sx, sy) = scale(self.scene, self.picture, (p.width(), p.height()));
            let w = ((p.width() as f32 * sx).round() as u32).max(1);
            let h = ((p.height() as f32 * sy).round() as u32).max(1);
            let mut scaled = Pixmap::new(w, h)?;
            let paint = PixmapPaint { quality: FilterQuality::Bicubic, ..PixmapPaint::default() };
            let fit = Transform::from_scale(w as f32 / p.width() as f32, h as f32 / p.height() as f32);
            scaled.draw_pixmap(0, 0, p.as_ref(), &paint, fit, None);
            let mut composed = self.pixmap.clone();
            self.fill_background(&mut composed);
            let placed = placement(self.scene, self.picture, self.origin, (w, h));
            composed.draw_pixmap(0, 0, scaled.as_ref(), &self.paint(), placed, None);
            Some((scaled, composed))
        });
    }

    /// Fills `target` with the background picture or colour.
    fn fill_background(&self, target: &mut Pixmap) {
        match &self.backdrop {
            Some(b) => target.data_mut().copy_from_slice(b.data()),
            None => {
                let bg = self.background.0;
                target.fill(Color::from_rgba8(bg[0], bg[1], bg[2], bg[3]));
            }
        }
    }

    /// How the portrait is drawn: untilted it lands on whole pixels and is copied, not resampled.
    fn paint(&self) -> PixmapPaint {
        let quality = if self.scene.rotation_z == 0.0 { FilterQuality::Nearest } else { FilterQuality::Bilinear };
        PixmapPaint { quality, ..PixmapPaint::default() }
    }

    /// The picture's width and height.
    pub fn size(&self) -> (u32, u32) {
        (self.pixmap.width(), self.pixmap.height())
    }

    /// The portrait's mouth and chin region in the picture's pixels (x, y, width, height), at
    /// rest, clipped to the picture; `None` before the portrait is given.
    pub fn mouth_region_px(&self) -> Option<(u32, u32, u32, u32)> {
        let (p, _) = self.scaled.as_ref()?;
        let (pw, ph) = (p.width() as f32, p.height() as f32);
        let mw = self.mouth.width * pw;
        let (mx, my) = (self.mouth.x * pw, self.mouth.y * ph);
        let mut corners = [
            tiny_skia::Point::from_xy(mx - mw * 0.8, my - mw * 0.3),
            tiny_skia::Point::from_xy(mx + mw * 0.8, my + mw * 0.9),
        ];
        placement(self.scene, self.picture, self.origin, (p.width(), p.height())).map_points(&mut corners);
        let (w, h) = (self.pixmap.width() as f32, self.pixmap.height() as f32);
        let (x0, x1) = (corners[0].x.min(corners[1].x).clamp(0.0, w), corners[0].x.max(corners[1].x).clamp(0.0, w));
        let (y0, y1) = (corners[0].y.min(corners[1].y).clamp(0.0, h), corners[0].y.max(corners[1].y).clamp(0.0, h));
        Some((x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32))
    }

    /// The last picture drawn: RGBA, premultiplied by alpha.
    pub fn pixels(&self) -> &[u8] {
        self.pixmap.data()
    }

    /// Draws the portrait posed by `frame`: the picture at rest, then the warped mouth region
    /// over it.
    pub fn render(&mut self, frame: &Frame) -> &[u8] {
        let paint = self.paint();
        match &self.scaled {
            Some((scaled, composed)) => {
                self.pixmap.data_mut().copy_from_slice(composed.data());
                let placed = placement(self.scene, self.picture, self.origin, (scaled.width(), scaled.height()));
                let amplitude = self.scene.amplitude.clamp(0.0, 1.0);
                if let Some((region, (x, y))) = warp_mouth(scaled, self.mouth, frame, amplitude) {
                    self.pixmap.draw_pixmap(x, y, region.as_ref(), &paint, placed, None);
                }
            }
            None => {
                let mut pixmap = std::mem::replace(&mut self.pixmap, Pixmap::new(1, 1).expect("a 1×1 pixmap"));
                self.fill_background(&mut pixmap);
                self.pixmap = pixmap;
            }
        }
        self.pixmap.data()
    }
}

/// How much the scene scales a `portrait`-sized picture into a `picture`-sized frame (x, y):
/// fitted to the frame's height, zoomed, foreshortened by nodding and turning. The scaled portrait is at most twice the picture's longer side (and 4096 px): a closer zoom
/// would only cost memory for pixels outside the picture.
fn scale(s: Scene, picture: (u32, u32), portrait: (u32, u32)) -> (f32, f32) {
    let cap = (2.0 * picture.0.max(picture.1) as f32).min(4096.0) / portrait.0.max(portrait.1) as f32;
    let fit = (picture.1 as f32 / portrait.1 as f32 * s.zoom.clamp(0.1, 10.0)).min(cap);
    (fit * s.rotation_y.cos().abs().max(0.05), fit * s.rotation_x.cos().abs().max(0.05))
}

/// The scaled portrait's pixels → the picture's: centred, offset by the scene's position,
/// tilted about its centre, then cropped at `origin` (untilted: on whole pixels).
fn placement(s: Scene, picture: (u32, u32), origin: (u32, u32), scaled: (u32, u32)) -> Transform {
    let (pw, ph) = (picture.0 as f32, picture.1 as f32);
    let (iw, ih) = (scaled.0 as f32, scaled.1 as f32);
    let cx = pw / 2.0 + s.position_x.clamp(-1.0, 1.0) * pw / 2.0 - origin.0 as f32;
    let cy = ph / 2.0 + s.position_y.clamp(-1.0, 1.0) * ph / 2.0 - origin.1 as f32;
    if s.rotation_z == 0.0 {
        return Transform::from_translate((cx - iw / 2.0).round(), (cy - ih / 2.0).round());
    }
    Transform::from_translate(-iw / 2.0, -ih / 2.0).post_rotate(s.rotation_z.to_degrees()).post_translate(cx, cy)
}

/// `portrait`'s mouth region warped for `frame`, and its top-left corner in the portrait; `None`
/// while the mouth is at rest. Below the lips' line the lower lip and chin drop with the jaw (the
/// drop fading out towards the chin and the cheeks), the mouth widens or purses, and the opening
/// is filled with the inner mouth.
fn warp_mouth(portrait: &Pixmap, mouth: MouthSpot, frame: &Frame, amplitude: f32) -> Option<(Pixmap, (i32, i32))> {
    let (w, h) = (portrait.width() as i32, portrait.height() as i32);
    let mw = mouth.width * w as f32;
    let (mx, my) = (mouth.x * w as f32, mouth.y * h as f32);
    let jaw = (frame[at::JAW_OPEN]
        + 0.3 * (frame[at::MOUTH_LOWER_DOWN_LEFT] + frame[at::MOUTH_LOWER_DOWN_RIGHT]) / 2.0)
        .clamp(0.0, 1.0)
        * amplitude;
    let widen = (1.0
        + 0.25 * (frame[at::MOUTH_STRETCH_LEFT] + frame[at::MOUTH_STRETCH_RIGHT]) / 2.0
        + 0.15 * (frame[at::MOUTH_SMILE_LEFT] + frame[at::MOUTH_SMILE_RIGHT]) / 2.0
        - 0.3 * frame[at::MOUTH_PUCKER].max(frame[at::MOUTH_FUNNEL] * 0.7))
        * amplitude
        + (1.0 - amplitude);
    let drop = jaw * 0.45 * mw;
    // The region that moves: the cheeks beside the mouth down to the chin.
    let (rx0, rx1) = (((mx - 1.1 * mw).floor() as i32).max(0), ((mx + 1.1 * mw).ceil() as i32).min(w));
    let (ry0, ry1) = (((my - 0.35 * mw).floor() as i32).max(0), ((my + 1.3 * mw).ceil() as i32).min(h));
    if drop < 0.3 && (widen - 1.0).abs() < 0.01 {
        return None;
    }
    let mut out = Pixmap::new((rx1 - rx0).max(1) as u32, (ry1 - ry0).max(1) as u32)?;
    let src = portrait.data();
    let stride = (rx1 - rx0) as usize * 4;
    let dst = out.data_mut();
    for y in ry0..ry1 {
        let fy = y as f32 + 0.5;
        // How much of the drop applies at this height: all of it from the lips' line, none at
        // the chin's bottom; above the line only the width changes.
        let below = ((fy - my) / (1.3 * mw)).clamp(0.0, 1.0);
        let vertical = if fy < my { 0.0 } else { 0.5 + 0.5 * (std::f32::consts::PI * below).cos() };
        let band = (-((fy - my - drop / 2.0) / (0.4 * mw)).powi(2)).exp();
        for x in rx0..rx1 {
            let fx = x as f32 + 0.5;
            let across = ((fx - mx) / (1.1 * mw)).clamp(-1.0, 1.0);
            let fade = 0.5 + 0.5 * (std::f32::consts::PI * across).cos();
            let sy = fy - drop * vertical * fade;
            let scale = 1.0 + (widen - 1.0) * band * fade;
            let sx = mx + (fx - mx) / scale;
            let px = bilinear(src, w, h, sx - 0.5, sy - 0.5);
            let at = (y - ry0) as usize * stride + (x - rx0) as usize * 4;
            dst[at..at + 4].copy_from_slice(&px);
        }
    }
    if drop >= 0.3 {
        inner_mouth(&mut out, (mx - rx0 as f32, my - ry0 as f32), mw, drop, widen);
    }
    Some((out, (rx0, ry0)))
}

/// Draws the opening between the lips on `out`: dark, with the upper teeth along its top, below
/// the lips' line at `(mx, my)` for a mouth `mw` wide dropped by `drop` and widened by `widen`.
fn inner_mouth(out: &mut Pixmap, (mx, my): (f32, f32), mw: f32, drop: f32, widen: f32) {
    // The opening between the lips: dark, with the upper teeth along its top.
    let half = 0.36 * mw * widen;
    let Some(rect) = Rect::from_xywh(mx - half, my - 0.04 * mw, 2.0 * half, drop + 0.06 * mw) else { return };
    let Some(opening) = PathBuilder::from_oval(rect) else { return };
    let mut paint = Paint { anti_alias: true, ..Paint::default() };
    paint.set_color(Color::from_rgba8(MOUTH_DARK.0[0], MOUTH_DARK.0[1], MOUTH_DARK.0[2], 255));
    out.fill_path(&opening, &paint, FillRule::Winding, Transform::identity(), None);
    let Some(mut mask) = Mask::new(out.width(), out.height()) else { return };
    mask.fill_path(&opening, FillRule::Winding, true, Transform::identity());
    if let Some(teeth) = Rect::from_xywh(mx - half, my - 0.04 * mw, 2.0 * half, (0.12 * mw).min(drop * 0.45)) {
        paint.set_color(Color::from_rgba8(TEETH.0[0], TEETH.0[1], TEETH.0[2], 255));
        out.fill_rect(teeth, &paint, Transform::identity(), Some(&mask));
    }
}

/// `data` (premultiplied RGBA, `w`×`h`) sampled at (x, y) between pixel centres.
fn bilinear(data: &[u8], w: i32, h: i32, x: f32, y: f32) -> [u8; 4] {
    let (x, y) = (x.clamp(0.0, (w - 1) as f32), y.clamp(0.0, (h - 1) as f32));
    let (x0, y0) = (x.floor() as i32, y.floor() as i32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (tx, ty) = (x - x0 as f32, y - y0 as f32);
    let at = |xx: i32, yy: i32, c: usize| f32::from(data[(yy * w + xx) as usize * 4 + c]);
    std::array::from_fn(|c| {
        let top = at(x0, y0, c) * (1.0 - tx) + at(x1, y0, c) * tx;
        let bottom = at(x0, y1, c) * (1.0 - tx) + at(x1, y1, c) * tx;
        (top * (1.0 - ty) + bottom * ty).round() as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blendshape::COUNT;

    /// A 200×200 "portrait": skin with a darker lip line at the default mouth spot.
    fn portrait() -> Backdrop {
        let rgba = (0..200)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                let lips = (y - 132i32).abs() <= 3 && (84..116).contains(&x);
                if lips { [150, 60, 70, 255] } else { [225, 180, 150, 255] }
            })
            .collect();
        Backdrop::from_rgba(200, 200, rgba).unwrap()
    }

    fn renderer(scene: Scene) -> PhotoRenderer {
        let mut r =
            PhotoRenderer::new((200, 200), ((0, 0), (200, 200)), Rgba([0, 120, 0, 255]), MouthSpot::default(), scene)
                .unwrap();
        r.set_portrait(&portrait());
        r
    }

    fn changed(a: &[u8], b: &[u8], (x, y, w, h): (u32, u32, u32, u32)) -> usize {
        (y..y + h)
            .flat_map(|yy| (x..x + w).map(move |xx| ((yy * 200 + xx) * 4) as usize))
            .filter(|&i| (0..3).any(|c| a[i + c].abs_diff(b[i + c]) > 24))
            .count()
    }

    #[test]
    fn without_a_portrait_only_the_background_is_drawn() {
        let mut r = PhotoRenderer::new(
            (64, 32),
            ((0, 0), (64, 32)),
            Rgba([1, 2, 3, 255]),
            MouthSpot::default(),
            Scene::default(),
        )
        .unwrap();
        assert!(r.render(&[0.0; COUNT]).chunks_exact(4).all(|p| p == [1, 2, 3, 255]));
        assert_eq!(r.mouth_region_px(), None);
    }

    #[test]
    fn the_jaw_opens_the_mouth_and_nothing_else_moves() {
        let mut r = renderer(Scene::default());
        let rest = r.render(&[0.0; COUNT]).to_vec();
        let mut open = [0.0; COUNT];
        open[at::JAW_OPEN] = 0.8;
        let opened = r.render(&open).to_vec();
        let mouth = r.mouth_region_px().unwrap();
        assert!(changed(&rest, &opened, mouth) > 200, "{} pixels of the mouth changed", changed(&rest, &opened, mouth));
        // The dark of the open mouth is there, below the lips' line.
        let dark = (mouth.1..mouth.1 + mouth.3)
            .filter(|&y| {
                let i = ((y * 200 + 100) * 4) as usize;
                opened[i] < 90 && opened[i + 1] < 40
            })
            .count();
        assert!(dark >= 3, "{dark} dark rows in the middle of the mouth");
        // Far from the mouth (the forehead, the corners) nothing changes.
        assert_eq!(changed(&rest, &opened, (0, 0, 200, 60)), 0);
        // The same frame draws the same picture.
        assert_eq!(r.render(&open).to_vec(), opened);
    }

    #[test]
    fn the_scene_moves_the_portrait_and_amplitude_scales_the_mouth() {
        let mut centred = renderer(Scene::default());
        let at_rest = centred.render(&[0.0; COUNT]).to_vec();
        let mut moved = renderer(Scene { position_x: 0.5, zoom: 0.5, ..Scene::default() });
        let shifted = moved.render(&[0.0; COUNT]).to_vec();
        // Half the size, moved right by a quarter of the picture: the left edge is background.
        assert_eq!(&shifted[..4], &[0, 120, 0, 255]);
        assert_ne!(&at_rest[..4], &[0, 120, 0, 255]);
        let (mx, _, _, _) = moved.mouth_region_px().unwrap();
        assert!(mx > centred.mouth_region_px().unwrap().0 + 30, "the mouth moved right");
        // Live: a new scene applies to the next frame.
        centred.set_scene(Scene { rotation_z: 0.5, ..Scene::default() });
        assert_ne!(centred.render(&[0.0; COUNT]).to_vec(), at_rest);
        // A smaller amplitude opens the mouth less.
        let mut open = [0.0; COUNT];
        open[at::JAW_OPEN] = 0.8;
        let mut calm = renderer(Scene { amplitude: 0.3, ..Scene::default() });
        let calm_rest = calm.render(&[0.0; COUNT]).to_vec();
        let calm_open = calm.render(&open).to_vec();
        let mut full = renderer(Scene::default());
        let full_rest = full.render(&[0.0; COUNT]).to_vec();
        let full_open = full.render(&open).to_vec();
        let region = full.mouth_region_px().unwrap();
        assert!(changed(&calm_rest, &calm_open, region) * 2 < changed(&full_rest, &full_open, region));
    }
}
