//! The session's `avatar` (Voice Live's avatar configuration, and brazen's photo-avatar
//! fields), read and checked in full once, when `session.update` sets it: a bad value is an
//! error naming its field, never a broken stream later. [`AvatarConfig`] keeps the object as
//! the client sent it (unknown fields included) to echo it back in `session.updated`.
//!
//! What needs the server's own data (that a `character` or a portrait exists, that custom
//! avatars are not offered) is checked by the engine, which has them.

use crate::error::ProtocolError;
use crate::read::{Obj, bad_value, join, wrong_type};
use serde_json::{Map, Value};

/// The longest side of a video picture (4K): what sessions may ask for and encoders take.
pub const MAX_VIDEO_SIDE: u32 = 4096;

/// The most pixels a video picture may have: 4K UHD (3840×2160), the largest frame the H.264
/// encoder takes (a 4096×4096 picture passes the side limit but not the encoder).
pub const MAX_VIDEO_PIXELS: u32 = 3840 * 2160;

/// The shortest side of a video.
const MIN_SIDE: u32 = 16;

/// The longest picture URL (`data:` URLs included).
const MAX_PICTURE_URL: usize = 16 << 20;

/// An RGBA colour, written `#RRGGBB` or `#RRGGBBAA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgba(pub [u8; 4]);

impl Rgba {
    /// Parses `#RRGGBB` or `#RRGGBBAA`.
    pub fn parse(text: &str) -> Result<Rgba, String> {
        let hex =
            text.strip_prefix('#').ok_or_else(|| format!("{text:?} is not a colour: write #RRGGBB or #RRGGBBAA"))?;
        if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{text:?} is not a colour: write #RRGGBB or #RRGGBBAA"));
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
        Ok(Rgba([byte(0), byte(2), byte(4), if hex.len() == 8 { byte(6) } else { 255 }]))
    }
}

impl<'de> serde::Deserialize<'de> for Rgba {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rgba, D::Error> {
        let text = String::deserialize(d)?;
        Rgba::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which kind of avatar (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AvatarKind {
    /// A drawn character (`video-avatar`, the default).
    #[default]
    Video,
    /// A portrait brought to life (`photo-avatar`).
    Photo,
}

/// How the avatar's video reaches the client (`output_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputProtocol {
    /// A WebRTC peer connection (`session.avatar.connect`), the default.
    #[default]
    WebRtc,
    /// `response.video.delta` events on the session's socket.
    WebSocket,
}

/// Where the picture behind the avatar comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Background {
    /// A colour; alpha below 255 is transparency.
    Color(Rgba),
    /// An image at an `http(s)` or `data:image/…` URL (loaded once when the video starts).
    Image(String),
}

/// A session's avatar video (`video`).
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

impl AvatarVideo {
    /// The size of the video sent (the crop's).
    pub fn output_size(&self) -> (u32, u32) {
        (self.crop.1.0 - self.crop.0.0, self.crop.1.1 - self.crop.0.1)
    }

    /// Reads `video` (`None` or `null`: the defaults); `path` names it in errors.
    pub fn read(video: Option<&Value>, path: &str) -> Result<AvatarVideo, ProtocolError> {
        let mut out = AvatarVideo::default();
        let Some(video) = video.filter(|v| !v.is_null()) else { return Ok(out) };
        let obj = video.as_object().ok_or_else(|| bad_value(path, format!("'{path}' must be an object.")))?;
        let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
        let param = |name: &str| join(path, name);
        if let Some(codec) = field("codec")
            && codec.as_str() != Some("h264")
        {
            let p = param("codec");
            return Err(bad_value(&p, format!("'{p}' must be \"h264\" (the codec browsers decode everywhere).")));
        }
        if let Some(b) = field("bitrate") {
            out.bitrate = int(b, &param("bitrate"), 50_000..=20_000_000)?;
        }
        if let Some(g) = field("gop_size") {
            out.gop_size = int(g, &param("gop_size"), 1..=2_000)?;
        }
        if let Some(r) = field("resolution") {
            let p = param("resolution");
            let side = |name: &str| -> Result<u32, ProtocolError> {
                let param = join(&p, name);
                let v = r.get(name).ok_or_else(|| bad_value(&param, format!("'{param}' is required.")))?;
                let n = int(v, &param, u64::from(MIN_SIDE)..=u64::from(MAX_VIDEO_SIDE))?;
                if n % 2 != 0 {
                    return Err(bad_value(
                        &param,
                        format!("'{param}' must be even (H.264 halves it for colour), not {n}."),
                    ));
                }
                Ok(n)
            };
            out.resolution = (side("width")?, side("height")?);
            let (w, h) = out.resolution;
            if w * h > MAX_VIDEO_PIXELS {
                return Err(bad_value(
                    &p,
                    format!(
                        "'{p}' is {w}×{h}, {} pixels; the encoder takes at most {MAX_VIDEO_PIXELS} (3840×2160).",
                        w * h
                    ),
                ));
            }
        }
        out.crop = ((0, 0), out.resolution);
        if let Some(c) = field("crop") {
            let p = param("crop");
            let corner = |name: &str| -> Result<(u32, u32), ProtocolError> {
                let param = join(&p, name);
                let v = c.get(name).ok_or_else(|| bad_value(&param, format!("'{param}' is required.")))?;
                point(v, &param)
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
                return Err(bad_value(
                    &p,
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
                    return Err(bad_value(&p, format!("'{p}' takes a color or an image_url, not both.")));
                }
                (Some(c), None) => {
                    let param = join(&p, "color");
                    let text = c.as_str().unwrap_or_default();
                    Background::Color(Rgba::parse(text).map_err(|e| bad_value(&param, format!("'{param}': {e}")))?)
                }
                (None, Some(u)) => Background::Image(picture_url(u, &join(&p, "image_url"))?),
                (None, None) => return Err(bad_value(&p, format!("'{p}' needs a color or an image_url."))),
            };
        }
        Ok(out)
    }
}

/// Where a photo avatar's closed mouth is in its portrait, as fractions of its width and
/// height (brazen's `photo_mouth`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MouthSpot {
    /// The centre of the lips' meeting line, x (0–1 of the width).
    pub x: f32,
    /// The same, y (0–1 of the height).
    pub y: f32,
    /// The mouth's width, as a fraction of the portrait's width.
    pub width: f32,
}

impl Default for MouthSpot {
    /// A centred head-and-shoulders portrait.
    fn default() -> Self {
        MouthSpot { x: 0.5, y: 0.66, width: 0.16 }
    }
}

/// The photo avatar's scene controls (Voice Live's `avatar.scene`), changeable while it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scene {
    /// Scale of the portrait (1: it fits the picture's height).
    pub zoom: f32,
    /// Horizontal offset, −1 (left edge) to 1 (right edge) of half the picture.
    pub position_x: f32,
    /// Vertical offset, −1 to 1 of half the picture (positive: down).
    pub position_y: f32,
    /// Nodding, radians (−π to π; its cosine foreshortens the portrait vertically).
    pub rotation_x: f32,
    /// Turning, radians (its cosine foreshortens the portrait horizontally).
    pub rotation_y: f32,
    /// Tilting, radians.
    pub rotation_z: f32,
    /// How much the face moves (the mouth's opening and widening), (0, 1].
    pub amplitude: f32,
}

impl Default for Scene {
    fn default() -> Self {
        Scene {
            zoom: 1.0,
            position_x: 0.0,
            position_y: 0.0,
            rotation_x: 0.0,
            rotation_y: 0.0,
            rotation_z: 0.0,
            amplitude: 1.0,
        }
    }
}

impl Scene {
    /// Reads `scene` (`None` or `null`: the defaults); `path` names it in errors.
    pub fn read(scene: Option<&Value>, path: &str) -> Result<Scene, ProtocolError> {
        let mut out = Scene::default();
        let Some(scene) = scene.filter(|v| !v.is_null()) else { return Ok(out) };
        if !scene.is_object() {
            return Err(bad_value(path, format!("'{path}' must be an object.")));
        }
        let pi = std::f64::consts::PI;
        let part = |name: &str, range: std::ops::RangeInclusive<f64>| number(scene.get(name), &join(path, name), range);
        // Azure documents 0 as every default; a zero zoom or amplitude means "as is".
        out.zoom = part("zoom", 0.0..=10.0)?.filter(|z| *z > 0.0).unwrap_or(out.zoom);
        out.position_x = part("position_x", -1.0..=1.0)?.unwrap_or(out.position_x);
        out.position_y = part("position_y", -1.0..=1.0)?.unwrap_or(out.position_y);
        out.rotation_x = part("rotation_x", -pi..=pi)?.unwrap_or(out.rotation_x);
        out.rotation_y = part("rotation_y", -pi..=pi)?.unwrap_or(out.rotation_y);
        out.rotation_z = part("rotation_z", -pi..=pi)?.unwrap_or(out.rotation_z);
        out.amplitude = part("amplitude", 0.0..=1.0)?.filter(|a| *a > 0.0).unwrap_or(out.amplitude);
        Ok(out)
    }
}

/// A session's avatar, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AvatarConfig {
    /// `type`.
    pub kind: AvatarKind,
    /// `character`: one of the server's characters (or an Azure stock name it stands in for);
    /// for a photo avatar, the name of one of the server's portraits.
    pub character: Option<String>,
    /// `style`.
    pub style: Option<String>,
    /// `customized`: an Azure custom avatar.
    pub customized: bool,
    /// `output_protocol`.
    pub output_protocol: OutputProtocol,
    /// `output_audit_audio`: the socket gets the audio even when the avatar plays it.
    pub output_audit_audio: bool,
    /// `video`.
    pub video: AvatarVideo,
    /// `photo_url`: a photo avatar's portrait.
    pub photo_url: Option<String>,
    /// `photo_mouth`.
    pub photo_mouth: MouthSpot,
    /// `scene`.
    pub scene: Scene,
    /// `ice_servers`, as given (the server's own when the client names none).
    pub ice_servers: Vec<Value>,
    /// The object as the client sent it, with the server's completions, for `session.updated`.
    json: Map<String, Value>,
}

impl Default for AvatarConfig {
    /// An avatar with every default (`"avatar": {}`).
    fn default() -> Self {
        AvatarConfig {
            kind: AvatarKind::default(),
            character: None,
            style: None,
            customized: false,
            output_protocol: OutputProtocol::default(),
            output_audit_audio: false,
            video: AvatarVideo::default(),
            photo_url: None,
            photo_mouth: MouthSpot::default(),
            scene: Scene::default(),
            ice_servers: Vec::new(),
            json: Map::new(),
        }
    }
}

impl AvatarConfig {
    /// Reads an `avatar` object found at `path`.
    pub fn read(value: &Value, path: &str) -> Result<AvatarConfig, ProtocolError> {
        let o = Obj::expect(value, path)?;
        let text = |key: &str| -> Result<Option<String>, ProtocolError> {
            match o.raw(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(wrong_type(&o.param(key), "a string", other)),
            }
        };
        let kind = match text("type")?.as_deref() {
            None | Some("video-avatar") => AvatarKind::Video,
            Some("photo-avatar") => AvatarKind::Photo,
            Some(other) => {
                let p = o.param("type");
                return Err(bad_value(&p, format!("'{p}' must be 'video-avatar' or 'photo-avatar', not {other:?}.")));
            }
        };
        let output_protocol = match text("output_protocol")?.as_deref() {
            None | Some("webrtc") => OutputProtocol::WebRtc,
            Some("websocket") => OutputProtocol::WebSocket,
            Some(other) => {
                let p = o.param("output_protocol");
                return Err(bad_value(&p, format!("'{p}' must be 'webrtc' or 'websocket', not {other:?}.")));
            }
        };
        let flag = |key: &str| o.bool(key).map(|f| f.value().unwrap_or(false));
        let ice_servers = match o.raw("ice_servers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.clone(),
            Some(other) => return Err(wrong_type(&o.param("ice_servers"), "an array", other)),
        };
        let mut config = AvatarConfig {
            kind,
            character: text("character")?,
            style: text("style")?,
            customized: flag("customized")?,
            output_protocol,
            output_audit_audio: flag("output_audit_audio")?,
            video: AvatarVideo::read(o.raw("video"), &o.param("video"))?,
            photo_url: None,
            photo_mouth: MouthSpot::default(),
            scene: Scene::read(o.raw("scene"), &o.param("scene"))?,
            ice_servers,
            json: value.as_object().cloned().unwrap_or_default(),
        };
        if kind == AvatarKind::Photo {
            if let Some(url) = o.raw("photo_url").filter(|v| !v.is_null()) {
                config.photo_url = Some(picture_url(url, &o.param("photo_url"))?);
            }
            if let Some(m) = o.raw("photo_mouth").filter(|v| !v.is_null()) {
                let param = o.param("photo_mouth");
                if !m.is_object() {
                    return Err(bad_value(
                        &param,
                        format!("'{param}' must be an object: {{\"x\": 0.5, \"y\": 0.66, \"width\": 0.16}}."),
                    ));
                }
                let part = |name: &str, range| number(m.get(name), &join(&param, name), range);
                let mouth = &mut config.photo_mouth;
                mouth.x = part("x", 0.0..=1.0)?.unwrap_or(mouth.x);
                mouth.y = part("y", 0.0..=1.0)?.unwrap_or(mouth.y);
                mouth.width = part("width", 0.02..=0.8)?.unwrap_or(mouth.width);
            }
        }
        Ok(config)
    }

    /// The object as `session.updated` shows it.
    pub fn to_json(&self) -> Value {
        Value::Object(self.json.clone())
    }

    /// Gives the avatar the server's ICE servers (when it names none).
    pub fn set_ice_servers(&mut self, servers: Vec<Value>) {
        self.json.insert("ice_servers".into(), Value::Array(servers.clone()));
        self.ice_servers = servers;
    }

    /// Sets (or, with `None`, removes) `transparency`: how a transparent background is
    /// delivered, which the server decides.
    pub fn set_transparency(&mut self, how: Option<Value>) {
        match how {
            Some(how) => self.json.insert("transparency".into(), how),
            None => self.json.remove("transparency"),
        };
    }

    /// Bytes of its JSON (for size limits).
    pub fn json_len(&self) -> usize {
        self.to_json().to_string().len()
    }
}

/// A picture's URL (a background's, a portrait's): `http(s)` or `data:image/…`, at most 16 MiB.
pub fn picture_url(v: &Value, param: &str) -> Result<String, ProtocolError> {
    let url = v.as_str().unwrap_or_default();
    let ok = url.starts_with("https://") || url.starts_with("http://") || url.starts_with("data:image/");
    if !ok || url.len() > MAX_PICTURE_URL {
        return Err(bad_value(
            param,
            format!("'{param}' must be an http(s) URL or a data:image/… URL of at most 16 MiB."),
        ));
    }
    Ok(url.to_owned())
}

fn int(v: &Value, param: &str, range: std::ops::RangeInclusive<u64>) -> Result<u32, ProtocolError> {
    let n = v.as_u64().ok_or_else(|| bad_value(param, format!("'{param}' must be a whole number.")))?;
    if !range.contains(&n) {
        return Err(bad_value(
            param,
            format!("'{param}' must be between {} and {}, not {n}.", range.start(), range.end()),
        ));
    }
    Ok(n as u32)
}

fn point(v: &Value, param: &str) -> Result<(u32, u32), ProtocolError> {
    match v.as_array().map(Vec::as_slice) {
        Some([x, y]) => Ok((
            int(x, &format!("{param}[0]"), 0..=u64::from(MAX_VIDEO_SIDE))?,
            int(y, &format!("{param}[1]"), 0..=u64::from(MAX_VIDEO_SIDE))?,
        )),
        _ => Err(bad_value(param, format!("'{param}' must be a pair of pixel coordinates, [x, y]."))),
    }
}

/// A number in `range`, if present.
fn number(v: Option<&Value>, param: &str, range: std::ops::RangeInclusive<f64>) -> Result<Option<f32>, ProtocolError> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(None) };
    match v.as_f64() {
        Some(n) if range.contains(&n) => Ok(Some(n as f32)),
        Some(n) => {
            Err(bad_value(param, format!("'{param}' must be between {} and {}, not {n}.", range.start(), range.end())))
        }
        None => Err(bad_value(param, format!("'{param}' must be a number."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;
    use serde_json::json;

    fn video(v: Value) -> Result<AvatarVideo, ProtocolError> {
        AvatarVideo::read(Some(&v), "session.avatar.video")
    }

    fn avatar(v: Value) -> Result<AvatarConfig, ProtocolError> {
        AvatarConfig::read(&v, "session.avatar")
    }

    #[test]
    fn the_azure_sample_settings_are_read() {
        let v = video(json!({
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
        let img = video(json!({"background": {"image_url": "https://example.com/office.jpg"}})).unwrap();
        assert_eq!(img.background, Background::Image("https://example.com/office.jpg".into()));
    }

    #[test]
    fn bad_video_values_name_their_field() {
        let cases = [
            (json!({"codec": "vp8"}), "session.avatar.video.codec"),
            (json!({"bitrate": 10}), "session.avatar.video.bitrate"),
            (json!({"gop_size": 0}), "session.avatar.video.gop_size"),
            (json!({"resolution": {"width": 641, "height": 480}}), "session.avatar.video.resolution.width"),
            (json!({"resolution": {"width": 640}}), "session.avatar.video.resolution.height"),
            (json!({"resolution": {"width": 99_999, "height": 480}}), "session.avatar.video.resolution.width"),
            (json!({"resolution": {"width": 4096, "height": 4096}}), "session.avatar.video.resolution"),
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
            let e = video(v.clone()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{v}: {}", e.message);
            assert_eq!(e.code, code::INVALID_VALUE);
            assert!(e.message.contains(&format!("'{param}")), "{}", e.message);
        }
    }

    #[test]
    fn a_photo_avatar_reads_its_portrait_mouth_and_scene() {
        let a = avatar(json!({"type": "photo-avatar", "photo_url": "data:image/png;base64,AAAA",
            "photo_mouth": {"y": 0.7}, "scene": {"zoom": 1.5, "position_x": -0.2, "rotation_z": 0.1, "amplitude": 0.6}}))
        .unwrap();
        assert_eq!(a.kind, AvatarKind::Photo);
        assert_eq!(a.photo_url.as_deref(), Some("data:image/png;base64,AAAA"));
        assert_eq!((a.photo_mouth.x, a.photo_mouth.y), (0.5, 0.7));
        let s = a.scene;
        assert_eq!((s.zoom, s.position_x, s.rotation_z, s.amplitude), (1.5, -0.2, 0.1, 0.6));
        // Azure's all-zero defaults mean the scene as it is.
        let zeros = Scene::read(Some(&json!({"zoom": 0, "amplitude": 0, "position_x": 0})), "scene").unwrap();
        assert_eq!(zeros, Scene::default());
    }

    #[test]
    fn bad_avatar_values_name_their_field() {
        let bad = |v: Value| avatar(v).unwrap_err();
        let photo = |extra: Value| {
            let mut a = json!({"type": "photo-avatar", "photo_url": "https://example.com/me.jpg"});
            a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            a
        };
        let cases = [
            (photo(json!({"photo_url": "file:///me.jpg"})), "session.avatar.photo_url"),
            (photo(json!({"scene": {"position_x": 3}})), "session.avatar.scene.position_x"),
            (photo(json!({"scene": {"rotation_y": "left"}})), "session.avatar.scene.rotation_y"),
            (photo(json!({"scene": {"amplitude": 2}})), "session.avatar.scene.amplitude"),
            (photo(json!({"photo_mouth": {"width": 0.9}})), "session.avatar.photo_mouth.width"),
            (photo(json!({"scene": []})), "session.avatar.scene"),
            (json!({"type": "hologram"}), "session.avatar.type"),
            (json!({"output_protocol": "rtmp"}), "session.avatar.output_protocol"),
            (json!({"video": {"bitrate": 1}}), "session.avatar.video.bitrate"),
        ];
        for (v, param) in cases {
            let e = bad(v.clone());
            assert_eq!(e.param.as_deref(), Some(param), "{v}: {}", e.message);
            assert_eq!(e.code, code::INVALID_VALUE);
        }
        let e = bad(json!({"character": 7}));
        assert_eq!((e.code, e.param.as_deref()), (code::INVALID_TYPE, Some("session.avatar.character")));
        assert_eq!(bad(json!("lisa")).code, code::INVALID_TYPE);
    }

    #[test]
    fn the_object_is_echoed_as_sent_with_the_servers_completions() {
        let sent = json!({"character": "lisa", "style": "casual-sitting", "x_custom": {"a": 1}, "video": {"bitrate": 1_000_000}});
        let mut a = avatar(sent.clone()).unwrap();
        assert_eq!(a.to_json(), sent);
        assert_eq!((a.character.as_deref(), a.video.bitrate), (Some("lisa"), 1_000_000));
        a.set_ice_servers(vec![json!({"urls": ["stun:127.0.0.1:3478"]})]);
        a.set_transparency(Some(json!({"method": "alpha_below"})));
        let echoed = a.to_json();
        assert_eq!(echoed["x_custom"], json!({"a": 1}));
        assert_eq!(echoed["ice_servers"][0]["urls"][0], "stun:127.0.0.1:3478");
        assert_eq!(echoed["transparency"]["method"], "alpha_below");
        a.set_transparency(None);
        assert!(a.to_json().get("transparency").is_none());
    }
}
