//! Characters are data: a TOML description per character (its looks per style, and the Azure
//! stock avatars it stands in for), loaded at start-up. brazen ships four
//! (`characters/*.toml`); a designer adds one by dropping a file in the characters folder.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The built-in characters' descriptions.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("ava.toml", include_str!("../characters/ava.toml")),
    ("mira.toml", include_str!("../characters/mira.toml")),
    ("noah.toml", include_str!("../characters/noah.toml")),
    ("leo.toml", include_str!("../characters/leo.toml")),
];

pub use brazen_protocol::avatar::Rgba;

/// How the hair is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HairStyle {
    /// Long, past the shoulders.
    Long,
    /// Tied up in a bun.
    Bun,
    /// Short and curly, full.
    Curly,
    /// Short.
    Short,
    /// Shaved close.
    Shaved,
}

/// What is worn on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopStyle {
    /// A round-necked sweater.
    Sweater,
    /// A collared shirt.
    Shirt,
    /// A blazer over a shirt.
    Blazer,
}

/// One style of a character: everything the renderer needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Look {
    /// Skin.
    pub skin: Rgba,
    /// Hair.
    pub hair: Rgba,
    /// The haircut.
    pub hair_style: HairStyle,
    /// Eyebrows.
    pub brows: Rgba,
    /// Irises.
    pub eyes: Rgba,
    /// Lips.
    pub lips: Rgba,
    /// A beard, if any.
    #[serde(default)]
    pub beard: Option<Rgba>,
    /// Glasses frames, if any.
    #[serde(default)]
    pub glasses: Option<Rgba>,
    /// The garment on top.
    pub top: Rgba,
    /// Its cut.
    pub top_style: TopStyle,
    /// The shirt under a blazer, or a shirt's collar.
    #[serde(default)]
    pub shirt: Option<Rgba>,
}

/// A character as described in its file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Character {
    /// Its name (what `avatar.character` says).
    pub name: String,
    /// Who it is, in words.
    pub description: String,
    /// Azure stock avatars it stands in for.
    #[serde(default)]
    pub azure: Vec<String>,
    /// Azure style names and the style of this character each becomes.
    #[serde(default)]
    pub azure_styles: BTreeMap<String, String>,
    /// Its styles by name.
    pub styles: BTreeMap<String, Look>,
}

impl Character {
    /// Reads a character description (`file` names it in errors).
    pub fn from_toml(file: &str, text: &str) -> Result<Character, String> {
        let c: Character = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        if c.styles.is_empty() {
            return Err(format!("{file}: a character needs at least one style"));
        }
        for (azure, ours) in &c.azure_styles {
            if !c.styles.contains_key(ours) {
                return Err(format!("{file}: azure style {azure:?} becomes {ours:?}, which is not one of its styles"));
            }
        }
        Ok(c)
    }
}

/// The characters a server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    characters: Vec<Character>,
    /// Photo avatars' portraits by name (lower case).
    portraits: Vec<(String, std::sync::Arc<crate::Backdrop>)>,
}

/// A character and style chosen for a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// The character's own name.
    pub character: String,
    /// The style's own name.
    pub style: String,
    /// How it looks.
    pub look: Look,
}

impl Catalog {
    /// The built-in characters.
    pub fn built_in() -> Catalog {
        let characters = BUILT_IN
            .iter()
            .map(|(file, text)| Character::from_toml(file, text).unwrap_or_else(|e| panic!("built-in character: {e}")))
            .collect();
        Catalog { characters, portraits: Vec::new() }
    }

    /// Adds (or replaces, by name) a character.
    pub fn add(&mut self, c: Character) {
        self.characters.retain(|o| o.name != c.name);
        self.characters.push(c);
    }

    /// Adds a photo avatar's portrait under `name` (replacing one of the same name).
    pub fn add_portrait(&mut self, name: &str, portrait: crate::Backdrop) {
        let name = name.to_ascii_lowercase();
        self.portraits.retain(|(n, _)| *n != name);
        self.portraits.push((name, std::sync::Arc::new(portrait)));
    }

    /// The portrait named `name` (case-insensitive), if the server has one.
    pub fn portrait(&self, name: &str) -> Option<std::sync::Arc<crate::Backdrop>> {
        let name = name.to_ascii_lowercase();
        self.portraits.iter().find(|(n, _)| *n == name).map(|(_, p)| p.clone())
    }

    /// The names of the portraits.
    pub fn portrait_names(&self) -> Vec<String> {
        self.portraits.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The characters.
    pub fn characters(&self) -> &[Character] {
        &self.characters
    }

    /// The look for `character` and `style` (`None`: the character's first style). Names are
    /// brazen's own or Azure's stock avatars (`lisa` / `casual-sitting` …), case-insensitive.
    /// The error lists what is valid.
    pub fn choose(&self, character: &str, style: Option<&str>) -> Result<Chosen, String> {
        let wanted = character.to_ascii_lowercase();
        let Some(c) = self
            .characters
            .iter()
            .find(|c| c.name == wanted)
            .or_else(|| self.characters.iter().find(|c| c.azure.contains(&wanted)))
        else {
            return Err(format!(
                "avatar character {character:?} is not available; choose one of: {}",
                self.names().join(", ")
            ));
        };
        let style_name = match style.map(str::to_ascii_lowercase) {
            None => c.styles.keys().next().cloned().unwrap_or_default(),
            Some(s) if c.styles.contains_key(&s) => s,
            Some(s) => match c.azure_styles.get(&s) {
                Some(ours) if wanted != c.name => ours.clone(),
                _ => {
                    let mut valid: Vec<&str> = c.styles.keys().map(String::as_str).collect();
                    if wanted != c.name {
                        valid.extend(c.azure_styles.keys().map(String::as_str));
                    }
                    return Err(format!(
                        "avatar style {s:?} is not available for {character:?}; choose one of: {}",
                        valid.join(", ")
                    ));
                }
            },
        };
        let look = c.styles[&style_name].clone();
        Ok(Chosen { character: c.name.clone(), style: style_name, look })
    }

    /// Every valid `character` name: brazen's, then Azure's.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.characters.iter().map(|c| c.name.clone()).collect();
        names.extend(self.characters.iter().flat_map(|c| c.azure.iter().cloned()));
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_characters_have_two_styles_each() {
        let catalog = Catalog::built_in();
        assert!(catalog.characters().len() >= 3);
        for c in catalog.characters() {
            assert!(c.styles.len() >= 2, "{}", c.name);
        }
    }

    #[test]
    fn azure_stock_avatars_map_to_a_character_of_matching_description() {
        let catalog = Catalog::built_in();
        let pick = |c: &str, s: Option<&str>| catalog.choose(c, s).map(|c| (c.character, c.style));
        assert_eq!(pick("lisa", Some("casual-sitting")), Ok(("ava".into(), "casual".into())));
        assert_eq!(pick("Lisa", Some("graceful-standing")), Ok(("ava".into(), "business".into())));
        for (azure, styles) in [
            ("harry", &["business", "casual", "youthful"][..]),
            ("jeff", &["business", "formal"]),
            ("lori", &["casual", "graceful", "formal"]),
            ("max", &["business", "casual", "formal"]),
            ("meg", &["formal", "casual", "business"]),
        ] {
            for s in styles {
                assert!(pick(azure, Some(s)).is_ok(), "{azure} {s}: {:?}", pick(azure, Some(s)));
            }
        }
        assert_eq!(pick("harry", None).unwrap().0, "noah");
        assert_eq!(pick("ava", Some("business")), Ok(("ava".into(), "business".into())));
    }

    #[test]
    fn unknown_names_are_an_error_listing_the_valid_ones() {
        let catalog = Catalog::built_in();
        let e = catalog.choose("bob", None).unwrap_err();
        assert!(e.contains("\"bob\"") && e.contains("ava") && e.contains("lisa"), "{e}");
        let e = catalog.choose("lisa", Some("sporty")).unwrap_err();
        assert!(e.contains("sporty") && e.contains("casual-sitting") && e.contains("business"), "{e}");
    }

    #[test]
    fn a_bad_description_is_a_clear_error() {
        let e = Character::from_toml("x.toml", "name = \"x\"\ndescription = \"d\"\n[styles.a]\nskin = \"red\"")
            .unwrap_err();
        assert!(e.starts_with("x.toml") && e.contains("#RRGGBB"), "{e}");
        let e = Character::from_toml("y.toml", "name = \"y\"\ndescription = \"d\"\nstyles = {}").unwrap_err();
        assert!(e.contains("at least one style"), "{e}");
        assert_eq!(Rgba::parse("#00FF0080"), Ok(Rgba([0, 255, 0, 128])));
    }
}
