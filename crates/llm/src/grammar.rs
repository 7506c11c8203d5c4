//! The grammar a tool call must follow, derived from the tools' JSON Schemas, and a checker
//! that says whether some bytes can still become a valid call.
//!
//! A call is written the way Qwen's chat template renders one (Python `json.dumps` spacing):
//!
//! ```text
//! \n{"name": "<tool>", "arguments": {"<param>": <value>, …}}\n
//! ```
//!
//! Parameters come in their declared order, required ones always, optional ones when the model
//! wants them; enums are spelt out; numbers, integers, booleans, strings, arrays and nested
//! objects follow their schema; a property without a schema takes any JSON value. The checker
//! re-reads the whole call on every step (calls are short), so it needs no state: the decoder
//! offers it the call so far plus a candidate token, and keeps the best-scoring token that
//! leaves the call [`Check::Partial`] or [`Check::Complete`].

use serde_json::Value;

/// The longest free string (bytes) a call may hold: a spoken reply of a few sentences, or an
/// address.
const MAX_STRING: usize = 600;
/// The most digits a number may have.
const MAX_DIGITS: usize = 12;
/// The most items an array may have.
const MAX_ITEMS: usize = 16;

/// What a value must look like.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// An object with these properties, in order.
    Object(Vec<Property>),
    /// Any object (no properties declared).
    AnyObject,
    /// A string (free, or one of these values).
    String(Option<Vec<String>>),
    /// A free string of at most this many characters (`maxLength`; an escape counts as the
    /// characters it is written with).
    Text(usize),
    /// A number; `true` for integers only.
    Number(bool),
    /// `true` or `false`.
    Boolean,
    /// An array of items like this.
    Array(Box<Schema>),
    /// `null`.
    Null,
    /// One of these JSON values (a non-string `enum`).
    Literal(Vec<String>),
    /// Any JSON value.
    Any,
}

/// One property of an object schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Its key.
    pub name: String,
    /// Its value's schema.
    pub schema: Schema,
    /// Whether it must be present.
    pub required: bool,
}

impl Schema {
    /// The schema of a JSON Schema document (the subset tools use: `type`, `properties`,
    /// `required`, `enum`, `items`; anything else is accepted as any value).
    pub fn from_json(v: &Value) -> Schema {
        // An empty `enum` allows nothing; read as any value rather than a key no value can follow.
        if let Some(options) = v.get("enum").and_then(Value::as_array).filter(|o| !o.is_empty()) {
            if options.iter().all(Value::is_string) {
                return Schema::String(Some(options.iter().filter_map(|o| o.as_str().map(str::to_owned)).collect()));
            }
            return Schema::Literal(options.iter().map(python_json).collect());
        }
        let kind = v.get("type").and_then(|t| match t {
            Value::String(s) => Some(s.as_str()),
            Value::Array(a) => a.iter().filter_map(Value::as_str).find(|s| *s != "null"),
            _ => None,
        });
        match kind {
            Some("object") => {
                let required: Vec<&str> = v
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match v.get("properties").and_then(Value::as_object) {
                    Some(props) if !props.is_empty() => Schema::Object(
                        props
                            .iter()
                            .map(|(name, s)| Property {
                                name: name.clone(),
                                schema: Schema::from_json(s),
                                required: required.contains(&name.as_str()),
                            })
                            .collect(),
                    ),
                    Some(_) if v.get("additionalProperties") == Some(&Value::Bool(false)) => Schema::Object(Vec::new()),
                    _ => Schema::AnyObject,
                }
            }
            Some("string") => match v.get("maxLength").and_then(Value::as_u64) {
                Some(max) if (max as usize) < MAX_STRING => Schema::Text(max as usize),
                _ => Schema::String(None),
            },
            Some("number") => Schema::Number(false),
            Some("integer") => Schema::Number(true),
            Some("boolean") => Schema::Boolean,
            Some("array") => Schema::Array(Box::new(v.get("items").map_or(Schema::Any, Schema::from_json))),
            Some("null") => Schema::Null,
            _ => Schema::Any,
        }
    }
}

/// A tool the grammar allows: its name and its arguments' schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolGrammar {
    /// The function's name.
    pub name: String,
    /// Its arguments (an object schema).
    pub arguments: Schema,
}

/// How far some bytes are from a valid call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// They can never become a valid call.
    Invalid,
    /// A valid call's beginning.
    Partial,
    /// A whole valid call.
    Complete,
}

/// Whether `bytes` begin (or are) a call to one of `tools`.
pub fn check(tools: &[ToolGrammar], bytes: &[u8]) -> Check {
    let mut p = Parser { bytes, at: 0 };
    match p.call(tools) {
        Ok(()) if p.at == bytes.len() => Check::Complete,
        Ok(()) => Check::Invalid,
        Err(Stop::End) => Check::Partial,
        Err(Stop::Bad) => Check::Invalid,
    }
}

/// Why parsing stopped early.
enum Stop {
    /// The bytes ran out: what was there is a valid beginning.
    End,
    /// The bytes cannot be part of a valid call.
    Bad,
}

type Parse = Result<(), Stop>;

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Result<u8, Stop> {
        self.bytes.get(self.at).copied().ok_or(Stop::End)
    }

    fn literal(&mut self, lit: &[u8]) -> Parse {
        let rest = &self.bytes[self.at..];
        let n = rest.len().min(lit.len());
        if rest[..n] != lit[..n] {
            return Err(Stop::Bad);
        }
        self.at += n;
        if n < lit.len() { Err(Stop::End) } else { Ok(()) }
    }

    /// One of `options` (raw bytes), when none is a prefix of another followed by more.
    fn one_of(&mut self, options: &[Vec<u8>]) -> Parse {
        let rest = &self.bytes[self.at..];
        if let Some(o) = options.iter().filter(|o| rest.starts_with(o)).max_by_key(|o| o.len()) {
            self.at += o.len();
            return Ok(());
        }
        if options.iter().any(|o| o.starts_with(rest)) {
            self.at = self.bytes.len();
            return Err(Stop::End);
        }
        Err(Stop::Bad)
    }

    fn call(&mut self, tools: &[ToolGrammar]) -> Parse {
        self.literal(b"\n{\"name\": ")?;
        let names: Vec<Vec<u8>> = tools.iter().map(|t| quoted(&t.name).into_bytes()).collect();
        let start = self.at;
        self.one_of(&names)?;
        let name = &self.bytes[start..self.at];
        let tool = tools.iter().find(|t| quoted(&t.name).as_bytes() == name).ok_or(Stop::Bad)?;
        self.literal(b", \"arguments\": ")?;
        match &tool.arguments {
            Schema::Object(_) | Schema::AnyObject => self.value(&tool.arguments)?,
            _ => self.value(&Schema::AnyObject)?,
        }
        self.literal(b"}\n")
    }

    fn value(&mut self, schema: &Schema) -> Parse {
        match schema {
            Schema::Object(props) => self.object(props),
            Schema::AnyObject => self.any_object(),
            Schema::String(None) => self.string(MAX_STRING),
            Schema::Text(max) => self.string(*max),
            Schema::String(Some(options)) => {
                let options: Vec<Vec<u8>> = options.iter().map(|o| quoted(o).into_bytes()).collect();
                self.one_of(&options)
            }
            Schema::Number(integer) => self.number(*integer),
            Schema::Boolean => self.one_of(&[b"true".to_vec(), b"false".to_vec()]),
            Schema::Null => self.literal(b"null"),
            Schema::Literal(options) => {
                let options: Vec<Vec<u8>> = options.iter().map(|o| o.clone().into_bytes()).collect();
                self.one_of(&options)
            }
            Schema::Array(item) => self.array(item),
            Schema::Any => self.any(),
        }
    }

    fn object(&mut self, props: &[Property]) -> Parse {
        self.literal(b"{")?;
        // Index of the next property that may come; properties before it are done or skipped.
        let mut next = 0;
        let mut first = true;
        loop {
            let required_left = props[next..].iter().any(|p| p.required);
            if self.peek()? == b'}' {
                if required_left {
                    return Err(Stop::Bad);
                }
                self.at += 1;
                return Ok(());
            }
            // Allowed keys: the next ones, up to and including the first required one. With
            // none left only the closing brace may come (not a comma that nothing can follow).
            let mut allowed = Vec::new();
            for (i, p) in props.iter().enumerate().skip(next) {
                allowed.push(i);
                if p.required {
                    break;
                }
            }
            if allowed.is_empty() {
                return Err(Stop::Bad);
            }
            if !first {
                self.literal(b", ")?;
            }
            let keys: Vec<Vec<u8>> =
                allowed.iter().map(|i| format!("{}: ", quoted(&props[*i].name)).into_bytes()).collect();
            let start = self.at;
            self.one_of(&keys)?;
            let key = &self.bytes[start..self.at];
            let i = *allowed.iter().find(|i| keys[**i - allowed[0]] == key).ok_or(Stop::Bad)?;
            self.value(&props[i].schema)?;
            next = i + 1;
            first = false;
        }
    }

    fn any_object(&mut self) -> Parse {
        self.literal(b"{")?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.string(MAX_STRING)?;
            self.literal(b": ")?;
            self.any()?;
            match self.peek()? {
                b'}' => {
                    self.at += 1;
                    return Ok(());
                }
                _ => self.literal(b", ")?,
            }
        }
    }

    fn array(&mut self, item: &Schema) -> Parse {
        self.literal(b"[")?;
        if self.peek()? == b']' {
            self.at += 1;
            return Ok(());
        }
        for n in 1.. {
            self.value(item)?;
            match self.peek()? {
                b']' => {
                    self.at += 1;
                    return Ok(());
                }
                _ if n >= MAX_ITEMS => return Err(Stop::Bad),
                _ => self.literal(b", ")?,
            }
        }
        Ok(())
    }

    fn any(&mut self) -> Parse {
        match self.peek()? {
            b'{' => self.any_object(),
            b'[' => self.array(&Schema::Any),
            b'"' => self.string(MAX_STRING),
            b't' | b'f' => self.one_of(&[b"true".to_vec(), b"false".to_vec()]),
            b'n' => self.literal(b"null"),
            _ => self.number(false),
        }
    }

    /// A JSON string of at most `max` characters (bytes other than UTF-8 continuations).
    fn string(&mut self, max: usize) -> Parse {
        self.literal(b"\"")?;
        let mut chars = 0;
        loop {
            let b = self.peek()?;
            let starts_char = b & 0xC0 != 0x80;
            if chars >= max && b != b'"' && starts_char {
                return Err(Stop::Bad);
            }
            chars += starts_char as usize;
            self.at += 1;
            match b {
                b'"' => return Ok(()),
                b'\\' => match self.peek()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                    b'u' => {
                        self.at += 1;
                        for _ in 0..4 {
                            if !self.peek()?.is_ascii_hexdigit() {
                                return Err(Stop::Bad);
                            }
                            self.at += 1;
                        }
                    }
                    _ => return Err(Stop::Bad),
                },
                0..0x20 => return Err(Stop::Bad),
                _ => {}
            }
        }
    }

    fn digits(&mut self) -> Result<usize, Stop> {
        let start = self.at;
        while let Some(b) = self.bytes.get(self.at) {
            if !b.is_ascii_digit() {
                break;
            }
            self.at += 1;
            if self.at - start > MAX_DIGITS {
                return Err(Stop::Bad);
            }
        }
        Ok(self.at - start)
    }

    /// A JSON number. At the end of the bytes it is always a valid beginning (more digits may
    /// follow), so a number is only complete once the byte after it arrives.
    fn number(&mut self, integer: bool) -> Parse {
        if self.peek()? == b'-' {
            self.at += 1;
        }
        let first = self.peek()?;
        if !first.is_ascii_digit() {
            return Err(Stop::Bad);
        }
        let n = self.digits()?;
        if first == b'0' && n > 1 {
            return Err(Stop::Bad);
        }
        let Some(&b) = self.bytes.get(self.at) else { return Err(Stop::End) };
        if b == b'.' && !integer {
            self.at += 1;
            if self.digits()? == 0 {
                return if self.at == self.bytes.len() { Err(Stop::End) } else { Err(Stop::Bad) };
            }
        }
        let Some(&b) = self.bytes.get(self.at) else { return Err(Stop::End) };
        if (b == b'e' || b == b'E') && !integer {
            self.at += 1;
            if matches!(self.peek()?, b'+' | b'-') {
                self.at += 1;
            }
            if self.digits()? == 0 {
                return if self.at == self.bytes.len() { Err(Stop::End) } else { Err(Stop::Bad) };
            }
        }
        if self.at == self.bytes.len() { Err(Stop::End) } else { Ok(()) }
    }
}

/// `s` as a JSON string (quotes and escapes), non-ASCII kept as is.
pub fn quoted(s: &str) -> String {
    python_json(&Value::String(s.to_owned()))
}

/// `v` as Python's `json.dumps(v, ensure_ascii=False)` writes it (`", "` and `": "`
/// separators, keys in their order): the form chat templates' `tojson` gives the model.
pub fn python_json(v: &Value) -> String {
    let mut out = String::new();
    write_python_json(v, &mut out);
    out
}

fn write_python_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(&Value::String(k.clone()), out);
                out.push_str(": ");
                write_python_json(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Vec<ToolGrammar> {
        let search = json!({"type": "object", "properties": {
            "category": {"type": "string", "enum": ["Clothing", "Footwear"]},
            "max_price": {"type": "number"},
            "in_stock": {"type": "boolean"}
        }, "required": ["category"]});
        let order = json!({"type": "object", "properties": {
            "product_id": {"type": "integer"}, "quantity": {"type": "integer"}
        }, "required": ["product_id", "quantity"]});
        let say = json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]});
        vec![
            ToolGrammar { name: "search_products".into(), arguments: Schema::from_json(&search) },
            ToolGrammar { name: "create_order".into(), arguments: Schema::from_json(&order) },
            ToolGrammar { name: "respond".into(), arguments: Schema::from_json(&say) },
            ToolGrammar { name: "ping".into(), arguments: Schema::from_json(&json!({"type": "object"})) },
        ]
    }

    fn c(s: &str) -> Check {
        check(&tools(), s.as_bytes())
    }

    #[test]
    fn whole_calls_are_complete_and_every_prefix_is_partial() {
        for call in [
            "\n{\"name\": \"search_products\", \"arguments\": {\"category\": \"Footwear\", \"max_price\": 60}}\n",
            "\n{\"name\": \"search_products\", \"arguments\": {\"category\": \"Clothing\", \"in_stock\": true}}\n",
            "\n{\"name\": \"create_order\", \"arguments\": {\"product_id\": 318, \"quantity\": 2}}\n",
            "\n{\"name\": \"respond\", \"arguments\": {\"text\": \"Hi! \\\"Quoted\\\" \\u00e9 and é.\"}}\n",
            "\n{\"name\": \"ping\", \"arguments\": {}}\n",
            "\n{\"name\": \"ping\", \"arguments\": {\"a\": [1, {\"b\": null}], \"c\": -2.5e3}}\n",
        ] {
            assert_eq!(check(&tools(), call.as_bytes()), Check::Complete, "{call}");
            for n in 0..call.len() {
                assert_eq!(check(&tools(), &call.as_bytes()[..n]), Check::Partial, "{call} cut at {n}");
            }
        }
    }

    #[test]
    fn calls_outside_the_schemas_are_invalid() {
        for bad in [
            "{\"name\"",                                                                           // no newline first
            "\n{\"name\": \"delete_everything\"",                                                  // unknown tool
            "\n{\"name\": \"search_products\", \"arguments\": {\"category\": \"Hats\"",            // not in the enum
            "\n{\"name\": \"search_products\", \"arguments\": {\"max_price\": 60", // required category skipped
            "\n{\"name\": \"search_products\", \"arguments\": {}}",                // required missing
            "\n{\"name\": \"create_order\", \"arguments\": {\"product_id\": 3.5",  // integer
            "\n{\"name\": \"create_order\", \"arguments\": {\"product_id\": \"318\"", // a string
            "\n{\"name\": \"create_order\", \"arguments\": {\"quantity\": 2, \"product_id\": 1}}", // order
            "\n{\"name\": \"create_order\", \"arguments\": {\"product_id\":1",     // spacing
            "\n{\"name\": \"respond\", \"arguments\": {\"text\": \"a\nb\"}}",      // raw newline
            "\n{\"name\": \"respond\", \"arguments\": {\"text\": \"a\\q\"}}",      // bad escape
            "\n{\"name\": \"ping\", \"arguments\": {}}\nmore",                     // trailing bytes
            "\n{\"name\": \"create_order\", \"arguments\": {\"product_id\": 0123", // leading zero
            "\n{\"name\": \"create_order\", \"arguments\": {\"product_id\": 1, \"quantity\": 2,", // no key left
        ] {
            assert_eq!(c(bad), Check::Invalid, "{bad:?}");
        }
        let long = format!("\n{{\"name\": \"respond\", \"arguments\": {{\"text\": \"{}", "a".repeat(MAX_STRING + 1));
        assert_eq!(c(&long), Check::Invalid, "strings are capped");
        // A maxLength caps a string at its characters: then only the closing quote may come.
        let note = vec![ToolGrammar {
            name: "note".into(),
            arguments: Schema::from_json(
                &json!({"type": "object", "properties": {"t": {"type": "string", "maxLength": 3}}}),
            ),
        }];
        let at =
            |text: &str| check(&note, format!("\n{{\"name\": \"note\", \"arguments\": {{\"t\": \"{text}").as_bytes());
        assert_eq!(at("ééé"), Check::Partial);
        assert_eq!(at("éééa"), Check::Invalid);
        assert_eq!(at("abc\"}}\n"), Check::Complete);
        assert_eq!(at("abcd"), Check::Invalid);
        let digits = format!("\n{{\"name\": \"create_order\", \"arguments\": {{\"product_id\": {}", "1".repeat(20));
        assert_eq!(c(&digits), Check::Invalid, "numbers are capped");
    }

    #[test]
    fn python_json_matches_json_dumps() {
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": [true, null, 2.5, "x\"y\n"], "é": {}}"#).unwrap();
        assert_eq!(python_json(&v), r#"{"b": 1, "a": [true, null, 2.5, "x\"y\n"], "é": {}}"#);
        assert_eq!(python_json(&json!(60.0)), "60.0");
        assert_eq!(quoted("a\u{1}"), "\"a\\u0001\"");
    }

    #[test]
    fn schemas_are_read_from_json_schema() {
        let s = Schema::from_json(&json!({"type": ["integer", "null"]}));
        assert_eq!(s, Schema::Number(true));
        let s = Schema::from_json(&json!({"enum": [1, 2]}));
        assert_eq!(s, Schema::Literal(vec!["1".into(), "2".into()]));
        assert_eq!(Schema::from_json(&json!({})), Schema::Any);
        let s = Schema::from_json(&json!({"type": "array", "items": {"type": "string"}}));
        assert_eq!(s, Schema::Array(Box::new(Schema::String(None))));
        assert_eq!(Schema::from_json(&json!({"type": "string", "maxLength": 80})), Schema::Text(80));
        assert_eq!(Schema::from_json(&json!({"type": "string", "maxLength": 100_000})), Schema::String(None));
        assert_eq!(Schema::from_json(&json!({"enum": []})), Schema::Any);
    }
    /// Random walks through the analysis-like schema: every beginning the checker accepts has
    /// at least one byte that continues it (a decoder never reaches a dead end).
    #[test]
    fn every_partial_call_can_go_on() {
        let schema = json!({"type": "object", "properties": {
            "reason": {"type": "string", "maxLength": 12},
            "mood": {"type": "string", "enum": ["satisfied", "neutral", "dissatisfied"]},
            "tone": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "price": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
            "extra": {}
        }, "required": ["reason", "mood", "tone", "rating"]});
        let tools = vec![ToolGrammar { name: "record".into(), arguments: Schema::from_json(&schema) }];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut complete = 0;
        for walk in 0..250 {
            let mut call: Vec<u8> = Vec::new();
            for _ in 0..300 {
                if check(&tools, &call) == Check::Complete {
                    complete += 1;
                    break;
                }
                let mut options = Vec::new();
                let mut probe = call.clone();
                probe.push(0);
                for b in 0..=255u8 {
                    *probe.last_mut().unwrap() = b;
                    if check(&tools, &probe) != Check::Invalid {
                        options.push(b);
                    }
                }
                assert!(!options.is_empty(), "walk {walk}: a dead end after {:?}", String::from_utf8_lossy(&call));
                // Mostly the bytes a model writes: structure first, then text.
                let structural: Vec<u8> =
                    options.iter().copied().filter(|b| b"\"}],:{[ \n\\0123456789.-eEu".contains(b)).collect();
                let pool = if !structural.is_empty() && next() % 3 != 0 { &structural } else { &options };
                call.push(pool[(next() % pool.len() as u64) as usize]);
            }
        }
        assert!(complete > 0, "some walks reach a whole call");
    }
}
