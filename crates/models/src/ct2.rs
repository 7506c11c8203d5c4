//! Reading CTranslate2 model files (`model.bin`), the format faster-whisper's models ship in.
//!
//! Layout (little-endian): `u32` binary version, string spec name, `u32` spec revision, `u32`
//! variable count, then per variable: string name, `u8` rank, `u32` dims × rank, `u8` dtype,
//! `u32` byte count, the bytes; then `u32` alias count and (alias, target) string pairs. Strings
//! are a `u16` length that counts a trailing NUL, then the bytes.

use std::collections::HashMap;

/// Element type of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit integer (quantized weights).
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One variable: its shape, type and raw bytes (a range of the file).
#[derive(Debug, Clone)]
pub struct Variable {
    /// Dimensions, outermost first (empty for a scalar).
    pub dims: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    range: std::ops::Range<usize>,
}

impl Variable {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed `model.bin`: the bytes and an index of the variables in them.
pub struct Ct2Model {
    /// The spec the model follows (`WhisperSpec`).
    pub spec: String,
    bytes: Vec<u8>,
    vars: HashMap<String, Variable>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<std::ops::Range<usize>, String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("the file ends early (needed {n} bytes at offset {})", self.at))?;
        let range = self.at..end;
        self.at = end;
        Ok(range)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes[self.take(1)?.start])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let r = self.take(2)?;
        Ok(u16::from_le_bytes(self.bytes[r].try_into().expect("two bytes")))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let r = self.take(4)?;
        Ok(u32::from_le_bytes(self.bytes[r].try_into().expect("four bytes")))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let r = self.take(n)?;
        let raw = &self.bytes[r];
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| format!("a name at offset {} is not UTF-8", self.at))
    }
}

impl Ct2Model {
    /// Parses a `model.bin` held in memory.
    pub fn parse(bytes: Vec<u8>) -> Result<Ct2Model, String> {
        let mut r = Reader { bytes: &bytes, at: 0 };
        let version = r.u32()?;
        if !(5..=6).contains(&version) {
            return Err(format!("unsupported CTranslate2 binary version {version} (5 or 6 expected)"));
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let count = r.u32()? as usize;
        let mut vars = HashMap::with_capacity(count);
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8()? as usize;
            let dims = (0..rank).map(|_| r.u32().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
            let code = r.u8()?;
            let dtype = DType::from_code(code).ok_or_else(|| format!("variable {name} has unknown dtype {code}"))?;
            let nbytes = r.u32()? as usize;
            let elements: usize = dims.iter().product();
            if elements * dtype.size() != nbytes {
                return Err(format!("variable {name}: {nbytes} bytes do not hold {dims:?} of {dtype:?}"));
            }
            let range = r.take(nbytes)?;
            vars.insert(name, Variable { dims, dtype, range });
        }
        let aliases = r.u32()?;
        for _ in 0..aliases {
            let alias = r.string()?;
            let target = r.string()?;
            if let Some(v) = vars.get(&target).cloned() {
                vars.insert(alias, v);
            }
        }
        Ok(Ct2Model { spec, bytes, vars })
    }

    /// The variable with this name.
    pub fn var(&self, name: &str) -> Result<&Variable, String> {
        self.vars.get(name).ok_or_else(|| format!("the model has no variable {name}"))
    }

    /// Whether a variable exists.
    pub fn has(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// The raw bytes of a variable.
    pub fn raw(&self, var: &Variable) -> &[u8] {
        &self.bytes[var.range.clone()]
    }

    /// A variable's values as f32 (from f32, f16 or bf16).
    pub fn f32(&self, name: &str) -> Result<Vec<f32>, String> {
        let var = self.var(name)?;
        let raw = self.raw(var);
        Ok(match var.dtype {
            DType::F32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect(),
            DType::F16 => raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            DType::Bf16 => raw.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            other => {
                return Err(format!("variable {name} is {other:?}, not a float (quantized models are not supported)"));
            }
        })
    }

    /// A scalar integer variable (such as `encoder/num_heads`).
    pub fn int(&self, name: &str) -> Result<i64, String> {
        let var = self.var(name)?;
        let raw = self.raw(var);
        match (var.dtype, raw.len()) {
            (DType::I8, 1) => Ok(i64::from(raw[0] as i8)),
            (DType::I16, 2) => Ok(i64::from(i16::from_le_bytes([raw[0], raw[1]]))),
            (DType::I32, 4) => Ok(i64::from(i32::from_le_bytes(raw.try_into().expect("4")))),
            _ => Err(format!("variable {name} is not an integer scalar")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn var(out: &mut Vec<u8>, name: &str, dims: &[u32], dtype: u8, data: &[u8]) {
        string(out, name);
        out.push(dims.len() as u8);
        for d in dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.push(dtype);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }

    #[test]
    fn reads_variables_scalars_and_aliases() {
        let mut b = 6u32.to_le_bytes().to_vec();
        string(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        let halves: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
        var(&mut b, "w", &[1, 2], 4, &halves);
        var(&mut b, "heads", &[], 2, &6i16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "tied");
        string(&mut b, "w");
        let m = Ct2Model::parse(b).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.var("w").unwrap().dims, vec![1, 2]);
        assert_eq!(m.f32("tied").unwrap(), vec![1.5, -2.0]);
        assert_eq!(m.int("heads").unwrap(), 6);
        assert!(m.var("missing").unwrap_err().contains("missing"));
    }

    #[test]
    fn truncated_or_inconsistent_files_are_errors() {
        assert!(Ct2Model::parse(vec![6, 0]).err().unwrap().contains("ends early"));
        let mut b = 6u32.to_le_bytes().to_vec();
        string(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        var(&mut b, "w", &[4], 0, &[0; 8]);
        assert!(Ct2Model::parse(b).err().unwrap().contains("do not hold"));
        assert!(Ct2Model::parse(9u32.to_le_bytes().to_vec()).err().unwrap().contains("version 9"));
    }
}
