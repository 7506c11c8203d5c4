//! The seed catalogue's data and the product pictures.

use brazen_retail::{CATEGORIES, catalog, picture_svg};
use brazen_store::Product;
use std::collections::{HashMap, HashSet};

fn products() -> Vec<Product> {
    catalog()
        .expect("the catalogue is valid")
        .into_iter()
        .map(|p| Product {
            id: p.id,
            name: p.name,
            category: p.category,
            price_cents: p.price_cents,
            description: p.description,
            image: p.image,
            stock: p.stock,
        })
        .collect()
}

#[test]
fn the_catalogue_is_complete_and_sane() {
    let products = products();
    assert!(products.len() >= 60, "{} products", products.len());
    let ids: HashSet<&str> = products.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), products.len(), "unique ids");
    let mut per_category: HashMap<&str, usize> = HashMap::new();
    for p in &products {
        *per_category.entry(p.category.as_str()).or_default() += 1;
        assert!(p.price_cents > 0, "{}", p.id);
        assert!(p.stock >= 0, "{}", p.id);
        assert_eq!(p.image, format!("/images/products/{}.svg", p.id));
        let sentences = p.description.matches(". ").count() + 1;
        assert!(p.description.ends_with('.') && sentences <= 2, "{}: one or two sentences", p.id);
    }
    for c in CATEGORIES {
        let n = per_category.get(c).copied().unwrap_or(0);
        assert!((8..=10).contains(&n), "{c}: {n} products");
    }
    assert_eq!(per_category.len(), 8, "no other categories");
    assert!(products.iter().filter(|p| p.stock == 0).count() >= 1, "some sold out");
    assert!(products.iter().filter(|p| (1..=3).contains(&p.stock)).count() >= 3, "some nearly sold out");
    let typical = products.iter().filter(|p| (10..=60).contains(&p.stock)).count();
    assert!(typical * 10 >= products.len() * 7, "most have 10 to 60 in stock");
    // The tools' JSON shape.
    let json = products[0].tool_json();
    assert_eq!(json["id"], "P001");
    assert_eq!(json["Price"], 19.99);
}

/// Checks that tags open and close in order, and that attribute quotes balance.
fn well_formed(svg: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let text = &rest[..start];
        if text.contains('>') || (text.contains('&') && !text.contains(';')) {
            return Err(format!("stray character in text {text:?}"));
        }
        let end = rest[start..].find('>').ok_or("unclosed tag")? + start;
        let tag = &rest[start + 1..end];
        if !tag.matches('"').count().is_multiple_of(2) {
            return Err(format!("unbalanced quotes in <{tag}>"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or_else(|| format!("</{name}> closes nothing"))?;
            if open != name {
                return Err(format!("</{name}> closes <{open}>"));
            }
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or("").to_owned());
        }
        rest = &rest[end + 1..];
    }
    if !rest.trim().is_empty() || !stack.is_empty() {
        return Err(format!("left open: {stack:?}"));
    }
    Ok(())
}

#[test]
fn pictures_are_well_formed_deterministic_and_self_contained() {
    let products = products();
    let mut distinct = HashSet::new();
    for p in &products {
        let svg = picture_svg(p);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{}", p.id);
        assert!(svg.ends_with("</svg>"));
        well_formed(&svg).unwrap_or_else(|e| panic!("{}: {e}\n{svg}", p.id));
        assert_eq!(svg, picture_svg(p), "deterministic");
        assert!(!svg.contains("href") && !svg.contains("url("), "{}: no external references", p.id);
        assert_eq!(svg.matches("http").count(), 1, "only the SVG namespace");
        let first_word = p.name.split_whitespace().next().unwrap();
        assert!(svg.contains(first_word), "{}: captioned", p.id);
        distinct.insert(svg);
    }
    assert_eq!(distinct.len(), products.len(), "every product has its own picture");
    // Names are escaped.
    let mut odd = products[0].clone();
    odd.name = "Tom & Jerry's <Best> \"Tee\"".into();
    let svg = picture_svg(&odd);
    well_formed(&svg).unwrap();
    assert!(svg.contains("Tom &amp; Jerry&apos;s &lt;Best&gt;"), "{svg}");
    // A colour word in the name sets the fill.
    let red = products.iter().find(|p| p.name.starts_with("Red ")).unwrap();
    assert!(picture_svg(red).contains("fill=\"#c62828\""));
}
