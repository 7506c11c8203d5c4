//! Background pictures (`avatar.video.background.image_url`): PNG or JPEG bytes decoded once into
//! RGBA, then laid under the character by the [`crate::Renderer`], scaled to cover the picture.

/// The largest picture side accepted, px (a larger image costs memory for nothing: it is scaled
/// down to the video anyway).
pub const MAX_SIDE: u32 = 8_192;

/// The most pixels a picture may have to be decoded at all (64 MiB of RGBA while it is
/// decoded), checked from its header before any pixel is decoded: a small file can claim a
/// huge picture.
pub const MAX_DECODED_PIXELS: u64 = 4_096 * 4_096;

/// The most pixels a decoded picture keeps: a larger one is scaled down to this (4K UHD, the
/// largest video), so each picture held costs at most 32 MiB.
pub const MAX_KEPT_PIXELS: u64 = crate::render::MAX_VIDEO_PIXELS as u64;

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
    /// Decodes a PNG or JPEG (told apart by their signatures) of at most [`MAX_DECODED_PIXELS`],
    /// scaled down to [`MAX_KEPT_PIXELS`] when larger.
    pub fn decode(bytes: &[u8]) -> Result<Backdrop, String> {
        let picture = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            decode_png(bytes)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            decode_jpeg(bytes)
        } else {
            Err("the picture is not a PNG or a JPEG".into())
        }?;
        Ok(picture.shrunk_to(MAX_KEPT_PIXELS))
    }

    /// The bytes its pixels take.
    pub fn byte_size(&self) -> usize {
        self.rgba.len()
    }

    /// The picture scaled down (each new pixel the mean of the pixels it covers) so it has at
    /// most `max_pixels`, keeping its aspect ratio; unchanged when it is small enough.
    fn shrunk_to(self, max_pixels: u64) -> Backdrop {
        let (w, h) = (self.width as u64, self.height as u64);
        if w * h <= max_pixels {
            return self;
        }
        let scale = ((max_pixels as f64) / (w * h) as f64).sqrt();
        let (nw, nh) = (((w as f64 * scale) as u64).max(1), ((h as f64 * scale) as u64).max(1));
        let mut rgba = Vec::with_capacity((nw * nh * 4) as usize);
        for y in 0..nh {
            let (y0, y1) = (y * h / nh, ((y + 1) * h / nh).max(y * h / nh + 1));
            for x in 0..nw {
                let (x0, x1) = (x * w / nw, ((x + 1) * w / nw).max(x * w / nw + 1));
                let mut sum = [0u64; 4];
                for sy in y0..y1 {
                    let row = (sy * w) as usize * 4;
                    for sx in x0..x1 {
                        let i = row + sx as usize * 4;
                        for (c, total) in sum.iter_mut().enumerate() {
                            *total += u64::from(self.rgba[i + c]);
                        }
                    }
                }
                let n = (y1 - y0) * (x1 - x0);
                rgba.extend(sum.iter().map(|t| (t / n) as u8));
            }
        }
        Backdrop { width: nw as u32, height: nh as u32, rgba }
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

/// Refuses a picture whose header claims more than [`MAX_SIDE`] a side or [`MAX_DECODED_PIXELS`].
fn check_size(kind: &str, width: u32, height: u32) -> Result<(), String> {
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_DECODED_PIXELS {
        return Err(format!(
            "the {kind} is {width}×{height}; pictures of at most {MAX_DECODED_PIXELS} pixels and {MAX_SIDE} px a side are taken"
        ));
    }
    Ok(())
}

fn decode_png(bytes: &[u8]) -> Result<Backdrop, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("the PNG cannot be read: {e}"))?;
    let (width, height) = (reader.info().width, reader.info().height);
    check_size("PNG", width, height)?;
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
    decoder.decode_headers().map_err(|e| format!("the JPEG cannot be read: {e:?}"))?;
    let (width, height) = decoder.dimensions().ok_or("the JPEG has no size")?;
    check_size("JPEG", width as u32, height as u32)?;
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

    /// A PNG whose header claims `w`×`h` (its pixel data is a 1×1 picture's).
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut bytes = png(1, 1, |_, _| [0, 0, 0]);
        bytes[16..20].copy_from_slice(&w.to_be_bytes());
        bytes[20..24].copy_from_slice(&h.to_be_bytes());
        // The IHDR chunk's CRC-32 over its type and data (bytes 12..29).
        let mut crc = !0u32;
        for &b in &bytes[12..29] {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        bytes[29..33].copy_from_slice(&(!crc).to_be_bytes());
        bytes
    }

    #[test]
    fn a_picture_claiming_too_many_pixels_is_refused_before_decoding() {
        let bomb = png_claiming(8_192, 8_192);
        assert!(bomb.len() < 100);
        let e = Backdrop::decode(&bomb).unwrap_err();
        assert!(e.contains("8192×8192") && e.contains("pixels"), "{e}");
        // Within the limit, the header is believed and the short data is the error.
        assert!(Backdrop::decode(&png_claiming(64, 64)).unwrap_err().contains("decoded"));
    }

    #[test]
    fn large_pictures_are_kept_scaled_down() {
        let b = Backdrop::from_rgba(400, 200, [10, 20, 30, 255].repeat(400 * 200)).unwrap();
        let small = b.shrunk_to(20_000);
        assert_eq!(small.size(), (200, 100));
        assert_eq!(small.byte_size(), 200 * 100 * 4);
        assert_eq!(&small.rgba()[..4], &[10, 20, 30, 255]);
        let same = Backdrop::from_rgba(4, 4, vec![7; 64]).unwrap().shrunk_to(16);
        assert_eq!(same.size(), (4, 4));
    }
}
