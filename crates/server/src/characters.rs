//! The avatar characters the server offers: the built-in ones, plus every `*.toml` in the
//! configured characters folder (a file with a built-in name replaces it), and the photo
//! avatars' portraits: every `*.png` / `*.jpg` there, named by its file name (`anika.jpg` is the
//! photo avatar `anika`).

use brazen_avatar::Backdrop;
use brazen_avatar::character::{Catalog, Character};
use std::path::Path;

/// The catalog; a folder that cannot be read or a description that does not parse stops the
/// server with a message naming the file.
pub fn load(dir: Option<&Path>) -> Result<Catalog, String> {
    let mut catalog = Catalog::built_in();
    let Some(dir) = dir else { return Ok(catalog) };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the characters folder {}: {e} (characters_dir)", dir.display()))?;
    let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for path in files {
        let extension = path.extension().and_then(|x| x.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        match extension.as_str() {
            "toml" => {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let character = Character::from_toml(&path.display().to_string(), &text)?;
                tracing::info!("avatar character {} from {}", character.name, path.display());
                catalog.add(character);
            }
            "png" | "jpg" | "jpeg" => {
                let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let portrait = Backdrop::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                tracing::info!("photo avatar portrait {name} from {}", path.display());
                catalog.add_portrait(name, portrait);
            }
            _ => {}
        }
    }
    Ok(catalog)
}
