//! The photo avatar as a session asks for it (`avatar.type: "photo-avatar"`): the portrait to
//! animate (`photo_url`, brazen's field: an http(s) or data: URL of a PNG or JPEG; or, without it,
//! the server's portrait that `character` names), where its mouth is (`photo_mouth`, optional),
//! and Voice Live's `scene` controls, read and checked when `session.update` sets them.

use crate::avatar_video::{Invalid, picture_url};
use brazen_avatar::character::Catalog;
use brazen_avatar::{Backdrop, MouthSpot, Scene};
use serde_json::Value;
use std::sync::Arc;

/// Where a photo avatar's portrait comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Portrait {
    /// An http(s) or data: URL (`photo_url`), loaded when the avatar starts.
    Url(String),
    /// One of the server's portraits (from its characters folder), named by `character`.
    Installed(Arc<Backdrop>),
}

/// A photo avatar's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoAvatar {
    /// Where the portrait is.
    pub portrait: Portrait,
    /// Where its mouth is.
    pub mouth: MouthSpot,
    /// How it is placed and how much it moves.
    pub scene: Scene,
}

/// Whether `avatar` asks for a photo avatar (`type: "photo-avatar"`).
pub fn is_photo(avatar: &Value) -> bool {
    avatar.get("type").and_then(Value::as_str) == Some("photo-avatar")
}

/// Reads a photo avatar's settings from the `avatar` object (its `type` already known to be
/// `photo-avatar`); `catalog` has the server's portraits.
pub fn read(avatar: &Value, catalog: &Catalog) -> Result<PhotoAvatar, Invalid> {
    let character = avatar.get("character").and_then(Value::as_str);
    let portrait = match (avatar.get("photo_url").filter(|v| !v.is_null()), character.and_then(|c| catalog.portrait(c)))
    {
        (Some(v), _) => Portrait::Url(picture_url(v, "session.avatar.photo_url")?),
        (None, Some(installed)) => Portrait::Installed(installed),
        (None, None) => {
            let installed = catalog.portrait_names();
            let choice = if installed.is_empty() {
                "this server has none installed (PNG or JPEG files in its characters folder)".to_owned()
            } else {
                format!("this server has {}", installed.join(", "))
            };
            return Err((
                "session.avatar.photo_url".into(),
                format!(
                    "A photo avatar needs a portrait: set 'photo_url' to an http(s) or data:image/… URL of a PNG or JPEG (a centred head-and-shoulders photo; 'photo_mouth' says where the mouth is when it is elsewhere), or name one of the server's portraits in 'character' ({choice})."
                ),
            ));
        }
    };
    let mut mouth = MouthSpot::default();
    if let Some(m) = avatar.get("photo_mouth").filter(|v| !v.is_null()) {
        let param = "session.avatar.photo_mouth";
        let part = |name: &str, range: std::ops::RangeInclusive<f64>| -> Result<Option<f32>, Invalid> {
            number(m.get(name), &format!("{param}.{name}"), range)
        };
        if !m.is_object() {
            return Err((
                param.into(),
                format!("'{param}' must be an object: {{\"x\": 0.5, \"y\": 0.66, \"width\": 0.16}}."),
            ));
        }
        mouth.x = part("x", 0.0..=1.0)?.unwrap_or(mouth.x);
        mouth.y = part("y", 0.0..=1.0)?.unwrap_or(mouth.y);
        mouth.width = part("width", 0.02..=0.8)?.unwrap_or(mouth.width);
    }
    Ok(PhotoAvatar { portrait, mouth, scene: read_scene(avatar.get("scene"))? })
}

/// Reads Voice Live's `scene` (`None` or `null`: the defaults).
pub fn read_scene(scene: Option<&Value>) -> Result<Scene, Invalid> {
    let mut out = Scene::default();
    let Some(scene) = scene.filter(|v| !v.is_null()) else { return Ok(out) };
    let param = "session.avatar.scene";
    if !scene.is_object() {
        return Err((param.into(), format!("'{param}' must be an object.")));
    }
    let pi = std::f64::consts::PI;
    let part =
        |name: &str, range: std::ops::RangeInclusive<f64>| number(scene.get(name), &format!("{param}.{name}"), range);
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

/// A number in `range`, if present.
fn number(v: Option<&Value>, param: &str, range: std::ops::RangeInclusive<f64>) -> Result<Option<f32>, Invalid> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(None) };
    match v.as_f64() {
        Some(n) if range.contains(&n) => Ok(Some(n as f32)),
        Some(n) => Err((
            param.to_owned(),
            format!("'{param}' must be between {} and {}, not {n}.", range.start(), range.end()),
        )),
        None => Err((param.to_owned(), format!("'{param}' must be a number."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(avatar: &Value) -> Result<PhotoAvatar, Invalid> {
        super::read(avatar, &Catalog::built_in())
    }

    #[test]
    fn a_photo_avatar_needs_a_portrait_and_reads_its_scene() {
        let e = read(&json!({"type": "photo-avatar", "character": "anika"})).unwrap_err();
        assert_eq!(e.0, "session.avatar.photo_url");
        assert!(e.1.contains("none installed"), "{}", e.1);
        let p = read(&json!({"type": "photo-avatar", "photo_url": "data:image/png;base64,AAAA",
            "photo_mouth": {"y": 0.7}, "scene": {"zoom": 1.5, "position_x": -0.2, "rotation_z": 0.1, "amplitude": 0.6}}))
        .unwrap();
        assert_eq!(p.portrait, Portrait::Url("data:image/png;base64,AAAA".into()));
        assert_eq!((p.mouth.x, p.mouth.y), (0.5, 0.7));
        assert_eq!((p.scene.zoom, p.scene.position_x, p.scene.rotation_z, p.scene.amplitude), (1.5, -0.2, 0.1, 0.6));
        // Azure's all-zero defaults mean the scene as it is.
        let zeros = read_scene(Some(&json!({"zoom": 0, "amplitude": 0, "position_x": 0}))).unwrap();
        assert_eq!(zeros, Scene::default());
    }

    #[test]
    fn a_character_can_name_an_installed_portrait() {
        let mut catalog = Catalog::built_in();
        let face = Backdrop::from_rgba(2, 2, vec![200; 16]).unwrap();
        catalog.add_portrait("Anika", face.clone());
        let p =
            super::read(&json!({"type": "photo-avatar", "character": "anika", "model": "vasa-1"}), &catalog).unwrap();
        assert_eq!(p.portrait, Portrait::Installed(Arc::new(face)));
        // photo_url wins over an installed portrait; an unknown name lists the installed ones.
        let url = json!({"type": "photo-avatar", "character": "anika", "photo_url": "https://example.com/me.png"});
        assert!(matches!(super::read(&url, &catalog).unwrap().portrait, Portrait::Url(_)));
        let e = super::read(&json!({"type": "photo-avatar", "character": "sakura"}), &catalog).unwrap_err();
        assert!(e.1.contains("anika"), "{}", e.1);
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let bad = |avatar: Value| read(&avatar).unwrap_err().0;
        let base = |extra: Value| {
            let mut a = json!({"type": "photo-avatar", "photo_url": "https://example.com/me.jpg"});
            a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            a
        };
        assert_eq!(bad(base(json!({"photo_url": "file:///me.jpg"}))), "session.avatar.photo_url");
        assert_eq!(bad(base(json!({"scene": {"position_x": 3}}))), "session.avatar.scene.position_x");
        assert_eq!(bad(base(json!({"scene": {"rotation_y": "left"}}))), "session.avatar.scene.rotation_y");
        assert_eq!(bad(base(json!({"scene": {"amplitude": 2}}))), "session.avatar.scene.amplitude");
        assert_eq!(bad(base(json!({"photo_mouth": {"width": 0.9}}))), "session.avatar.photo_mouth.width");
        assert_eq!(bad(base(json!({"scene": []}))), "session.avatar.scene");
    }
}
