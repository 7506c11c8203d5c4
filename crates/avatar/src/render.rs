//! Draws a character's face and shoulders with tiny-skia, posed by a blendshape frame: jaw and
//! lips (inner mouth, teeth, tongue), lids, gaze, brows, head roll. Geometry is laid out on a
//! unit square (0..1 both ways) scaled to the picture; the character's [`Look`] gives colours
//! and cuts.

use crate::backdrop::Backdrop;
use crate::blendshape::{Frame, at};
use crate::character::{HairStyle, Look, Rgba, TopStyle};
use tiny_skia::{Color, FillRule, FilterQuality, Paint, PathBuilder, Pixmap, PixmapPaint, Rect, Stroke, Transform};

/// Renders one character at one size.
pub struct Renderer {
    look: Look,
    background: Rgba,
    pixmap: Pixmap,
    /// Unit square → pixels (the square is centred on the picture's shorter side).
    base: Transform,
    /// The whole picture's size and where the crop starts in it.
    picture: (u32, u32),
    origin: (u32, u32),
    /// A background picture already scaled and cropped to the pixmap, drawn under the character.
    backdrop: Option<Pixmap>,
}

pub use brazen_protocol::avatar::{MAX_VIDEO_PIXELS, MAX_VIDEO_SIDE};

/// How much of the picture the character fills: the drawing's unit square is enlarged this
/// much about the face.
const ZOOM: f32 = 1.3;

/// Where the mouth is drawn, as a rectangle of the unit square (x, y, width, height): the
/// region that changes while the character speaks.
pub const MOUTH_REGION: (f32, f32, f32, f32) = (0.40, 0.50, 0.20, 0.12);
/// The eyes' region (both eyes).
pub const EYES_REGION: (f32, f32, f32, f32) = (0.36, 0.355, 0.28, 0.07);

/// `backdrop` scaled to cover a `picture`-sized frame (centred, its overflow cut off), over
/// `background` where it is transparent, cut to the `size` crop starting at `origin`.
pub(crate) fn lay_backdrop(
    backdrop: &Backdrop,
    picture: (u32, u32),
    origin: (u32, u32),
    size: (u32, u32),
    background: Rgba,
) -> Option<Pixmap> {
    let source = premultiplied(backdrop)?;
    let (iw, ih) = backdrop.size();
    let (pw, ph) = (picture.0 as f32, picture.1 as f32);
    let scale = (pw / iw as f32).max(ph / ih as f32);
    let dx = (pw - iw as f32 * scale) / 2.0 - origin.0 as f32;
    let dy = (ph - ih as f32 * scale) / 2.0 - origin.1 as f32;
    let mut laid = Pixmap::new(size.0, size.1)?;
    let bg = background.0;
    laid.fill(Color::from_rgba8(bg[0], bg[1], bg[2], bg[3]));
    let paint = PixmapPaint { quality: FilterQuality::Bicubic, ..PixmapPaint::default() };
    laid.draw_pixmap(0, 0, source.as_ref(), &paint, Transform::from_row(scale, 0.0, 0.0, scale, dx, dy), None);
    Some(laid)
}

/// A picture as a premultiplied pixmap.
pub(crate) fn premultiplied(picture: &Backdrop) -> Option<Pixmap> {
    let (w, h) = picture.size();
    let mut p = Pixmap::new(w, h)?;
    for (dst, src) in p.data_mut().chunks_exact_mut(4).zip(picture.rgba().chunks_exact(4)) {
        let a = u16::from(src[3]);
        let pm = |c: u8| ((u16::from(c) * a + 127) / 255) as u8;
        dst.copy_from_slice(&[pm(src[0]), pm(src[1]), pm(src[2]), src[3]]);
    }
    Some(p)
}

fn paint(c: Rgba) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(Color::from_rgba8(c.0[0], c.0[1], c.0[2], c.0[3]));
    p.anti_alias = true;
    p
}

/// `c` darker (factor < 1) or lighter (factor > 1).
fn shade(c: Rgba, factor: f32) -> Rgba {
    let f = |v: u8| (v as f32 * factor).clamp(0.0, 255.0) as u8;
    Rgba([f(c.0[0]), f(c.0[1]), f(c.0[2]), c.0[3]])
}

fn ellipse(cx: f32, cy: f32, rx: f32, ry: f32) -> Option<tiny_skia::Path> {
    PathBuilder::from_oval(Rect::from_xywh(cx - rx, cy - ry, 2.0 * rx, 2.0 * ry)?)
}

impl Renderer {
    /// A renderer of `look` on `width`×`height` pixels over `background` (alpha 0: transparent).
    pub fn new(look: Look, width: u32, height: u32, background: Rgba) -> Result<Renderer, String> {
        Renderer::cropped(look, (width, height), ((0, 0), (width, height)), background)
    }

    /// A renderer of the part `crop` (top-left and bottom-right corners) of a `picture`-sized
    /// drawing of `look`: only the crop's pixels are drawn.
    pub fn cropped(
        look: Look,
        picture: (u32, u32),
        crop: ((u32, u32), (u32, u32)),
        background: Rgba,
    ) -> Result<Renderer, String> {
        let ((x0, y0), (x1, y1)) = crop;
        let (width, height) = picture;
        if x1 <= x0 || y1 <= y0 || x1 > width || y1 > height {
            return Err(format!("the crop ({x0}, {y0})–({x1}, {y1}) is not inside the {width}×{height} picture"));
        }
        let pixmap = Pixmap::new(x1 - x0, y1 - y0).ok_or_else(|| format!("cannot draw at {}×{}", x1 - x0, y1 - y0))?;
        let side = width.min(height) as f32;
        let base = Transform::from_translate(0.5 * (1.0 - ZOOM), 0.42 * (1.0 - ZOOM))
            .pre_scale(ZOOM, ZOOM)
            .post_scale(side, side)
            .post_translate((width as f32 - side) / 2.0 - x0 as f32, (height as f32 - side) / 2.0 - y0 as f32);
        Ok(Renderer { look, background, pixmap, base, picture, origin: (x0, y0), backdrop: None })
    }

    /// Lays `backdrop` under the character from the next picture on: scaled to cover the whole
    /// picture (centred, its overflow cut off), cropped as the picture is, over the background
    /// colour where it is transparent.
    pub fn set_backdrop(&mut self, backdrop: &Backdrop) {
        let size = (self.pixmap.width(), self.pixmap.height());
        self.backdrop = lay_backdrop(backdrop, self.picture, self.origin, size, self.background);
    }

    /// The picture's width and height.
    pub fn size(&self) -> (u32, u32) {
        (self.pixmap.width(), self.pixmap.height())
    }

    /// The last picture drawn: RGBA, premultiplied by alpha.
    pub fn pixels(&self) -> &[u8] {
        self.pixmap.data()
    }

    /// A region of the unit square in pixels (x, y, width, height), clipped to the picture.
    pub fn region_px(&self, (x, y, w, h): (f32, f32, f32, f32)) -> (u32, u32, u32, u32) {
        let mut corners = [tiny_skia::Point::from_xy(x, y), tiny_skia::Point::from_xy(x + w, y + h)];
        self.base.map_points(&mut corners);
        let (width, height) = (self.pixmap.width() as f32, self.pixmap.height() as f32);
        let (x0, x1) = (corners[0].x.clamp(0.0, width), corners[1].x.clamp(0.0, width));
        let (y0, y1) = (corners[0].y.clamp(0.0, height), corners[1].y.clamp(0.0, height));
        (x0 as u32, y0 as u32, (x1 - x0).max(0.0) as u32, (y1 - y0).max(0.0) as u32)
    }

    /// Draws the character posed by `frame`.
    pub fn render(&mut self, frame: &Frame) -> &[u8] {
        match &self.backdrop {
            Some(b) => self.pixmap.data_mut().copy_from_slice(b.data()),
            None => {
                let bg = self.background.0;
                self.pixmap.fill(Color::from_rgba8(bg[0], bg[1], bg[2], bg[3]));
            }
        }
        let look = self.look.clone();
        let base = self.base;
        // Head roll turns the head about the neck.
        let roll = frame[at::HEAD_ROLL].clamp(-1.0, 1.0) * 25.0;
        let head = base.pre_concat(Transform::from_rotate_at(roll, 0.5, 0.66));
        let jaw = (frame[at::JAW_OPEN]
            + 0.3 * (frame[at::MOUTH_LOWER_DOWN_LEFT] + frame[at::MOUTH_LOWER_DOWN_RIGHT]) / 2.0)
            .clamp(0.0, 1.0);

        self.hair_back(&look, head);
        self.torso(&look, base);
        self.fill(ellipse(0.5, 0.69, 0.06, 0.08), shade(look.skin, 0.85), base);
        // Ears, head (the chin drops with the jaw).
        self.fill(ellipse(0.325, 0.42, 0.025, 0.045), shade(look.skin, 0.95), head);
        self.fill(ellipse(0.675, 0.42, 0.025, 0.045), shade(look.skin, 0.95), head);
        self.fill(self.head_path(jaw), look.skin, head);
        if let Some(beard) = look.beard {
            self.beard(beard, jaw, head);
        }
        self.eyes(&look, frame, head);
        self.brows(&look, frame, head);
        // Nose.
        let mut nose = PathBuilder::new();
        nose.move_to(0.5, 0.42);
        nose.quad_to(0.52, 0.47, 0.485, 0.485);
        if let Some(p) = nose.finish() {
            self.stroke(p, shade(look.skin, 0.7), 0.006, head);
        }
        self.mouth(&look, frame, jaw, head);
        if let Some(g) = look.glasses {
            for cx in [0.43, 0.57] {
                if let Some(p) = ellipse(cx, 0.39, 0.055, 0.04) {
                    self.stroke(p, g, 0.007, head);
                }
            }
            let mut bridge = PathBuilder::new();
            bridge.move_to(0.485, 0.385);
            bridge.line_to(0.515, 0.385);
            if let Some(p) = bridge.finish() {
                self.stroke(p, g, 0.006, head);
            }
        }
        self.hair_front(&look, head);
        self.pixmap.data()
    }

    fn fill(&mut self, path: Option<tiny_skia::Path>, c: Rgba, t: Transform) {
        if let Some(p) = path {
            self.pixmap.fill_path(&p, &paint(c), FillRule::Winding, t, None);
        }
    }

    fn stroke(&mut self, path: tiny_skia::Path, c: Rgba, width: f32, t: Transform) {
        let stroke = Stroke { width, line_cap: tiny_skia::LineCap::Round, ..Stroke::default() };
        self.pixmap.stroke_path(&path, &paint(c), &stroke, t, None);
    }

    fn head_path(&self, jaw: f32) -> Option<tiny_skia::Path> {
        let chin = 0.615 + 0.03 * jaw;
        let mut p = PathBuilder::new();
        p.move_to(0.5, 0.17);
        p.cubic_to(0.62, 0.17, 0.68, 0.26, 0.675, 0.40);
        p.cubic_to(0.67, 0.50, 0.62, chin - 0.03, 0.5, chin);
        p.cubic_to(0.38, chin - 0.03, 0.33, 0.50, 0.325, 0.40);
        p.cubic_to(0.32, 0.26, 0.38, 0.17, 0.5, 0.17);
        p.close();
        p.finish()
    }

    fn torso(&mut self, look: &Look, t: Transform) {
        let mut body = PathBuilder::new();
        body.move_to(0.05, 1.0);
        body.cubic_to(0.06, 0.84, 0.2, 0.76, 0.42, 0.74);
        body.line_to(0.58, 0.74);
        body.cubic_to(0.8, 0.76, 0.94, 0.84, 0.95, 1.0);
        body.close();
        self.fill(body.finish(), look.top, t);
        let shirt = look.shirt.unwrap_or(shade(look.top, 1.2));
        match look.top_style {
            TopStyle::Sweater => {
                // A round neckline.
                self.fill(ellipse(0.5, 0.745, 0.075, 0.03), shade(look.top, 0.8), t);
                self.fill(ellipse(0.5, 0.74, 0.06, 0.022), shade(look.skin, 0.85), t);
            }
            TopStyle::Shirt => {
                for side in [-1.0f32, 1.0] {
                    let mut collar = PathBuilder::new();
                    collar.move_to(0.5, 0.80);
                    collar.line_to(0.5 + side * 0.09, 0.735);
                    collar.line_to(0.5 + side * 0.05, 0.72);
                    collar.close();
                    self.fill(collar.finish(), shade(shirt, 1.1), t);
                }
            }
            TopStyle::Blazer => {
                let mut v = PathBuilder::new();
                v.move_to(0.43, 0.74);
                v.line_to(0.5, 0.9);
                v.line_to(0.57, 0.74);
                v.close();
                self.fill(v.finish(), shirt, t);
                for side in [-1.0f32, 1.0] {
                    let mut lapel = PathBuilder::new();
                    lapel.move_to(0.5 + side * 0.07, 0.74);
                    lapel.line_to(0.5 + side * 0.005, 0.91);
                    lapel.line_to(0.5 + side * 0.12, 0.80);
                    lapel.close();
                    self.fill(lapel.finish(), shade(look.top, 0.75), t);
                }
            }
        }
    }

    fn hair_back(&mut self, look: &Look, t: Transform) {
        match look.hair_style {
            HairStyle::Long => {
                let mut p = PathBuilder::new();
                p.move_to(0.5, 0.13);
                p.cubic_to(0.72, 0.13, 0.74, 0.35, 0.73, 0.55);
                p.cubic_to(0.73, 0.68, 0.76, 0.80, 0.74, 0.86);
                p.line_to(0.26, 0.86);
                p.cubic_to(0.24, 0.80, 0.27, 0.68, 0.27, 0.55);
                p.cubic_to(0.26, 0.35, 0.28, 0.13, 0.5, 0.13);
                p.close();
                self.fill(p.finish(), look.hair, t);
            }
            HairStyle::Bun => self.fill(ellipse(0.5, 0.12, 0.08, 0.065), look.hair, t),
            HairStyle::Curly => {
                for (cx, cy, r) in
                    [(0.5, 0.2, 0.2), (0.34, 0.3, 0.1), (0.66, 0.3, 0.1), (0.31, 0.42, 0.07), (0.69, 0.42, 0.07)]
                {
                    self.fill(ellipse(cx, cy, r, r * 0.9), look.hair, t);
                }
            }
            HairStyle::Short | HairStyle::Shaved => {}
        }
    }

    fn hair_front(&mut self, look: &Look, t: Transform) {
        let (top, sides) = match look.hair_style {
            HairStyle::Shaved => (shade(look.skin, 0.8), 0.0),
            _ => (look.hair, 1.0),
        };
        let mut cap = PathBuilder::new();
        cap.move_to(0.325, 0.33);
        cap.cubic_to(0.32, 0.20, 0.39, 0.15, 0.5, 0.15);
        cap.cubic_to(0.61, 0.15, 0.68, 0.20, 0.675, 0.33);
        match look.hair_style {
            HairStyle::Long | HairStyle::Curly => {
                cap.cubic_to(0.63, 0.24, 0.55, 0.22, 0.47, 0.25);
                cap.cubic_to(0.4, 0.27, 0.35, 0.3, 0.325, 0.33);
            }
            _ => {
                cap.cubic_to(0.62, 0.25, 0.38, 0.25, 0.325, 0.33);
            }
        }
        cap.close();
        let mut color = top;
        if sides == 0.0 {
            color.0[3] = 90;
        }
        self.fill(cap.finish(), color, t);
    }

    fn beard(&mut self, beard: Rgba, jaw: f32, t: Transform) {
        let chin = 0.63 + 0.03 * jaw;
        let mut p = PathBuilder::new();
        p.move_to(0.34, 0.46);
        p.cubic_to(0.36, 0.56, 0.42, chin, 0.5, chin);
        p.cubic_to(0.58, chin, 0.64, 0.56, 0.66, 0.46);
        p.cubic_to(0.62, 0.52, 0.58, 0.50 + 0.04 * jaw, 0.5, 0.50 + 0.04 * jaw);
        p.cubic_to(0.42, 0.50 + 0.04 * jaw, 0.38, 0.52, 0.34, 0.46);
        p.close();
        self.fill(p.finish(), beard, t);
    }

    fn eyes(&mut self, look: &Look, f: &Frame, t: Transform) {
        let gaze = (f[at::EYE_LOOK_OUT_LEFT] - f[at::EYE_LOOK_IN_LEFT]).clamp(-1.0, 1.0) * 0.012;
        for (cx, blink) in [(0.43, f[at::EYE_BLINK_LEFT]), (0.57, f[at::EYE_BLINK_RIGHT])] {
            let cy = 0.39;
            let blink = blink.clamp(0.0, 1.0);
            self.fill(ellipse(cx, cy, 0.04, 0.022), Rgba([250, 250, 250, 255]), t);
            self.fill(ellipse(cx - gaze, cy, 0.016, 0.016), look.eyes, t);
            self.fill(ellipse(cx - gaze, cy, 0.007, 0.007), Rgba([10, 10, 10, 255]), t);
            // The upper lid comes down over the eye as it blinks: the part of the eye between
            // its upper outline and the lid's edge (a thin crescent when open).
            let lid = cy - 0.024 + 0.048 * blink;
            let mut p = PathBuilder::new();
            p.move_to(cx - 0.041, cy);
            p.quad_to(cx, cy - 0.045, cx + 0.041, cy);
            p.quad_to(cx, lid + (lid - cy) * 0.2, cx - 0.041, cy);
            p.close();
            self.fill(p.finish(), shade(look.skin, 0.95), t);
            let mut lash = PathBuilder::new();
            lash.move_to(cx - 0.042, cy);
            lash.quad_to(cx, lid - 0.004, cx + 0.042, cy);
            if let Some(p) = lash.finish() {
                self.stroke(p, Rgba([40, 30, 25, 255]), 0.004, t);
            }
        }
    }

    fn brows(&mut self, look: &Look, f: &Frame, t: Transform) {
        for (side, outer) in [(-1.0f32, f[at::BROW_OUTER_UP_LEFT]), (1.0, f[at::BROW_OUTER_UP_RIGHT])] {
            let inner_lift = f[at::BROW_INNER_UP] * 0.025;
            let outer_lift = outer * 0.025;
            let mut p = PathBuilder::new();
            p.move_to(0.5 + side * 0.025, 0.345 - inner_lift);
            p.quad_to(0.5 + side * 0.07, 0.325 - (inner_lift + outer_lift) / 2.0, 0.5 + side * 0.11, 0.35 - outer_lift);
            if let Some(p) = p.finish() {
                self.stroke(p, look.brows, 0.012, t);
            }
        }
    }

    fn mouth(&mut self, look: &Look, f: &Frame, jaw: f32, t: Transform) {
        let pucker = f[at::MOUTH_PUCKER].max(f[at::MOUTH_FUNNEL] * 0.7);
        let stretch = (f[at::MOUTH_STRETCH_LEFT] + f[at::MOUTH_STRETCH_RIGHT]) / 2.0;
        let smile = (f[at::MOUTH_SMILE_LEFT] + f[at::MOUTH_SMILE_RIGHT]) / 2.0;
        let press = (f[at::MOUTH_PRESS_LEFT] + f[at::MOUTH_PRESS_RIGHT]) / 2.0;
        let half_width = 0.055 * (1.0 + 0.3 * stretch + 0.2 * smile - 0.4 * pucker);
        let (cx, cy) = (0.5, 0.545);
        let open = (jaw * 0.1 * (1.0 - 0.8 * f[at::MOUTH_CLOSE])).max(0.0);
        let corner_y = cy - 0.008 * smile;
        let upper_lip = 0.012 * (1.0 - 0.6 * f[at::MOUTH_ROLL_UPPER]) * (1.0 - 0.4 * press);
        let lower_lip = 0.016 * (1.0 - 0.7 * f[at::MOUTH_ROLL_LOWER]) * (1.0 - 0.4 * press);
        let top = cy - open * 0.35;
        let bottom = cy + open * 0.65;
        let funnel = f[at::MOUTH_FUNNEL] * 0.01;
        // Inner mouth, teeth and tongue.
        if open > 0.002 {
            let mut inner = PathBuilder::new();
            inner.move_to(cx - half_width, corner_y);
            inner.quad_to(cx, top - 0.01 - funnel, cx + half_width, corner_y);
            inner.quad_to(cx, bottom + 0.01 + funnel, cx - half_width, corner_y);
            inner.close();
            if let Some(inner) = inner.finish() {
                self.pixmap.fill_path(&inner, &paint(Rgba([70, 20, 25, 255])), FillRule::Winding, t, None);
                let mut mask = tiny_skia::Mask::new(self.pixmap.width(), self.pixmap.height())
                    .unwrap_or_else(|| tiny_skia::Mask::new(1, 1).expect("a 1×1 mask"));
                mask.fill_path(&inner, FillRule::Winding, true, t);
                let teeth = paint(Rgba([245, 242, 232, 255]));
                let upper = Rect::from_xywh(cx - half_width, top - 0.02, 2.0 * half_width, 0.022 + open * 0.12);
                if let Some(r) = upper {
                    self.pixmap.fill_rect(r, &teeth, t, Some(&mask));
                }
                let lower = Rect::from_xywh(cx - half_width, bottom - 0.006 - open * 0.08, 2.0 * half_width, 0.03);
                if let Some(r) = lower {
                    self.pixmap.fill_rect(r, &teeth, t, Some(&mask));
                }
                // The tongue rests low; for th and l it comes up to the teeth.
                let tongue_y = bottom + 0.004 - f[at::TONGUE_OUT] * (open * 0.6 + 0.012);
                if let Some(p) = ellipse(cx, tongue_y, half_width * 0.65, 0.018) {
                    self.pixmap.fill_path(&p, &paint(Rgba([196, 84, 92, 255])), FillRule::Winding, t, Some(&mask));
                }
            }
        }
        // Lips around the opening.
        let lips = look.lips;
        let mut upper = PathBuilder::new();
        upper.move_to(cx - half_width - 0.004, corner_y);
        upper.quad_to(cx - half_width * 0.5, top - upper_lip * 1.6 - funnel, cx, top - upper_lip - funnel);
        upper.quad_to(cx + half_width * 0.5, top - upper_lip * 1.6 - funnel, cx + half_width + 0.004, corner_y);
        upper.quad_to(cx, top - funnel + 0.002, cx - half_width - 0.004, corner_y);
        upper.close();
        self.fill(upper.finish(), lips, t);
        let mut lower = PathBuilder::new();
        lower.move_to(cx - half_width - 0.004, corner_y);
        lower.quad_to(cx, bottom + funnel - 0.002, cx + half_width + 0.004, corner_y);
        lower.quad_to(cx, bottom + lower_lip * 2.0 + funnel, cx - half_width - 0.004, corner_y);
        lower.close();
        self.fill(lower.finish(), shade(lips, 1.08), t);
        if open <= 0.002 {
            let mut line = PathBuilder::new();
            line.move_to(cx - half_width, corner_y);
            line.quad_to(cx, cy + 0.002, cx + half_width, corner_y);
            if let Some(p) = line.finish() {
                self.stroke(p, shade(lips, 0.6), 0.003, t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blendshape::COUNT;
    use crate::character::Catalog;

    fn region_differs(a: &[u8], b: &[u8], r: &Renderer, region: (f32, f32, f32, f32)) -> usize {
        let (x, y, w, h) = r.region_px(region);
        let width = r.size().0 as usize;
        let mut changed = 0;
        for row in y as usize..(y + h) as usize {
            for col in x as usize..(x + w) as usize {
                let i = (row * width + col) * 4;
                if a[i..i + 4] != b[i..i + 4] {
                    changed += 1;
                }
            }
        }
        changed
    }

    fn renderer(character: &str, style: &str) -> Renderer {
        let look = Catalog::built_in().choose(character, Some(style)).unwrap().look;
        Renderer::new(look, 256, 256, Rgba([0, 120, 0, 255])).unwrap()
    }

    #[test]
    fn a_backdrop_covers_the_picture_and_is_cropped_with_it() {
        // 40×10: red left half, blue right half, laid under a 200×100 picture cropped to x 100–200.
        let rgba: Vec<u8> = (0..10)
            .flat_map(|_| 0..40)
            .flat_map(|x| if x < 20 { [200, 0, 0, 255] } else { [0, 0, 200, 255] })
            .collect();
        let backdrop = Backdrop::from_rgba(40, 10, rgba).unwrap();
        let look = Catalog::built_in().choose("ava", None).unwrap().look;
        let mut r = Renderer::cropped(look, (200, 100), ((100, 0), (200, 100)), Rgba([0, 255, 0, 255])).unwrap();
        let plain = r.render(&[0.0; COUNT]).to_vec();
        r.set_backdrop(&backdrop);
        let laid = r.render(&[0.0; COUNT]).to_vec();
        let px = |p: &[u8], x: usize, y: usize| p[(y * 100 + x) * 4..(y * 100 + x) * 4 + 3].to_vec();
        assert_eq!(px(&plain, 98, 2), [0, 255, 0], "the colour before");
        // Scaled to cover 200×100 (×5 → 200×50 is too short, so ×10: 400×100, centred), the crop
        // shows the picture's right half: the blue half begins at x = 100 of the whole picture.
        assert_eq!(px(&laid, 98, 2), [0, 0, 200], "blue at the right edge");
        assert_eq!(px(&laid, 98, 97), [0, 0, 200], "and at the bottom right");
        // The left half of the picture shows the red half.
        let look = Catalog::built_in().choose("ava", None).unwrap().look;
        let mut left = Renderer::cropped(look, (200, 100), ((0, 0), (100, 100)), Rgba([0, 255, 0, 255])).unwrap();
        left.set_backdrop(&backdrop);
        assert_eq!(px(left.render(&[0.0; COUNT]), 1, 2), [200, 0, 0]);
        // The character is still drawn over it, unchanged.
        let (mx, my, _, _) = r.region_px(MOUTH_REGION);
        assert_eq!(px(&laid, mx as usize + 2, my as usize + 2), px(&plain, mx as usize + 2, my as usize + 2));
    }

    #[test]
    fn the_mouth_opens_with_the_jaw_and_nothing_else_moves() {
        let mut r = renderer("ava", "casual");
        let rest = r.render(&[0.0; COUNT]).to_vec();
        let mut open = [0.0; COUNT];
        open[at::JAW_OPEN] = 0.7;
        let opened = r.render(&open).to_vec();
        let mouth = region_differs(&rest, &opened, &r, MOUTH_REGION);
        let (_, _, w, h) = r.region_px(MOUTH_REGION);
        assert!(mouth > (w * h) as usize / 10, "{mouth} of {} mouth pixels changed", w * h);
        assert_eq!(region_differs(&rest, &opened, &r, EYES_REGION), 0, "the eyes stay");
        // Same frame, same picture.
        assert_eq!(r.render(&open).to_vec(), opened);
    }

    #[test]
    fn blinks_close_the_eyes() {
        let mut r = renderer("noah", "business");
        let open = r.render(&[0.0; COUNT]).to_vec();
        let mut shut = [0.0; COUNT];
        shut[at::EYE_BLINK_LEFT] = 1.0;
        shut[at::EYE_BLINK_RIGHT] = 1.0;
        let closed = r.render(&shut).to_vec();
        assert!(region_differs(&open, &closed, &r, EYES_REGION) > 50);
        assert_eq!(region_differs(&open, &closed, &r, MOUTH_REGION), 0);
    }

    #[test]
    fn every_character_and_style_looks_different() {
        let catalog = Catalog::built_in();
        let mut pictures: Vec<(String, Vec<u8>)> = Vec::new();
        for c in catalog.characters() {
            for (style, look) in &c.styles {
                let mut r = Renderer::new(look.clone(), 128, 128, Rgba([0, 0, 0, 0])).unwrap();
                let p = r.render(&[0.0; COUNT]).to_vec();
                for (other, q) in &pictures {
                    let differ = p.chunks(4).zip(q.chunks(4)).filter(|(a, b)| a != b).count();
                    assert!(differ > 300, "{}/{style} looks like {other}: {differ} pixels differ", c.name);
                }
                pictures.push((format!("{}/{style}", c.name), p));
            }
        }
        assert!(pictures.len() >= 6);
    }

    #[test]
    fn a_transparent_background_stays_transparent_around_the_character() {
        let mut r = renderer("mira", "casual");
        r.background = Rgba([0, 0, 0, 0]);
        let p = r.render(&[0.0; COUNT]).to_vec();
        assert_eq!(p[3], 0, "the corner is transparent");
        let (x, y, _, _) = r.region_px(MOUTH_REGION);
        assert_eq!(p[((y as usize + 2) * 256 + x as usize + 20) * 4 + 3], 255, "the face is opaque");
    }

    #[test]
    fn a_crop_is_the_same_pixels_as_that_part_of_the_whole_picture() {
        let look = Catalog::built_in().choose("leo", None).unwrap().look;
        let bg = Rgba([10, 20, 30, 255]);
        let mut whole = Renderer::new(look.clone(), 320, 240, bg).unwrap();
        let mut part = Renderer::cropped(look.clone(), (320, 240), ((100, 40), (260, 200)), bg).unwrap();
        assert_eq!(part.size(), (160, 160));
        let mut pose = [0.0; COUNT];
        pose[at::JAW_OPEN] = 0.5;
        let w = whole.render(&pose).to_vec();
        let p = part.render(&pose).to_vec();
        let mut differ = 0;
        for y in 0..160 {
            for x in 0..160 {
                let a = &p[(y * 160 + x) * 4..][..4];
                let b = &w[((y + 40) * 320 + x + 100) * 4..][..4];
                differ += a.iter().zip(b).filter(|(a, b)| a.abs_diff(**b) > 2).count();
            }
        }
        // Anti-aliased edges may round differently; everything else is the same.
        assert!(differ < 160 * 160 * 4 / 200, "{differ} channel values differ from the whole picture");
        // The mouth region follows the crop.
        let (mx, my, _, _) = whole.region_px(MOUTH_REGION);
        let (cx, cy, _, _) = part.region_px(MOUTH_REGION);
        assert_eq!((mx - 100, my - 40), (cx, cy));
        assert!(Renderer::cropped(look, (320, 240), ((100, 40), (400, 200)), bg).is_err());
    }
}
