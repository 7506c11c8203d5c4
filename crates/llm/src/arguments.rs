//! Checks on a call's arguments before it leaves the model: ids written the way systems store
//! them (`ord_555` → `ORD_555`, `a b 12` → `AB12`), and optional numbers the user never said
//! dropped (a small model likes to add `"max_price": 100` to "what boots do you sell").

use serde_json::{Map, Value};

/// Whether a property holds an identifier (`id`, `order_id`, `productId`).
fn is_id(key: &str) -> bool {
    key == "id" || key.ends_with("_id") || key.ends_with("Id") || key.ends_with("ID")
}

/// Whether the number `n` appears in `said` as a whole number (not inside a longer one).
fn said_number(said: &str, n: &serde_json::Number) -> bool {
    let text = match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => n.to_string(),
    };
    said.match_indices(&text).any(|(at, m)| {
        let before = said[..at].chars().next_back();
        let after = said[at + m.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Whether every id in the arguments (JSON text) appears in `heard` (what the user said and
/// the tools returned), letters and digits compared case-blind.
pub fn grounded(arguments: &str, heard: &str) -> bool {
    let key = |s: &str| s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_uppercase();
    let heard = key(heard);
    let Ok(Value::Object(args)) = serde_json::from_str::<Value>(arguments) else { return true };
    args.iter().filter(|(k, _)| is_id(k)).all(|(_, v)| {
        let id = match v {
            Value::String(s) => key(s),
            Value::Number(n) => n.to_string(),
            _ => return true,
        };
        id.is_empty() || heard.contains(&id)
    })
}

/// The arguments (JSON text) of a call to a tool with `parameters` (its JSON Schema), after the
/// checks above; `said` is what the user said (numbers as digits). Compact JSON, keys in order.
pub fn normalize(parameters: &Value, arguments: &str, said: &str) -> String {
    let Ok(Value::Object(args)) = serde_json::from_str::<Value>(arguments) else {
        return arguments.to_owned();
    };
    let required: Vec<&str> = parameters
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (key, value) in args {
        match value {
            Value::String(s) if is_id(&key) => {
                out.insert(key, Value::String(s.split_whitespace().collect::<String>().to_uppercase()));
            }
            Value::Number(n) if !required.contains(&key.as_str()) && !said_number(said, &n) => {}
            other => {
                out.insert(key, other);
            }
        }
    }
    serde_json::to_string(&Value::Object(out)).unwrap_or_else(|_| arguments.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_normalised_and_unsaid_optional_numbers_dropped() {
        let params = json!({"type": "object", "properties": {
            "order_id": {"type": "string"}, "max_price": {"type": "number"}, "quantity": {"type": "integer"}
        }, "required": ["order_id", "quantity"]});
        let n = |args: &str, said: &str| normalize(&params, args, said);
        assert_eq!(n(r#"{"order_id": "ord_555", "quantity": 2}"#, "x"), r#"{"order_id":"ORD_555","quantity":2}"#);
        assert_eq!(n(r#"{"order_id": "ab 12", "quantity": 1}"#, ""), r#"{"order_id":"AB12","quantity":1}"#);
        assert_eq!(
            n(r#"{"order_id": "1", "max_price": 100, "quantity": 1}"#, "boots under 100 dollars"),
            r#"{"order_id":"1","max_price":100,"quantity":1}"#
        );
        assert_eq!(
            n(r#"{"order_id": "1", "max_price": 100, "quantity": 1}"#, "what boots do you sell for 1000"),
            r#"{"order_id":"1","quantity":1}"#,
            "100 was never said (1000 was)"
        );
        assert_eq!(
            n(r#"{"order_id": "1", "max_price": 64.5, "quantity": 3}"#, "under 64.5"),
            r#"{"order_id":"1","max_price":64.5,"quantity":3}"#
        );
        assert_eq!(n("not json", ""), "not json");
    }

    #[test]
    fn ids_must_come_from_the_conversation() {
        let heard = "where is my order QX98\n{\"order_id\": \"ORD3005\"} product 311";
        assert!(grounded(r#"{"order_id": "qx-98"}"#, heard));
        assert!(grounded(r#"{"order_id": "ORD3005", "address": "anything"}"#, heard));
        assert!(grounded(r#"{"product_id": 311, "quantity": 2}"#, heard));
        assert!(!grounded(r#"{"order_id": "12345"}"#, heard));
        assert!(!grounded(r#"{"product_id": 1234}"#, heard));
    }
}
