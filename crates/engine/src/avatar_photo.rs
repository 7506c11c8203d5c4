//! The photo avatar as a session asks for it (`avatar.type: "photo-avatar"`): the portrait to
//! animate (`photo_url`: an http(s) or data: URL of a PNG or JPEG; or, without it, the server's
//! portrait that `character` names), where its mouth is and Voice Live's `scene` controls (both
//! read by `brazen_protocol::avatar`).

use brazen_avatar::character::Catalog;
use brazen_avatar::{Backdrop, MouthSpot, Scene};
use brazen_protocol::error::code;
use brazen_protocol::{AvatarConfig, ProtocolError};
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

/// A photo avatar's settings from its configuration; `catalog` has the server's portraits.
pub fn read(avatar: &AvatarConfig, catalog: &Catalog) -> Result<PhotoAvatar, ProtocolError> {
    let installed = avatar.character.as_deref().and_then(|c| catalog.portrait(c));
    let portrait = match (&avatar.photo_url, installed) {
        (Some(url), _) => Portrait::Url(url.clone()),
        (None, Some(installed)) => Portrait::Installed(installed),
        (None, None) => {
            let installed = catalog.portrait_names();
            let choice = if installed.is_empty() {
                "this server has none installed (PNG or JPEG files in its characters folder)".to_owned()
            } else {
                format!("this server has {}", installed.join(", "))
            };
            return Err(ProtocolError::invalid(
                code::INVALID_VALUE,
                format!(
                    "A photo avatar needs a portrait: set 'photo_url' to an http(s) or data:image/… URL of a PNG or JPEG (a centred head-and-shoulders photo; 'photo_mouth' says where the mouth is when it is elsewhere), or name one of the server's portraits in 'character' ({choice})."
                ),
            )
            .with_param("session.avatar.photo_url"));
        }
    };
    Ok(PhotoAvatar { portrait, mouth: avatar.photo_mouth, scene: avatar.scene })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn config(v: Value) -> AvatarConfig {
        AvatarConfig::read(&v, "session.avatar").unwrap()
    }

    #[test]
    fn a_photo_avatar_needs_a_portrait() {
        let e = read(&config(json!({"type": "photo-avatar", "character": "anika"})), &Catalog::built_in()).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.avatar.photo_url"));
        assert!(e.message.contains("none installed"), "{}", e.message);
        let p = read(
            &config(
                json!({"type": "photo-avatar", "photo_url": "data:image/png;base64,AAAA", "photo_mouth": {"y": 0.7}}),
            ),
            &Catalog::built_in(),
        )
        .unwrap();
        assert_eq!(p.portrait, Portrait::Url("data:image/png;base64,AAAA".into()));
        assert_eq!(p.mouth.y, 0.7);
    }

    #[test]
    fn a_character_can_name_an_installed_portrait() {
        let mut catalog = Catalog::built_in();
        let face = Backdrop::from_rgba(2, 2, vec![200; 16]).unwrap();
        catalog.add_portrait("Anika", face.clone());
        let p =
            read(&config(json!({"type": "photo-avatar", "character": "anika", "model": "vasa-1"})), &catalog).unwrap();
        assert_eq!(p.portrait, Portrait::Installed(Arc::new(face)));
        // photo_url wins over an installed portrait; an unknown name lists the installed ones.
        let url =
            config(json!({"type": "photo-avatar", "character": "anika", "photo_url": "https://example.com/me.png"}));
        assert!(matches!(read(&url, &catalog).unwrap().portrait, Portrait::Url(_)));
        let e = read(&config(json!({"type": "photo-avatar", "character": "sakura"})), &catalog).unwrap_err();
        assert!(e.message.contains("anika"), "{}", e.message);
    }
}
