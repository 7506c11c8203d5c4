//! The retail agent's domain (the seed's Contoso fashion shop): the catalogue and its seeding,
//! generated product pictures, the seven server-side tools with the seed sample's names, and call
//! analysis by a model forced to fill in one schema.
//!
//! It sits on `brazen-store` (the database) and `brazen-providers` (the `Tools`, `Knowledge` and
//! `Llm` traits); the server serves [`picture_svg`] at `/images/products/{id}.svg`, offers
//! [`RetailTools`] to the engine, and calls [`analysis::analyse_conversation`] when a session
//! ends.

pub mod analysis;
mod catalog;
mod picture;
mod tools;

pub use analysis::{analyse, analyse_conversation};
pub use catalog::{
    CATEGORIES, catalog, normalize_order_id, normalize_product_id, parse_catalog, resolve_category, seed,
};
pub use picture::picture_svg;
pub use tools::{
    ANALYSIS_TOOL_TIMEOUT, DB_TIMEOUT, MAX_LISTED, QNA_PASSAGES, QNA_TIMEOUT, RetailTools, names, tool_specs,
};
