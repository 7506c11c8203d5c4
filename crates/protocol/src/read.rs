//! Tolerant, precise reading of JSON objects.
//!
//! Client events are read field by field rather than through one derived struct, so that every
//! mistake is reported with the dotted path of the field (`session.turn_detection.threshold`),
//! unknown fields are ignored, and an explicit `null` can be told apart from an absent field.

use crate::error::{ProtocolError, code};
use serde_json::{Map, Value};

/// A field as the client sent it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<T> {
    /// The key is not there.
    #[default]
    Absent,
    /// The key is there with the value `null`: the client unsets the field.
    Null,
    /// The key holds a value.
    Set(T),
}

impl<T> Field<T> {
    /// The value, treating `null` like an absent field.
    pub fn value(self) -> Option<T> {
        match self {
            Field::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Maps the value inside.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Absent => Field::Absent,
            Field::Null => Field::Null,
            Field::Set(v) => Field::Set(f(v)),
        }
    }

    /// Applies the field to a slot: absent keeps it, `null` resets it to `reset`, a value sets it.
    pub fn apply_to(self, slot: &mut T, reset: impl FnOnce() -> T) {
        match self {
            Field::Absent => {}
            Field::Null => *slot = reset(),
            Field::Set(v) => *slot = v,
        }
    }

    /// Applies an optional field: absent keeps it, `null` clears it, a value sets it.
    pub fn apply_option(self, slot: &mut Option<T>) {
        match self {
            Field::Absent => {}
            Field::Null => *slot = None,
            Field::Set(v) => *slot = Some(v),
        }
    }
}

/// A JSON object being read, with its path for error messages.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

/// Joins a path and a key: `("session", "voice")` → `session.voice`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The error for a value of the wrong JSON type.
pub fn wrong_type(param: &str, expected: &str, got: &Value) -> ProtocolError {
    ProtocolError::invalid(
        code::INVALID_TYPE,
        format!("Invalid type for '{param}': expected {expected}, got {}.", json_kind(got)),
    )
    .with_param(param)
}

/// The error for a value outside the allowed set or range.
pub fn bad_value(param: &str, message: impl Into<String>) -> ProtocolError {
    ProtocolError::invalid(code::INVALID_VALUE, message).with_param(param)
}

impl<'a> Obj<'a> {
    /// Wraps an object found at `path`.
    pub fn new(map: &'a Map<String, Value>, path: &'a str) -> Self {
        Obj { map, path }
    }

    /// Reads `value` at `path` as an object.
    pub fn expect(value: &'a Value, path: &'a str) -> Result<Self, ProtocolError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(wrong_type(path, "an object", other)),
        }
    }

    /// The path of this object.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The dotted path of one of its keys.
    pub fn param(&self, key: &str) -> String {
        join(self.path, key)
    }

    /// The raw value of a key (`None` for absent; `Some(Null)` for an explicit null).
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// All key/value pairs of the object.
    pub fn raw_map(&self) -> serde_json::map::Iter<'a> {
        self.map.iter()
    }

    /// Whether the key is present (even as `null`).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Reads a field with a converter that sees the non-null value.
    pub fn field<T>(
        &self,
        key: &str,
        read: impl FnOnce(&'a Value, &str) -> Result<T, ProtocolError>,
    ) -> Result<Field<T>, ProtocolError> {
        match self.map.get(key) {
            None => Ok(Field::Absent),
            Some(Value::Null) => Ok(Field::Null),
            Some(v) => read(v, &self.param(key)).map(Field::Set),
        }
    }

    /// A string field.
    pub fn str(&self, key: &str) -> Result<Field<&'a str>, ProtocolError> {
        self.field(key, as_str)
    }

    /// A string field that must be present.
    pub fn required_str(&self, key: &str) -> Result<&'a str, ProtocolError> {
        self.str(key)?.value().ok_or_else(|| self.missing(key))
    }

    /// A boolean field.
    pub fn bool(&self, key: &str) -> Result<Field<bool>, ProtocolError> {
        self.field(key, |v, p| v.as_bool().ok_or_else(|| wrong_type(p, "a boolean", v)))
    }

    /// A number field; numbers written as strings (`"1.0"`) are accepted too.
    pub fn f64(&self, key: &str) -> Result<Field<f64>, ProtocolError> {
        self.field(key, as_f64)
    }

    /// A non-negative integer field.
    pub fn u64(&self, key: &str) -> Result<Field<u64>, ProtocolError> {
        self.field(key, as_u64)
    }

    /// A nested object field.
    pub fn obj(&self, key: &str) -> Result<Field<&'a Map<String, Value>>, ProtocolError> {
        self.field(key, |v, p| v.as_object().ok_or_else(|| wrong_type(p, "an object", v)))
    }

    /// An array of strings.
    pub fn strings(&self, key: &str) -> Result<Field<Vec<String>>, ProtocolError> {
        self.field(key, |v, p| {
            let arr = v.as_array().ok_or_else(|| wrong_type(p, "an array of strings", v))?;
            arr.iter().enumerate().map(|(i, s)| as_str(s, &format!("{p}[{i}]")).map(str::to_owned)).collect()
        })
    }

    /// The error for a required field that is absent or null.
    pub fn missing(&self, key: &str) -> ProtocolError {
        let param = self.param(key);
        ProtocolError::invalid(code::MISSING_REQUIRED_PARAMETER, format!("Missing required parameter: '{param}'."))
            .with_param(param)
    }
}

/// Reads a string.
pub fn as_str<'a>(v: &'a Value, param: &str) -> Result<&'a str, ProtocolError> {
    v.as_str().ok_or_else(|| wrong_type(param, "a string", v))
}

/// Reads a number, accepting a numeric string.
pub fn as_f64(v: &Value, param: &str) -> Result<f64, ProtocolError> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| wrong_type(param, "a number", v)),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| bad_value(param, format!("Invalid value for '{param}': '{s}' is not a number."))),
        _ => Err(wrong_type(param, "a number", v)),
    }
}

/// Reads a non-negative integer (a whole float such as `500.0` is accepted).
pub fn as_u64(v: &Value, param: &str) -> Result<u64, ProtocolError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(x) if x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 => Ok(x as u64),
        Some(_) => Err(bad_value(param, format!("Invalid value for '{param}': expected a non-negative integer."))),
        None => Err(wrong_type(param, "an integer", v)),
    }
}

/// Checks that a number lies in `[lo, hi]`.
pub fn in_range(x: f64, lo: f64, hi: f64, param: &str) -> Result<f64, ProtocolError> {
    if (lo..=hi).contains(&x) {
        Ok(x)
    } else {
        Err(bad_value(param, format!("Invalid value for '{param}': {x} is outside [{lo}, {hi}].")))
    }
}

/// Checks that a string is one of `allowed`.
pub fn one_of<'a>(s: &'a str, allowed: &[&str], param: &str) -> Result<&'a str, ProtocolError> {
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(bad_value(
            param,
            format!("Invalid value for '{param}': '{s}'. Supported values are: {}.", allowed.join(", ")),
        ))
    }
}
