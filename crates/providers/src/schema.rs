//! Checks a tool call's arguments against the tool's JSON Schema before the tool runs, so a bad
//! call gets a precise error the model can act on ("`quantity` must be an integer, got "two"")
//! instead of reaching the tool.
//!
//! The subset checked is the one tool schemas use: `type` (one or a list), `properties`,
//! `required`, `additionalProperties: false`, `enum`, `const`, `minimum` / `maximum` /
//! `exclusiveMinimum` / `exclusiveMaximum`, `minLength` / `maxLength`, `items`, `minItems` /
//! `maxItems`, `anyOf` / `oneOf`. Other keywords (`pattern`, `format`, `$ref`, …) are not
//! checked: the tool itself must still treat its arguments as untrusted.

use serde_json::Value;

/// Parses `arguments` (a call's JSON text) and checks it against `schema`. The error names the
/// argument at fault and what was expected.
pub fn check_arguments(schema: &Value, arguments: &str) -> Result<Value, String> {
    let text = if arguments.trim().is_empty() { "{}" } else { arguments };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("The arguments are not valid JSON ({e}); send a JSON object."))?;
    if !value.is_object() {
        return Err("The arguments must be a JSON object.".into());
    }
    validate(schema, &value, "")?;
    Ok(value)
}

/// Checks `value` against `schema`; `path` names `value` in messages (empty: the arguments).
pub fn validate(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(s) = schema.as_object() else { return Ok(()) };
    let name = if path.is_empty() { "the arguments".to_owned() } else { format!("'{path}'") };
    if let Some(ty) = s.get("type") {
        let allowed: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| has_type(value, t)) {
            return Err(format!("{name} must be {}, got {}.", allowed.join(" or "), show(value)));
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let list: Vec<String> = options.iter().map(show).collect();
        return Err(format!("{name} must be one of {}, got {}.", list.join(", "), show(value)));
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        return Err(format!("{name} must be {}, got {}.", show(c), show(value)));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = s.get(key).and_then(Value::as_array) {
            let errors: Vec<String> = options.iter().filter_map(|o| validate(o, value, path).err()).collect();
            if errors.len() == options.len() && !options.is_empty() {
                return Err(errors.join(" Or: "));
            }
        }
    }
    match value {
        Value::Object(map) => {
            if let Some(required) = s.get("required").and_then(Value::as_array) {
                for key in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(key) {
                        return Err(format!("{} is required but missing.", quote(&join(path, key))));
                    }
                }
            }
            let properties = s.get("properties").and_then(Value::as_object);
            for (key, v) in map {
                match properties.and_then(|p| p.get(key)) {
                    Some(sub) => validate(sub, v, &join(path, key))?,
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        let known: Vec<&str> =
                            properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                        return Err(format!(
                            "{} is not an argument of this tool (it takes: {}).",
                            quote(&join(path, key)),
                            known.join(", ")
                        ));
                    }
                    None => {}
                }
            }
        }
        Value::Array(list) => {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (list.len() as u64) < min
            {
                return Err(format!("{name} must have at least {min} items."));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && (list.len() as u64) > max
            {
                return Err(format!("{name} must have at most {max} items."));
            }
            if let Some(items) = s.get("items") {
                for (i, v) in list.iter().enumerate() {
                    validate(items, v, &format!("{path}[{i}]"))?;
                }
            }
        }
        Value::String(text) => {
            let chars = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && chars < min
            {
                return Err(format!("{name} must be at least {min} characters long."));
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && chars > max
            {
                return Err(format!("{name} must be at most {max} characters long."));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let bound = |key: &str| s.get(key).and_then(Value::as_f64);
            if let Some(min) = bound("minimum")
                && x < min
            {
                return Err(format!("{name} must be at least {min}, got {x}."));
            }
            if let Some(max) = bound("maximum")
                && x > max
            {
                return Err(format!("{name} must be at most {max}, got {x}."));
            }
            if let Some(min) = bound("exclusiveMinimum")
                && x <= min
            {
                return Err(format!("{name} must be more than {min}, got {x}."));
            }
            if let Some(max) = bound("exclusiveMaximum")
                && x >= max
            {
                return Err(format!("{name} must be less than {max}, got {x}."));
            }
        }
        _ => {}
    }
    Ok(())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn quote(path: &str) -> String {
    format!("'{path}'")
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|x| x.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    }
}

/// A value as the model wrote it, shortened.
fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}…", text.chars().take(60).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order_schema() -> Value {
        json!({"type": "object", "properties": {
            "product_id": {"type": "string", "minLength": 1},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
            "size": {"type": "string", "enum": ["S", "M", "L"]}
        }, "required": ["product_id", "quantity"], "additionalProperties": false})
    }

    #[test]
    fn a_good_call_passes_and_is_parsed() {
        let v = check_arguments(&order_schema(), r#"{"product_id": "P001", "quantity": 2}"#).unwrap();
        assert_eq!(v["quantity"], 2);
        assert!(check_arguments(&json!({"type": "object"}), "").is_ok(), "no arguments is an empty object");
    }

    #[test]
    fn each_fault_is_named() {
        let s = order_schema();
        let cases = [
            (r#"{"product_id": "P001"}"#, "'quantity' is required but missing."),
            (r#"{"product_id": "P001", "quantity": "two"}"#, "'quantity' must be integer, got \"two\"."),
            (r#"{"product_id": "P001", "quantity": 2.5}"#, "'quantity' must be integer, got 2.5."),
            (r#"{"product_id": "P001", "quantity": 0}"#, "'quantity' must be at least 1, got 0."),
            (r#"{"product_id": "P001", "quantity": 1, "size": "XL"}"#, "'size' must be one of \"S\", \"M\", \"L\""),
            (r#"{"product_id": "P001", "quantity": 1, "colour": "red"}"#, "'colour' is not an argument"),
            (r#"{"product_id": "", "quantity": 1}"#, "'product_id' must be at least 1 characters long."),
            (r#"[1]"#, "must be a JSON object"),
            (r#"{"product_id": "P0"#, "not valid JSON"),
        ];
        for (args, expected) in cases {
            let e = check_arguments(&s, args).unwrap_err();
            assert!(e.contains(expected), "{args}: {e}");
        }
    }

    #[test]
    fn nested_arrays_and_alternatives() {
        let s = json!({"type": "object", "properties": {"lines": {"type": "array", "minItems": 1,
            "items": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
            "when": {"anyOf": [{"type": "string"}, {"type": "null"}]}}});
        assert!(check_arguments(&s, r#"{"lines": [{"id": "a"}], "when": null}"#).is_ok());
        let e = check_arguments(&s, r#"{"lines": [{"id": "a"}, {}]}"#).unwrap_err();
        assert!(e.contains("'lines[1].id' is required"), "{e}");
        let e = check_arguments(&s, r#"{"lines": []}"#).unwrap_err();
        assert!(e.contains("at least 1 items"), "{e}");
        assert!(check_arguments(&s, r#"{"when": 3}"#).is_err());
    }
}
