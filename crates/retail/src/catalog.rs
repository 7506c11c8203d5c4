//! The seed catalogue (`data/catalog.toml`, embedded), its checks, seeding, and the readings of
//! what a caller (a small model) writes for a category or a product id.

use brazen_store::{NewProduct, Store, StoreError};
use serde::Deserialize;

/// The shop's categories, as stored and as offered to the model.
pub const CATEGORIES: [&str; 8] =
    ["Apparel", "Garments", "Winter wear", "Stockings", "Active wear", "Swim wear", "Formal wear", "Accessories"];

/// The catalogue's TOML text.
const CATALOG_TOML: &str = include_str!("../data/catalog.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    product: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogEntry {
    id: String,
    name: String,
    category: String,
    price: f64,
    stock: i64,
    description: String,
}

/// The seed catalogue, parsed and checked: unique `P###` ids, known categories, prices above 0
/// with at most two decimals, stock ≥ 0, a name and a description. The error says which entry
/// is wrong.
pub fn catalog() -> Result<Vec<NewProduct>, String> {
    parse_catalog(CATALOG_TOML)
}

/// Parses and checks a catalogue in the `data/catalog.toml` format.
pub fn parse_catalog(text: &str) -> Result<Vec<NewProduct>, String> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| format!("The catalogue is not valid TOML: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    let mut products = Vec::with_capacity(file.product.len());
    for (i, p) in file.product.into_iter().enumerate() {
        let at = format!("catalogue entry {} ({})", i + 1, p.id);
        let well_formed = p.id.len() >= 4 && p.id.starts_with('P') && p.id[1..].chars().all(|c| c.is_ascii_digit());
        if !well_formed {
            return Err(format!("{at}: ids are P and digits, e.g. P001."));
        }
        if !seen.insert(p.id.clone()) {
            return Err(format!("{at}: the id is used twice."));
        }
        if !CATEGORIES.contains(&p.category.as_str()) {
            return Err(format!("{at}: unknown category '{}'; use one of {}.", p.category, CATEGORIES.join(", ")));
        }
        let cents = (p.price * 100.0).round();
        if !(p.price > 0.0 && p.price < 100_000.0) || (cents - p.price * 100.0).abs() > 1e-6 {
            return Err(format!("{at}: the price must be above 0 with at most two decimals; got {}.", p.price));
        }
        if p.stock < 0 {
            return Err(format!("{at}: stock cannot be negative."));
        }
        if p.name.trim().is_empty() || p.description.trim().is_empty() {
            return Err(format!("{at}: needs a name and a description."));
        }
        products.push(NewProduct {
            image: format!("/images/products/{}.svg", p.id),
            id: p.id,
            name: p.name,
            category: p.category,
            price_cents: cents as i64,
            description: p.description,
            stock: p.stock,
        });
    }
    Ok(products)
}

/// Seeds the store with the catalogue: new products get their stock, existing ones keep theirs
/// (their names, prices and descriptions are updated).
pub async fn seed(store: &Store) -> Result<usize, StoreError> {
    let products = catalog().map_err(StoreError::Invalid)?;
    store.upsert_products(&products).await?;
    Ok(products.len())
}

/// Other words people (and small models) use for each category, lower-case, letters only.
const SYNONYMS: &[(&str, &[&str])] = &[
    (
        "Apparel",
        &[
            "apparel",
            "apparels",
            "clothes",
            "clothing",
            "casual",
            "casualwear",
            "casualclothes",
            "everyday",
            "tshirt",
            "tshirts",
            "tee",
            "tees",
            "tops",
            "top",
            "jeans",
            "hoodie",
            "hoodies",
            "sweatshirt",
            "sweatshirts",
            "trousers",
            "shorts",
        ],
    ),
    (
        "Garments",
        &[
            "garment",
            "garments",
            "dress",
            "dresses",
            "skirt",
            "skirts",
            "blouse",
            "blouses",
            "shirt",
            "shirts",
            "cardigan",
            "cardigans",
        ],
    ),
    (
        "Winter wear",
        &[
            "winterwear",
            "winter",
            "winterclothes",
            "winterclothing",
            "wintercoats",
            "wintercoat",
            "coat",
            "coats",
            "jacket",
            "jackets",
            "outerwear",
            "warmclothes",
            "warmclothing",
            "parka",
            "parkas",
            "cold",
            "coldweather",
        ],
    ),
    ("Stockings", &["stocking", "stockings", "tights", "socks", "sock", "hosiery", "pantyhose", "nylons", "hosieries"]),
    (
        "Active wear",
        &[
            "activewear",
            "active",
            "sportswear",
            "sports",
            "sport",
            "sportsclothes",
            "gym",
            "gymwear",
            "gymclothes",
            "athletic",
            "athleisure",
            "workout",
            "fitness",
            "training",
            "running",
            "yoga",
            "leggings",
        ],
    ),
    (
        "Swim wear",
        &[
            "swimwear",
            "swim",
            "swimming",
            "swimsuit",
            "swimsuits",
            "swimmingsuits",
            "bathingsuit",
            "bathingsuits",
            "swimmingcostume",
            "bikini",
            "bikinis",
            "beachwear",
            "beach",
            "swimmingwear",
            "swimshorts",
        ],
    ),
    (
        "Formal wear",
        &[
            "formalwear",
            "formal",
            "formals",
            "formalclothes",
            "formalclothing",
            "suit",
            "suits",
            "eveningwear",
            "evening",
            "eveninggowns",
            "gown",
            "gowns",
            "businesswear",
            "business",
            "tuxedo",
            "tuxedos",
            "blazer",
            "blazers",
            "partywear",
            "wedding",
        ],
    ),
    (
        "Accessories",
        &[
            "accessories",
            "accessory",
            "accessoires",
            "bag",
            "bags",
            "handbag",
            "handbags",
            "hat",
            "hats",
            "scarf",
            "scarves",
            "belt",
            "belts",
            "jewelry",
            "jewellery",
            "earrings",
            "backpack",
            "backpacks",
        ],
    ),
];

/// The category a caller meant: case, spaces, hyphens and underscores ignored, and common
/// synonyms read (`winterwear`, `winter clothes`, `swimsuits`, `socks` → Stockings, `dresses` →
/// Garments, `suits` → Formal wear, …). `None` when nothing fits.
pub fn resolve_category(input: &str) -> Option<&'static str> {
    let key: String = input.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    if key.is_empty() {
        return None;
    }
    let lookup = |k: &str| {
        CATEGORIES
            .iter()
            .find(|c| c.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>() == k)
            .copied()
            .or_else(|| SYNONYMS.iter().find(|(_, words)| words.contains(&k)).map(|(c, _)| *c))
    };
    lookup(&key)
        .or_else(|| key.strip_suffix("s").and_then(lookup))
        .or_else(|| key.strip_suffix("items").and_then(lookup))
        .or_else(|| key.strip_suffix("products").and_then(lookup))
        .or_else(|| key.strip_suffix("clothes").and_then(lookup))
}

/// A product id as the store writes it: trimmed, upper-case, spaces and hyphens dropped, and
/// the digits padded to three (`p 7`, `7`, `P-07` → `P007`).
pub fn normalize_product_id(input: &str) -> String {
    let compact: String =
        input.chars().filter(|c| !c.is_whitespace() && *c != '-' && *c != '_').flat_map(char::to_uppercase).collect();
    let digits = compact.strip_prefix('P').unwrap_or(&compact);
    if !digits.is_empty() && digits.len() <= 3 && digits.chars().all(|c| c.is_ascii_digit()) {
        return format!("P{:0>3}", digits);
    }
    compact
}

/// An order id as the store writes it: trimmed, upper-case, spaces dropped, and `ORD` followed by
/// its code written `ORD_…` (`ord 1234abcd`, `ORD-1234ABCD` → `ORD_1234ABCD`); the eight-character
/// code alone gets its `ORD_` (`m5n6b7v8` → `ORD_M5N6B7V8`: callers read out the part after it).
pub fn normalize_order_id(input: &str) -> String {
    let compact: String =
        input.chars().filter(|c| !c.is_whitespace() && *c != '-' && *c != '_').flat_map(char::to_uppercase).collect();
    match compact.strip_prefix("ORD") {
        Some(code) if !code.is_empty() => format!("ORD_{code}"),
        _ if compact.len() == 8 && compact.chars().all(|c| c.is_ascii_alphanumeric()) => format!("ORD_{compact}"),
        _ => compact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_normalised() {
        assert_eq!(normalize_product_id(" p 7 "), "P007");
        assert_eq!(normalize_product_id("P-07"), "P007");
        assert_eq!(normalize_product_id("12"), "P012");
        assert_eq!(normalize_product_id("P0123"), "P0123");
        assert_eq!(normalize_product_id("shoe"), "SHOE");
        assert_eq!(normalize_order_id(" ord 12ab34cd"), "ORD_12AB34CD");
        assert_eq!(normalize_order_id("ORD-12AB34CD"), "ORD_12AB34CD");
        assert_eq!(normalize_order_id("ORD_12AB34CD"), "ORD_12AB34CD");
        assert_eq!(normalize_order_id("m5n6 b7v8"), "ORD_M5N6B7V8");
        assert_eq!(normalize_order_id("M5N6B7V"), "M5N6B7V");
        assert_eq!(normalize_order_id("xyz"), "XYZ");
    }

    #[test]
    fn bad_catalogues_are_refused_precisely() {
        let entry = |id: &str, category: &str, price: &str| {
            format!(
                "[[product]]\nid = \"{id}\"\nname = \"N\"\ncategory = \"{category}\"\nprice = {price}\nstock = 1\n\
                 description = \"D\"\n"
            )
        };
        assert!(parse_catalog(&entry("P001", "Apparel", "1.5")).is_ok());
        let twice = entry("P001", "Apparel", "1") + &entry("P001", "Apparel", "2");
        assert!(parse_catalog(&twice).unwrap_err().contains("used twice"));
        assert!(parse_catalog(&entry("X1", "Apparel", "1")).unwrap_err().contains("ids are P"));
        assert!(parse_catalog(&entry("P001", "Shoes", "1")).unwrap_err().contains("unknown category 'Shoes'"));
        assert!(parse_catalog(&entry("P001", "Apparel", "0")).unwrap_err().contains("above 0"));
        assert!(parse_catalog(&entry("P001", "Apparel", "1.999")).unwrap_err().contains("two decimals"));
        assert!(parse_catalog("[[product]]\nid = 1").unwrap_err().contains("not valid TOML"));
    }
}
