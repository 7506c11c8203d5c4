//! Background pictures (`avatar.video.background.image_url`): PNG or JPEG bytes decoded once into
//! RGBA, then laid under the character by the [`crate::Renderer`], scaled to cover the picture.

/// The largest picture side accepted, px (a larger image costs memory for nothing: it is scaled
/// down to the video anyway).
pub const MAX_SIDE: u32 = 8_192;

/// A decoded background picture.
#[derive(Clone, PartialEq, Eq)]
pub struct Backdrop {
    width: u32,
    height: u32,
    /// RGBA, not premultiplied, row by row.
    rgba: Vec<u8>,
}

impl std::fmt::Debug for Backdrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backdrop({}×{})", self.width, self.height)
    }
}

impl Backdrop {
    /// Decodes a PNG or JPEG (told apart by their signatures).
    pub fn decode(bytes: &[u8]) -> Result<Backdrop, String> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            decode_png(bytes)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            decode_jpeg(bytes)
        } else {
            Err("the picture is not a PNG or a JPEG".into())
        }
    }

    /// A picture of `width`×`height` from straight (not premultiplied) RGBA.
    pub fn from_rgba(width: u32, height: u32, rgba: Vec<u8>) -> Result<Backdrop, String> {
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(format!("a {width}×{height} picture is outside 1–{MAX_SIDE} px a side"));
        }
        if rgba.len() != width as usize * height as usize * 4 {
            return Err(format!("{} bytes are not a {width}×{height} RGBA picture", rgba.len()));
        }
        Ok(Backdrop { width, height, rgba })
    }

    /// Its width and height.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Its pixels: RGBA, not premultiplied.
    pub fn rgba(&self) -> &[u8] {
        &self.rgba
    }
}

fn decode_png(bytes: &[u8]) -> Result<Backdrop, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("the PNG cannot be read: {e}"))?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!("the PNG is {width}×{height}; the largest side taken is {MAX_SIDE} px"));
    }
    let mut buf = vec![0; reader.output_buffer_size().ok_or("the PNG is too large")?];
    let frame = reader.next_frame(&mut buf).map_err(|e| format!("the PNG cannot be decoded: {e}"))?;
    let pixels = &buf[..frame.buffer_size()];
    let rgba: Vec<u8> = match frame.color_type {
        png::ColorType::Rgba => pixels.to_vec(),
        png::ColorType::Rgb => pixels.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        png::ColorType::GrayscaleAlpha => pixels.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        png::ColorType::Grayscale => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => return Err("the PNG's palette could not be expanded".into()),
    };
    Backdrop::from_rgba(width, height, rgba)
}

fn decode_jpeg(bytes: &[u8]) -> Result<Backdrop, String> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGBA)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let rgba = decoder.decode().map_err(|e| format!("the JPEG cannot be decoded: {e:?}"))?;
    let (width, height) = decoder.dimensions().ok_or("the JPEG has no size")?;
    Backdrop::from_rgba(width as u32, height as u32, rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w`×`h` RGB PNG whose pixels are `f(x, y)`.
    pub(crate) fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let data: Vec<u8> = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).flat_map(|(x, y)| f(x, y)).collect();
        writer.write_image_data(&data).unwrap();
        drop(writer);
        out
    }

    #[test]
    fn pngs_decode_and_other_bytes_are_refused() {
        let b = Backdrop::decode(&png(4, 2, |x, _| [x as u8 * 60, 0, 200])).unwrap();
        assert_eq!(b.size(), (4, 2));
        assert_eq!(&b.rgba()[4..8], &[60, 0, 200, 255]);
        assert!(Backdrop::decode(b"GIF89a....").unwrap_err().contains("not a PNG or a JPEG"));
        assert!(Backdrop::decode(b"\x89PNG\r\n\x1a\nbroken").unwrap_err().contains("PNG"));
        assert!(Backdrop::decode(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2]).unwrap_err().contains("JPEG"));
        assert!(Backdrop::from_rgba(0, 5, Vec::new()).is_err());
    }

    #[test]
    fn jpegs_decode() {
        // 32×16: red on the left half, blue on the right.
        let b = Backdrop::decode(include_bytes!("../tests/data/red-blue.jpg")).unwrap();
        assert_eq!(b.size(), (32, 16));
        let at = |x: usize, y: usize| &b.rgba()[(y * 32 + x) * 4..(y * 32 + x) * 4 + 4];
        let near = |p: &[u8], q: [u8; 4]| p.iter().zip(q).all(|(a, b)| a.abs_diff(b) < 20);
        assert!(near(at(4, 8), [220, 40, 40, 255]), "{:?}", at(4, 8));
        assert!(near(at(28, 8), [40, 40, 220, 255]), "{:?}", at(28, 8));
    }
}
