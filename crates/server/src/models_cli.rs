//! `brazen models list` and `brazen models install`.

use brazen_models::{Manifest, ModelSpec, Status, Store};
use std::path::PathBuf;

/// Prints every model of the manifest with its state, size and licence.
pub fn list(dir: Option<PathBuf>) -> Result<(), String> {
    let store = Store::new(dir.unwrap_or_else(Store::default_root));
    let manifest = Manifest::builtin();
    println!("models in {}", store.root().display());
    println!("{:<24} {:<8} {:<10} {:>9}  {:<26} description", "name", "kind", "state", "size", "licence");
    for m in &manifest.models {
        let state = match store.status(m) {
            Status::Installed => "installed".to_owned(),
            Status::Missing => "missing".to_owned(),
            Status::Damaged(_) => "damaged".to_owned(),
        };
        let default = if m.default { " (default)" } else { "" };
        println!(
            "{:<24} {:<8} {:<10} {:>7.1}MB  {:<26} {}{default}",
            m.name,
            m.kind,
            state,
            m.installed_size() as f64 / 1e6,
            m.licence,
            m.description
        );
    }
    Ok(())
}

/// Installs the named models (or the default set), with progress bars on a terminal.
pub fn install(only: &[String], all: bool, dir: Option<PathBuf>) -> Result<(), String> {
    let store = Store::new(dir.unwrap_or_else(Store::default_root));
    let manifest = Manifest::builtin();
    let chosen: Vec<&ModelSpec> = if !only.is_empty() {
        only.iter()
            .map(|name| manifest.get(name).ok_or_else(|| brazen_models::ModelError::Unknown(name.clone()).to_string()))
            .collect::<Result<_, _>>()?
    } else if all {
        manifest.models.iter().collect()
    } else {
        manifest.defaults().collect()
    };
    let progress = brazen_models::progress();
    for model in chosen {
        if store.status(model) == Status::Installed {
            eprintln!("{}: already installed", model.name);
            continue;
        }
        eprintln!("{}: installing ({:.1} MB, {})", model.name, model.size() as f64 / 1e6, model.licence);
        let dir = store.install(model, &progress).map_err(|e| format!("installing {} failed: {e}", model.name))?;
        eprintln!("{}: installed in {}", model.name, dir.display());
    }
    Ok(())
}
