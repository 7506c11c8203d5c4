//! The avatar's `video` settings as a session asks for them (Voice Live's `avatar.video`), read
//! and checked in full when `session.update` sets them: a bad value is an error naming its
//! field, never a broken stream later.

use brazen_avatar::character::Rgba;
use brazen_avatar::render::{MAX_VIDEO_PIXELS, MAX_VIDEO_SIDE as MAX_SIDE};
use serde_json::Value;

/// The shortest side of a video.
const MIN_SIDE: u32 = 16;

/// Where the picture behind the avatar comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Background {
    /// A colour; alpha below 255 is transparency.
    Color(Rgba),
    /// An image at an `http(s)` or `data:image/…` URL (loaded once when the video starts).
    Image(String),
}

/// A session's avatar video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarVideo {
    /// Width and height of the drawn picture.
    pub resolution: (u32, u32),
    /// The part of it sent: top-left and bottom-right corners (the whole picture by default).
    pub crop: ((u32, u32), (u32, u32)),
    /// The background.
    pub background: Background,
    /// Target bits per second.
    pub bitrate: u32,
    /// Frames from one key frame to the next.
    pub gop_size: u32,
}

impl Default for AvatarVideo {
    /// Voice Live's defaults: 1920×1080, uncropped, 2 Mbit/s, a key frame every 10 frames; a
    /// plain light background.
    fn default() -> Self {
        AvatarVideo {
            resolution: (1920, 1080),
            crop: ((0, 0), (1920, 1080)),
            background: Background::Color(Rgba([245, 245, 245, 255])),
            bitrate: 2_000_000,
            gop_size: 10,
        }
    }
}

/// A field that is wrong: its parameter path and what is wrong with it.
pub type Invalid = (String, String);

fn int(v: &Value, param: &str, range: std::ops::RangeInclusive<u64>) -> Result<u32, Invalid> {
    let n = v.as_u64().ok_or_else(|| (param.to_owned(), format!("'{param}' must be a whole number.")))?;
    if !range.contains(&n) {
        return Err((
            param.to_owned(),
            format!("'{param}' must be between {} and {}, not {n}.", range.start(), range.end()),
        ));
    }
    Ok(n as u32)
}

fn point(v: &Value, param: &str) -> Result<(u32, u32), Invalid> {
    match v.as_array().map(Vec::as_slice) {
        Some([x, y]) => Ok((
            int(x, &format!("{param}[0]"), 0..=u64::from(MAX_SIDE))?,
            int(y, &format!("{param}[1]"), 0..=u64::from(MAX_SIDE))?,
        )),
        _ => Err((param.to_owned(), format!("'{param}' must be a pair of pixel coordinates, [x, y]."))),
    }
}

/// A picture's URL (a background's, a portrait's): `http(s)` or `data:image/…`, at most 16 MiB.
pub fn picture_url(v: &Value, param: &str) -> Result<String, Invalid> {
    let url = v.as_str().unwrap_or_default();
    let ok = url.starts_with("https://") || url.starts_with("http://") || url.starts_with("data:image/");
    if !ok || url.len() > 16 << 20 {
        return Err((
            param.to_owned(),
            format!("'{param}' must be an http(s) URL or a data:image/… URL of at most 16 MiB."),
        ));
    }
    Ok(url.to_owned())
}

impl AvatarVideo {
    /// Reads `video` (`None` or `null`: the defaults); `path` prefixes the parameter names in
    /// errors (`session.avatar.video`).
    pub fn read(video: Option<&Value>, path: &str) -> Result<AvatarVideo, Invalid> {
        let mut out = AvatarVideo::default();
        let Some(video) = video.filter(|v| !v.is_null()) else { return Ok(out) };
        let obj = video.as_object().ok_or_else(|| (path.to_owned(), format!("'{path}' must be an object.")))?;
        let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
        let param = |name: &str| format!("{path}.{name}");
        if let Some(codec) = field("codec")
            && codec.as_str() != Some("h264")
        {
            return Err((
                param("codec"),
                format!("'{}' must be \"h264\" (the codec browsers decode everywhere).", param("codec")),
            ));
        }
        if let Some(b) = field("bitrate") {
            out.bitrate = int(b, &param("bitrate"), 50_000..=20_000_000)?;
        }
        if let Some(g) = field("gop_size") {
            out.gop_size = int(g, &param("gop_size"), 1..=2_000)?;
        }
        if let Some(r) = field("resolution") {
            let p = param("resolution");
            let side = |name: &str| -> Result<u32, Invalid> {
                let v = r.get(name).ok_or_else(|| (format!("{p}.{name}"), format!("'{p}.{name}' is required.")))?;
                let n = int(v, &format!("{p}.{name}"), u64::from(MIN_SIDE)..=u64::from(MAX_SIDE))?;
                if n % 2 != 0 {
                    return Err((
                        format!("{p}.{name}"),
                        format!("'{p}.{name}' must be even (H.264 halves it for colour), not {n}."),
                    ));
                }
                Ok(n)
            };
            out.resolution = (side("width")?, side("height")?);
            let (w, h) = out.resolution;
            if w * h > MAX_VIDEO_PIXELS {
                return Err((
                    p.clone(),
                    format!(
                        "A {w}×{h} video has {} pixels; the encoder takes at most {MAX_VIDEO_PIXELS} (3840×2160).",
                        w * h
                    ),
                ));
            }
        }
        out.crop = ((0, 0), out.resolution);
        if let Some(c) = field("crop") {
            let p = param("crop");
            let corner = |name: &str| -> Result<(u32, u32), Invalid> {
                let v = c.get(name).ok_or_else(|| (format!("{p}.{name}"), format!("'{p}.{name}' is required.")))?;
                point(v, &format!("{p}.{name}"))
            };
            let (tl, br) = (corner("top_left")?, corner("bottom_right")?);
            let (w, h) = (br.0.saturating_sub(tl.0), br.1.saturating_sub(tl.1));
            if br.0 > out.resolution.0
                || br.1 > out.resolution.1
                || w < MIN_SIDE
                || h < MIN_SIDE
                || w % 2 != 0
                || h % 2 != 0
            {
                return Err((
                    p.clone(),
                    format!(
                        "'{p}' must be an even-sized area of at least {MIN_SIDE}×{MIN_SIDE} inside the {}×{} picture, not [{}, {}]–[{}, {}].",
                        out.resolution.0, out.resolution.1, tl.0, tl.1, br.0, br.1
                    ),
                ));
            }
            out.crop = (tl, br);
        }
        if let Some(b) = field("background") {
            let p = param("background");
            let color = b.get("color").filter(|v| !v.is_null());
            let image = b.get("image_url").filter(|v| !v.is_null());
            out.background = match (color, image) {
                (Some(_), Some(_)) => {
                    return Err((p.clone(), format!("'{p}' takes a color or an image_url, not both.")));
                }
                (Some(c), None) => {
                    let text = c.as_str().unwrap_or_default();
                    Background::Color(
                        Rgba::parse(text).map_err(|e| (format!("{p}.color"), format!("'{p}.color': {e}")))?,
                    )
                }
                (None, Some(u)) => Background::Image(picture_url(u, &format!("{p}.image_url"))?),
                (None, None) => return Err((p.clone(), format!("'{p}' needs a color or an image_url."))),
            };
        }
        Ok(out)
    }

    /// The size of the video sent (the crop's).
    pub fn output_size(&self) -> (u32, u32) {
        (self.crop.1.0 - self.crop.0.0, self.crop.1.1 - self.crop.0.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<AvatarVideo, Invalid> {
        AvatarVideo::read(Some(&v), "session.avatar.video")
    }

    #[test]
    fn the_azure_sample_settings_are_read() {
        let v = read(json!({
            "codec": "h264", "bitrate": 1_000_000, "gop_size": 25,
            "resolution": {"width": 1920, "height": 1080},
            "crop": {"top_left": [560, 0], "bottom_right": [1360, 1080]},
            "background": {"color": "#00FF00FF"}
        }))
        .unwrap();
        assert_eq!(v.output_size(), (800, 1080));
        assert_eq!(v.background, Background::Color(Rgba([0, 255, 0, 255])));
        assert_eq!((v.bitrate, v.gop_size), (1_000_000, 25));
        assert_eq!(AvatarVideo::read(None, "x").unwrap(), AvatarVideo::default());
        let img = read(json!({"background": {"image_url": "https://example.com/office.jpg"}})).unwrap();
        assert_eq!(img.background, Background::Image("https://example.com/office.jpg".into()));
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (json!({"codec": "vp8"}), "session.avatar.video.codec"),
            (json!({"bitrate": 10}), "session.avatar.video.bitrate"),
            (json!({"gop_size": 0}), "session.avatar.video.gop_size"),
            (json!({"resolution": {"width": 641, "height": 480}}), "session.avatar.video.resolution.width"),
            (json!({"resolution": {"width": 640}}), "session.avatar.video.resolution.height"),
            (json!({"resolution": {"width": 99_999, "height": 480}}), "session.avatar.video.resolution.width"),
            (json!({"crop": {"top_left": [0, 0], "bottom_right": [4000, 100]}}), "session.avatar.video.crop"),
            (json!({"crop": {"top_left": [0, 0]}}), "session.avatar.video.crop.bottom_right"),
            (json!({"crop": {"top_left": "a", "bottom_right": [10, 10]}}), "session.avatar.video.crop.top_left"),
            (json!({"background": {"color": "green"}}), "session.avatar.video.background.color"),
            (json!({"background": {"image_url": "file:///etc/passwd"}}), "session.avatar.video.background.image_url"),
            (
                json!({"background": {"color": "#000000", "image_url": "https://x/y.png"}}),
                "session.avatar.video.background",
            ),
            (json!("big"), "session.avatar.video"),
        ];
        for (v, param) in cases {
            let (p, message) = read(v.clone()).unwrap_err();
            assert_eq!(p, param, "{v}: {message}");
            assert!(message.contains(&format!("'{param}")), "{message}");
        }
    }
}
