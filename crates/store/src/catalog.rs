//! Products and orders.

use crate::{Page, Store, StoreError, now_ms, page_bounds};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The most units one order may take.
pub const MAX_ORDER_QUANTITY: i64 = 100;

/// A product to seed: the catalogue's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// Its id, e.g. `P001`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its category, e.g. `Winter wear`.
    pub category: String,
    /// Its price in cents.
    pub price_cents: i64,
    /// One or two sentences about it.
    pub description: String,
    /// The URL path of its picture.
    pub image: String,
    /// Units in stock when first seeded.
    pub stock: i64,
}

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Product {
    /// Its id, e.g. `P001`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its category.
    pub category: String,
    /// Its price in cents.
    pub price_cents: i64,
    /// One or two sentences about it.
    pub description: String,
    /// The URL path of its picture.
    pub image: String,
    /// Units in stock now.
    pub stock: i64,
}

/// Cents as a JSON number of dollars (`2999` → `29.99`).
pub(crate) fn dollars(cents: i64) -> Value {
    // Exact for every price a shop has: the f64 nearest to n/100 prints as n/100.
    json!(cents as f64 / 100.0)
}

impl Product {
    /// The product as the seed's tools return it: `{"id", "ProductName", "Category", "Price"
    /// (dollars), "ProductDescription", "imageurl", "InStock"}`.
    pub fn tool_json(&self) -> Value {
        json!({
            "id": self.id,
            "ProductName": self.name,
            "Category": self.category,
            "Price": dollars(self.price_cents),
            "ProductDescription": self.description,
            "imageurl": self.image,
            "InStock": self.stock,
        })
    }

    fn from_row(row: &AnyRow) -> Result<Product, sqlx::Error> {
        Ok(Product {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            category: row.try_get("category")?,
            price_cents: row.try_get("price_cents")?,
            description: row.try_get("description")?,
            image: row.try_get("image")?,
            stock: row.try_get("stock")?,
        })
    }
}

/// Which products to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFilter {
    /// Only this category (exact, as stored).
    pub category: Option<String>,
    /// Only products costing at most this many cents.
    pub max_price_cents: Option<i64>,
    /// Page size (clamped to 1..=500; 0 means 500).
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Order {
    /// `ORD_` and 8 upper-case letters or digits.
    pub id: String,
    /// The product ordered.
    pub product_id: String,
    /// Its name when ordered.
    pub product_name: String,
    /// Units ordered.
    pub quantity: i64,
    /// Price of one unit when ordered, in cents.
    pub unit_price_cents: i64,
    /// `unit_price_cents × quantity`.
    pub total_cents: i64,
    /// `confirmed`, then `shipping` once a shipment exists.
    pub status: String,
    /// When it was placed (unix ms).
    pub created_at: i64,
    /// The conversation that placed it, if any.
    pub conversation_id: Option<String>,
}

impl Order {
    /// The order as the seed's tool returns it: `{"OrderId", "ProductId", "Name", "Quantity",
    /// "Price" (unit, dollars), "Total" (dollars), "Status"}`.
    pub fn tool_json(&self) -> Value {
        json!({
            "OrderId": self.id,
            "ProductId": self.product_id,
            "Name": self.product_name,
            "Quantity": self.quantity,
            "Price": dollars(self.unit_price_cents),
            "Total": dollars(self.total_cents),
            "Status": self.status,
        })
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<Order, sqlx::Error> {
        Ok(Order {
            id: row.try_get("id")?,
            product_id: row.try_get("product_id")?,
            product_name: row.try_get("product_name")?,
            quantity: row.try_get("quantity")?,
            unit_price_cents: row.try_get("unit_price_cents")?,
            total_cents: row.try_get("total_cents")?,
            status: row.try_get("status")?,
            created_at: row.try_get("created_at")?,
            conversation_id: row.try_get("conversation_id")?,
        })
    }
}

/// Why an order was not placed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// No product has this id.
    #[error("There is no product with id '{0}'.")]
    UnknownProduct(String),
    /// The quantity is out of range.
    #[error("The quantity must be a whole number from 1 to {MAX_ORDER_QUANTITY}; got {0}.")]
    BadQuantity(i64),
    /// Not enough units are left.
    #[error("Only {available} of '{name}' ({product_id}) are in stock; {requested} were asked for.")]
    OutOfStock {
        /// The product.
        product_id: String,
        /// Its name.
        name: String,
        /// Units left.
        available: i64,
        /// Units asked for.
        requested: i64,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OrderError {
    fn from(e: sqlx::Error) -> Self {
        OrderError::Store(e.into())
    }
}

/// A fresh id: `prefix` and `len` upper-case letters or digits.
pub(crate) fn random_id(prefix: &str, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    for _ in 0..len {
        id.push(char::from(CHARS[rng.random_range(0..CHARS.len())]));
    }
    id
}

const PRODUCT_COLUMNS: &str = "id, name, category, price_cents, description, image, stock";
const ORDER_COLUMNS: &str =
    "id, product_id, product_name, quantity, unit_price_cents, total_cents, status, created_at, conversation_id";

impl Store {
    /// Inserts the products, or updates the name, category, price, description and picture of
    /// those that exist. Stock is only set for new products: re-seeding keeps what was sold.
    pub async fn upsert_products(&self, products: &[NewProduct]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for p in products {
            if p.id.trim().is_empty() || p.price_cents < 0 || p.stock < 0 {
                return Err(StoreError::Invalid(format!(
                    "Product '{}' needs an id, a price ≥ 0 and a stock ≥ 0.",
                    p.id
                )));
            }
            sqlx::query(
                "INSERT INTO products (id, name, category, price_cents, description, image, stock) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category, \
                 price_cents = excluded.price_cents, description = excluded.description, image = excluded.image",
            )
            .bind(&p.id)
            .bind(&p.name)
            .bind(&p.category)
            .bind(p.price_cents)
            .bind(&p.description)
            .bind(&p.image)
            .bind(p.stock)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Products matching `filter`, cheapest first (then by id).
    pub async fn products(&self, filter: &ProductFilter) -> Result<Page<Product>, StoreError> {
        let requested = if filter.limit == 0 { crate::MAX_PAGE } else { filter.limit };
        let (limit, offset) = page_bounds(requested, filter.offset);
        // NULL parameters switch a condition off; the casts tell PostgreSQL their types.
        let condition =
            "($1 IS NULL OR category = CAST($1 AS TEXT)) AND ($2 IS NULL OR price_cents <= CAST($2 AS BIGINT))";
        let category = filter.category.clone();
        let max_price = filter.max_price_cents;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM products WHERE {condition}"))
            .bind(category.clone())
            .bind(max_price)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE {condition} ORDER BY price_cents, id LIMIT $3 OFFSET $4"
        ))
        .bind(category)
        .bind(max_price)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(Product::from_row).collect::<Result<_, _>>()?;
        Ok(Page { items, total, limit, offset })
    }

    /// One product.
    pub async fn product(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let row = sqlx::query(&format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(Product::from_row).transpose()?)
    }

    /// The categories that have products, in alphabetical order.
    pub async fn categories(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT category FROM products ORDER BY category").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| r.try_get("category")).collect::<Result<_, _>>()?)
    }

    /// Places an order in one transaction: takes `quantity` units from the product's stock if
    /// that many are left, and records the order at the product's current price. Nothing is
    /// written when it fails. Dropping the future before it finishes rolls back.
    pub async fn place_order(
        &self,
        product_id: &str,
        quantity: i64,
        conversation_id: Option<&str>,
    ) -> Result<Order, OrderError> {
        if !(1..=MAX_ORDER_QUANTITY).contains(&quantity) {
            return Err(OrderError::BadQuantity(quantity));
        }
        let mut tx = self.pool.begin().await?;
        // The write comes first: SQLite then takes its write lock at once (waiting on the busy
        // timeout) instead of failing to upgrade a read snapshot, and PostgreSQL locks the row.
        let taken = sqlx::query("UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2")
            .bind(product_id)
            .bind(quantity)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let row = sqlx::query("SELECT name, price_cents, stock FROM products WHERE id = $1")
            .bind(product_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(OrderError::UnknownProduct(product_id.to_owned()));
        };
        let name: String = row.try_get("name")?;
        let unit_price_cents: i64 = row.try_get("price_cents")?;
        if taken != 1 {
            let available: i64 = row.try_get("stock")?;
            tx.rollback().await?;
            return Err(OrderError::OutOfStock {
                product_id: product_id.to_owned(),
                name,
                available,
                requested: quantity,
            });
        }
        let total_cents = unit_price_cents.checked_mul(quantity).ok_or_else(|| {
            StoreError::Invalid(format!("The total of {quantity} × {unit_price_cents} cents overflows."))
        })?;
        let created_at = now_ms();
        for _ in 0..5 {
            let id = random_id("ORD_", 8);
            let inserted = sqlx::query(
                "INSERT INTO orders (id, product_id, product_name, quantity, unit_price_cents, total_cents, status, \
                 created_at, conversation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&id)
            .bind(product_id)
            .bind(&name)
            .bind(quantity)
            .bind(unit_price_cents)
            .bind(total_cents)
            .bind("confirmed")
            .bind(created_at)
            .bind(conversation_id.map(str::to_owned))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                tx.commit().await?;
                return Ok(Order {
                    id,
                    product_id: product_id.to_owned(),
                    product_name: name,
                    quantity,
                    unit_price_cents,
                    total_cents,
                    status: "confirmed".into(),
                    created_at,
                    conversation_id: conversation_id.map(str::to_owned),
                });
            }
        }
        Err(StoreError::Database("could not find a free order id".into()).into())
    }

    /// Orders, newest first.
    pub async fn orders(&self, limit: i64, offset: i64) -> Result<Page<Order>, StoreError> {
        let (limit, offset) = page_bounds(limit, offset);
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM orders").fetch_one(&self.pool).await?.try_get("n")?;
        let rows =
            sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY created_at DESC, id LIMIT $1 OFFSET $2"))
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
        let items = rows.iter().map(Order::from_row).collect::<Result<_, _>>()?;
        Ok(Page { items, total, limit, offset })
    }

    /// One order.
    pub async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(Order::from_row).transpose()?)
    }

    /// Units ordered per product id over all orders (for checks and reports).
    pub async fn ordered_quantities(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT product_id, CAST(SUM(quantity) AS BIGINT) AS n FROM orders GROUP BY product_id ORDER BY product_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get("product_id")?, r.try_get("n")?))).collect::<Result<_, sqlx::Error>>()?)
    }
}
