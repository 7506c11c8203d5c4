//! Product pictures: a simple, deterministic SVG drawing per product — a silhouette chosen by
//! its name or category, coloured from a colour word in its name (else from a hash of its id),
//! captioned with its name. Self-contained: no external references.

use brazen_store::Product;

/// The silhouettes drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    TShirt,
    Dress,
    Coat,
    Stocking,
    Trousers,
    Swimsuit,
    Suit,
    Bag,
    Hat,
    Scarf,
    Jewellery,
}

/// Words in a product's name that pick a silhouette before its category does.
const SHAPE_WORDS: &[(&str, Shape)] = &[
    ("beanie", Shape::Hat),
    ("hat", Shape::Hat),
    ("cap", Shape::Hat),
    ("scarf", Shape::Scarf),
    ("tights", Shape::Stocking),
    ("stockings", Shape::Stocking),
    ("socks", Shape::Stocking),
    ("leggings", Shape::Trousers),
    ("jeans", Shape::Trousers),
    ("trousers", Shape::Trousers),
    ("joggers", Shape::Trousers),
    ("jogger", Shape::Trousers),
    ("shorts", Shape::Trousers),
    ("dress", Shape::Dress),
    ("gown", Shape::Dress),
    ("skirt", Shape::Dress),
    ("sundress", Shape::Dress),
    ("pinafore", Shape::Dress),
    ("swimsuit", Shape::Swimsuit),
    ("bikini", Shape::Swimsuit),
    ("tankini", Shape::Swimsuit),
    ("bra", Shape::Swimsuit),
    ("suit", Shape::Suit),
    ("blazer", Shape::Suit),
    ("tuxedo", Shape::Suit),
    ("waistcoat", Shape::Suit),
    ("coat", Shape::Coat),
    ("overcoat", Shape::Coat),
    ("jacket", Shape::Coat),
    ("parka", Shape::Coat),
    ("windbreaker", Shape::Coat),
    ("earrings", Shape::Jewellery),
    ("bag", Shape::Bag),
    ("backpack", Shape::Bag),
];

/// Colour words and their fills.
const COLOURS: &[(&str, &str)] = &[
    ("white", "#f4f2ec"),
    ("ivory", "#f3ecd8"),
    ("cream", "#efe4c8"),
    ("black", "#26262b"),
    ("charcoal", "#3b3f46"),
    ("grey", "#8a8f98"),
    ("gray", "#8a8f98"),
    ("navy", "#1f2f5a"),
    ("blue", "#2f6fd0"),
    ("denim", "#4a6d9c"),
    ("red", "#c62828"),
    ("burgundy", "#7a1f35"),
    ("pink", "#f06292"),
    ("coral", "#ff7f66"),
    ("orange", "#ef7d22"),
    ("yellow", "#f2c230"),
    ("gold", "#d4a017"),
    ("green", "#2e7d32"),
    ("emerald", "#1d8a5a"),
    ("olive", "#6b7a2a"),
    ("purple", "#7b3fa0"),
    ("lilac", "#b89ad8"),
    ("beige", "#d8c3a0"),
    ("camel", "#c19a6b"),
    ("tan", "#c8a27a"),
    ("brown", "#7b4a2a"),
    ("nude", "#e0b89a"),
    ("straw", "#e3c77a"),
];

fn words(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn shape_of(product: &Product) -> Shape {
    let words = words(&product.name);
    if let Some((_, shape)) = SHAPE_WORDS.iter().find(|(w, _)| words.iter().any(|x| x == w)) {
        return *shape;
    }
    match product.category.as_str() {
        "Garments" => Shape::Dress,
        "Winter wear" => Shape::Coat,
        "Stockings" => Shape::Stocking,
        "Active wear" => Shape::Trousers,
        "Swim wear" => Shape::Swimsuit,
        "Formal wear" => Shape::Suit,
        "Accessories" => Shape::Bag,
        _ => Shape::TShirt,
    }
}

/// FNV-1a: a stable hash (the standard library's may change between releases).
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn fill_of(product: &Product) -> String {
    let words = words(&product.name);
    if let Some((_, fill)) = COLOURS.iter().find(|(w, _)| words.iter().any(|x| x == w)) {
        return (*fill).to_owned();
    }
    format!("hsl({}, 55%, 50%)", fnv1a(&product.id) % 360)
}

/// Escapes text for XML content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The drawing of a silhouette (inside a 200×200 area), filled with the current fill.
fn silhouette(shape: Shape) -> &'static str {
    match shape {
        Shape::TShirt => {
            r##"<path d="M62 38 L86 28 Q100 42 114 28 L138 38 L172 70 L150 92 L140 82 L140 182 L60 182 L60 82 L50 92 L28 70 Z"/>"##
        }
        Shape::Dress => concat!(
            r##"<path d="M84 26 L92 26 L96 46 L104 46 L108 26 L116 26 L114 62 L126 96 L162 186 L38 186 L74 96 L86 62 Z"/>"##,
            r##"<path d="M80 98 L120 98" fill="none" stroke-width="3"/>"##
        ),
        Shape::Coat => concat!(
            r##"<path d="M70 28 L100 46 L130 28 L160 54 L168 186 L142 186 L138 96 L136 188 L64 188 L62 96 L58 186 L32 186 L40 54 Z"/>"##,
            r##"<path d="M100 46 L100 188" fill="none" stroke-width="3"/>"##,
            r##"<circle cx="108" cy="80" r="4" fill="#ffffff"/><circle cx="108" cy="110" r="4" fill="#ffffff"/>"##,
            r##"<circle cx="108" cy="140" r="4" fill="#ffffff"/>"##
        ),
        Shape::Stocking => {
            r##"<path d="M84 22 L122 22 L120 138 Q120 158 138 166 Q156 176 148 190 L96 190 Q78 190 80 170 L84 138 Z"/>"##
        }
        Shape::Trousers => r##"<path d="M64 26 L136 26 L144 188 L112 188 L100 84 L88 188 L56 188 Z"/>"##,
        Shape::Swimsuit => {
            r##"<path d="M72 28 L84 28 Q100 72 116 28 L128 28 L130 100 Q132 132 150 152 L122 168 Q100 150 78 168 L50 152 Q68 132 70 100 Z"/>"##
        }
        Shape::Suit => concat!(
            r##"<path d="M68 30 L100 40 L132 30 L162 54 L166 176 L34 176 L38 54 Z"/>"##,
            r##"<path d="M84 34 L100 100 L116 34 Z" fill="#ffffff"/>"##,
            r##"<path d="M96 46 L104 46 L106 92 L100 102 L94 92 Z" fill="#26262b"/>"##,
            r##"<path d="M84 34 L94 70 L82 60 Z M116 34 L106 70 L118 60 Z" fill-opacity="0.6"/>"##
        ),
        Shape::Bag => concat!(
            r##"<path d="M70 84 Q70 34 100 34 Q130 34 130 84" fill="none" stroke-width="9"/>"##,
            r##"<rect x="42" y="80" width="116" height="104" rx="12"/>"##,
            r##"<rect x="88" y="100" width="24" height="14" rx="3" fill="#ffffff" fill-opacity="0.7"/>"##
        ),
        Shape::Hat => concat!(
            r##"<ellipse cx="100" cy="146" rx="84" ry="20"/>"##,
            r##"<path d="M54 146 Q54 64 100 64 Q146 64 146 146 Z"/>"##,
            r##"<path d="M56 128 L144 128" fill="none" stroke-width="6" stroke-opacity="0.5"/>"##
        ),
        Shape::Scarf => concat!(
            r##"<path d="M56 40 Q100 64 144 40 L144 62 Q100 88 56 62 Z"/>"##,
            r##"<path d="M112 70 L132 70 L138 184 L114 184 Z"/>"##,
            r##"<path d="M114 184 L114 194 M122 184 L122 194 M130 184 L130 194 M138 184 L138 194" fill="none" stroke-width="2"/>"##
        ),
        Shape::Jewellery => concat!(
            r##"<circle cx="68" cy="110" r="40" fill="none" stroke-width="9"/>"##,
            r##"<circle cx="132" cy="110" r="40" fill="none" stroke-width="9"/>"##
        ),
    }
}

/// Splits a caption into at most two lines of about 22 characters.
fn caption_lines(name: &str) -> Vec<String> {
    if name.chars().count() <= 22 {
        return vec![name.to_owned()];
    }
    let words: Vec<&str> = name.split_whitespace().collect();
    let half = name.chars().count() / 2;
    let mut first = String::new();
    let mut i = 0;
    while i < words.len() && (first.is_empty() || first.chars().count() + words[i].chars().count() < half + 4) {
        if !first.is_empty() {
            first.push(' ');
        }
        first.push_str(words[i]);
        i += 1;
    }
    let second = words[i..].join(" ");
    if second.is_empty() { vec![first] } else { vec![first, second] }
}

/// The product's picture: a 240×300 SVG document (a silhouette for its kind, in the colour its
/// name says, with its name as a caption). The same product always gives the same bytes.
pub fn picture_svg(product: &Product) -> String {
    let fill = fill_of(product);
    let stroke = "#33363d";
    let lines = caption_lines(&product.name);
    let mut svg = String::with_capacity(2048);
    svg.push_str(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="240" height="300" viewBox="0 0 240 300" role="img">"#,
    );
    svg.push_str(&format!("<title>{}</title>", escape(&product.name)));
    svg.push_str(r##"<rect width="240" height="300" rx="16" fill="#f7f5f1"/>"##);
    svg.push_str(&format!(
        r#"<g transform="translate(20 14)" fill="{fill}" stroke="{stroke}" stroke-width="2" stroke-linejoin="round">"#
    ));
    svg.push_str(silhouette(shape_of(product)));
    svg.push_str("</g>");
    let top = if lines.len() == 1 { 252 } else { 244 };
    for (i, line) in lines.iter().enumerate() {
        svg.push_str(&format!(
            r##"<text x="120" y="{}" text-anchor="middle" font-family="sans-serif" font-size="15" fill="#26262b">{}</text>"##,
            top + i * 19,
            escape(line)
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str, category: &str) -> Product {
        Product {
            id: "P001".into(),
            name: name.into(),
            category: category.into(),
            price_cents: 100,
            description: String::new(),
            image: String::new(),
            stock: 1,
        }
    }

    #[test]
    fn shapes_follow_the_name_then_the_category() {
        assert_eq!(shape_of(&product("Red Knit Beanie", "Winter wear")), Shape::Hat);
        assert_eq!(shape_of(&product("Camel Wool Overcoat", "Winter wear")), Shape::Coat);
        assert_eq!(shape_of(&product("Black High-Waist Leggings", "Active wear")), Shape::Trousers);
        assert_eq!(shape_of(&product("Green Yoga Set", "Active wear")), Shape::Trousers);
        assert_eq!(shape_of(&product("Silk Bow Tie", "Formal wear")), Shape::Suit);
        assert_eq!(shape_of(&product("Classic Tee", "Apparel")), Shape::TShirt);
    }

    #[test]
    fn colours_follow_the_name_else_the_id() {
        assert_eq!(fill_of(&product("Navy Swim Shorts", "Swim wear")), "#1f2f5a");
        let hashed = fill_of(&product("Classic Tee", "Apparel"));
        assert!(hashed.starts_with("hsl("), "{hashed}");
    }

    #[test]
    fn captions_split_in_two() {
        assert_eq!(caption_lines("Short Name"), vec!["Short Name"]);
        let lines = caption_lines("Burgundy Thermal Leggings Tights");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines.join(" "), "Burgundy Thermal Leggings Tights");
    }
}
