//! RGBA (premultiplied, as tiny-skia draws) to I420 (BT.601, limited range), composited over a
//! key colour where the picture is transparent, or with its alpha as a second picture below.

use brazen_avatar::render::MAX_VIDEO_SIDE;

/// The longest side of a picture (4K).
const MAX_SIDE: usize = MAX_VIDEO_SIDE as usize;

/// A picture in I420: a full-size luma plane and quarter-size chroma planes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420 {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl I420 {
    /// A black picture; `width` and `height` must be even and non-zero (H.264 needs whole
    /// macroblock pairs of chroma).
    pub fn new(width: usize, height: usize) -> Result<I420, String> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(format!("a video picture must have even, non-zero sides, not {width}×{height}"));
        }
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(format!("a video picture may be at most {MAX_SIDE}×{MAX_SIDE}, not {width}×{height}"));
        }
        let (cw, ch) = (width / 2, height / 2);
        Ok(I420 { width, height, y: vec![16; width * height], u: vec![128; cw * ch], v: vec![128; cw * ch] })
    }

    /// Its width and height.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Fills the picture from premultiplied RGBA of the same size, showing `key` (RGB) where it
    /// is transparent.
    pub fn fill_from_rgba(&mut self, rgba: &[u8], key: [u8; 3]) -> Result<(), String> {
        let (w, h) = (self.width, self.height);
        if rgba.len() != w * h * 4 {
            return Err(format!("{} bytes of RGBA for a {w}×{h} picture", rgba.len()));
        }
        self.fill_rows(rgba, key, h);
        Ok(())
    }

    /// Fills the picture from premultiplied RGBA half its height: the colour over black in the
    /// top half, the alpha as grey (luma, no chroma) in the bottom half — alpha that survives a
    /// codec without an alpha channel. A player draws the top half with the bottom half's luma
    /// as its alpha (premultiplied: `out = top + under · (1 − alpha)`).
    pub fn fill_with_alpha_below(&mut self, rgba: &[u8]) -> Result<(), String> {
        let (w, h) = (self.width, self.height / 2);
        if rgba.len() != w * h * 4 || !h.is_multiple_of(2) {
            return Err(format!("{} bytes of RGBA for the top half of a {w}×{} picture", rgba.len(), self.height));
        }
        self.fill_rows(rgba, [0, 0, 0], h);
        for (y, px) in self.y[w * h..].iter_mut().zip(rgba.chunks_exact(4)) {
            *y = (16 + (u32::from(px[3]) * 219 + 127) / 255) as u8;
        }
        let cw = w / 2;
        self.u[cw * h / 2..].fill(128);
        self.v[cw * h / 2..].fill(128);
        Ok(())
    }

    /// Fills the top `rows` rows from premultiplied RGBA `self.width` wide, over `key`.
    fn fill_rows(&mut self, rgba: &[u8], key: [u8; 3], rows: usize) {
        let w = self.width;
        let key = key.map(i32::from);
        // Premultiplied colour over the key: c + key·(255 − a)/255 (opaque pixels as they are).
        let over = |px: &[u8]| -> [i32; 3] {
            let (r, g, b, a) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]), i32::from(px[3]));
            if a == 255 {
                return [r, g, b];
            }
            let rest = 255 - a;
            [r + (key[0] * rest + 127) / 255, g + (key[1] * rest + 127) / 255, b + (key[2] * rest + 127) / 255]
        };
        let luma = |[r, g, b]: [i32; 3]| (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
        let cw = w / 2;
        let (ys, us, vs) = (&mut self.y[..w * rows], &mut self.u[..cw * rows / 2], &mut self.v[..cw * rows / 2]);
        for (pair, (y_rows, (u_row, v_row))) in rgba
            .chunks_exact(w * 8)
            .zip(ys.chunks_exact_mut(w * 2).zip(us.chunks_exact_mut(cw).zip(vs.chunks_exact_mut(cw))))
        {
            let (top, bottom) = pair.split_at(w * 4);
            let (y_top, y_bottom) = y_rows.split_at_mut(w);
            for (i, ((t, b), (yt, yb))) in top
                .chunks_exact(8)
                .zip(bottom.chunks_exact(8))
                .zip(y_top.chunks_exact_mut(2).zip(y_bottom.chunks_exact_mut(2)))
                .enumerate()
            {
                let px = [over(&t[..4]), over(&t[4..]), over(&b[..4]), over(&b[4..])];
                yt[0] = luma(px[0]);
                yt[1] = luma(px[1]);
                yb[0] = luma(px[2]);
                yb[1] = luma(px[3]);
                let sum = |c: usize| (px[0][c] + px[1][c] + px[2][c] + px[3][c] + 2) / 4;
                let (r, g, b) = (sum(0), sum(1), sum(2));
                u_row[i] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
                v_row[i] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
            }
        }
    }
}

impl openh264::formats::YUVSource for I420 {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_convert_to_bt601_limited_range() {
        let mut p = I420::new(2, 2).unwrap();
        let white = [255u8, 255, 255, 255].repeat(4);
        p.fill_from_rgba(&white, [0, 0, 0]).unwrap();
        assert_eq!((p.y[0], p.u[0], p.v[0]), (235, 128, 128));
        let red = [255u8, 0, 0, 255].repeat(4);
        p.fill_from_rgba(&red, [0, 0, 0]).unwrap();
        assert_eq!((p.y[0], p.u[0], p.v[0]), (82, 90, 240));
        // Transparent shows the key (green here).
        p.fill_from_rgba(&[0u8; 16], [0, 255, 0]).unwrap();
        assert_eq!((p.y[0], p.u[0], p.v[0]), (144, 54, 34));
    }

    #[test]
    fn alpha_goes_below_as_grey() {
        // 2×2 of colour: opaque red on the left, transparent on the right; 2×4 encoded.
        let mut p = I420::new(2, 4).unwrap();
        let row = [255u8, 0, 0, 255, 0, 0, 0, 0];
        p.fill_with_alpha_below(&row.repeat(2)).unwrap();
        let y = |x: usize, r: usize| p.y[r * 2 + x];
        assert_eq!((y(0, 0), y(1, 0)), (82, 16), "red, and black where transparent");
        assert_eq!((y(0, 2), y(1, 3)), (235, 16), "alpha 255 → white, 0 → black");
        assert_eq!((p.u[1], p.v[1]), (128, 128), "no chroma in the alpha half");
        assert!(p.fill_with_alpha_below(&row).unwrap_err().contains("top half"));
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(I420::new(3, 2).is_err());
        assert!(I420::new(0, 2).is_err());
        assert!(I420::new(1 << 20, 1 << 20).unwrap_err().contains("at most"));
        let mut p = I420::new(4, 4).unwrap();
        assert!(p.fill_from_rgba(&[0; 10], [0, 0, 0]).unwrap_err().contains("4×4"));
    }
}
