//! Shipments: one per order, with a normalised destination and an estimated delivery date.

use crate::catalog::random_id;
use crate::{Order, Page, Store, StoreError, now_ms, page_bounds};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The carrier every shipment goes with.
const CARRIER: &str = "Contoso Express";

/// Business days from the shipment's creation to its estimated delivery.
const DELIVERY_BUSINESS_DAYS: i64 = 3;

/// The shortest destination accepted, in characters (after normalising).
const MIN_DESTINATION_CHARS: usize = 8;

/// The longest destination accepted, in characters.
const MAX_DESTINATION_CHARS: usize = 300;

/// A shipment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Shipment {
    /// `TRK` and 10 upper-case letters or digits.
    pub tracking_id: String,
    /// The order shipped.
    pub order_id: String,
    /// Where it goes (normalised).
    pub destination: String,
    /// Who carries it.
    pub carrier: String,
    /// `processing` (the only state this store sets).
    pub status: String,
    /// `YYYY-MM-DD` (UTC), three business days after creation.
    pub estimated_delivery: String,
    /// When it was created (unix ms).
    pub created_at: i64,
}

impl Shipment {
    /// The shipment as the retail tools return it: `{"TrackingId", "OrderId", "Destination",
    /// "Carrier", "EstimatedDelivery", "Status"}`.
    pub fn tool_json(&self) -> Value {
        json!({
            "TrackingId": self.tracking_id,
            "OrderId": self.order_id,
            "Destination": self.destination,
            "Carrier": self.carrier,
            "EstimatedDelivery": self.estimated_delivery,
            "Status": self.status,
        })
    }

    fn from_row(row: &AnyRow) -> Result<Shipment, sqlx::Error> {
        Ok(Shipment {
            tracking_id: row.try_get("tracking_id")?,
            order_id: row.try_get("order_id")?,
            destination: row.try_get("destination")?,
            carrier: row.try_get("carrier")?,
            status: row.try_get("status")?,
            estimated_delivery: row.try_get("estimated_delivery")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Why a shipment was not created.
#[derive(Debug, thiserror::Error)]
pub enum ShipmentError {
    /// No order has this id.
    #[error("There is no order with id '{0}'.")]
    UnknownOrder(String),
    /// The destination is unusable; the message says why.
    #[error("{0}")]
    BadDestination(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ShipmentError {
    fn from(e: sqlx::Error) -> Self {
        ShipmentError::Store(e.into())
    }
}

/// US state and territory abbreviations, kept upper-case in addresses.
const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME",
    "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA",
    "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR", "GU", "VI",
];

/// Words kept upper-case wherever they appear.
const UPPER_WORDS: &[&str] = &["USA", "UK", "PO", "NW", "NE", "SW", "SE"];

/// A destination as stored: trimmed, whitespace collapsed, words title-cased, with US state
/// abbreviations (when written upper-case, or before a ZIP code, after a comma or last), words
/// holding digits (ZIP and postcodes, `12B`) and a few abbreviations (`USA`, `PO`, `NW`) upper-case.
///
/// ```
/// use brazen_store::normalize_destination;
/// assert_eq!(normalize_destination("  12  main st,\n seattle, wa 98101 "), "12 Main St, Seattle, WA 98101");
/// ```
pub fn normalize_destination(raw: &str) -> String {
    let words: Vec<&str> = raw.split_whitespace().collect();
    let mut out = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let core: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
        let upper = core.to_uppercase();
        let previous_ends_clause = i > 0 && words[i - 1].ends_with(',');
        let next_is_zip = words.get(i + 1).is_some_and(|w| w.chars().filter(char::is_ascii_digit).count() >= 5);
        let last = i + 1 == words.len();
        let written_upper = core.len() == 2 && core.chars().all(|c| c.is_ascii_uppercase());
        let state = core.len() == 2
            && US_STATES.contains(&upper.as_str())
            && (written_upper || next_is_zip || previous_ends_clause || last);
        let keep_upper = state || core.chars().any(|c| c.is_ascii_digit()) || UPPER_WORDS.contains(&upper.as_str());
        if keep_upper {
            out.push(word.to_uppercase());
        } else {
            out.push(title_case(word));
        }
    }
    out.join(" ")
}

/// `o'neil-smith` → `O'Neil-Smith`: a capital at the start, after a hyphen or slash, and after
/// an apostrophe that follows a single leading letter (`O'`, `D'`, not `Don't`).
fn title_case(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut start = true;
    let mut letters_in_part = 0;
    for c in word.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.extend(c.to_lowercase());
        }
        if c.is_alphabetic() {
            letters_in_part += 1;
        }
        if matches!(c, '-' | '/' | '(') || (c == '\'' && letters_in_part == 1) {
            start = true;
            letters_in_part = 0;
        }
    }
    out
}

/// Checks a normalised destination; the error says what is missing.
fn check_destination(destination: &str) -> Result<(), ShipmentError> {
    let chars = destination.chars().count();
    if chars == 0 {
        return Err(ShipmentError::BadDestination(
            "The destination address is empty; ask for the street address, city and postcode.".into(),
        ));
    }
    if chars < MIN_DESTINATION_CHARS || destination.split_whitespace().count() < 2 {
        return Err(ShipmentError::BadDestination(format!(
            "The destination '{destination}' is too short to deliver to; ask for the full street address, city and \
             postcode (at least {MIN_DESTINATION_CHARS} characters and two words)."
        )));
    }
    if chars > MAX_DESTINATION_CHARS {
        return Err(ShipmentError::BadDestination(format!(
            "The destination is {chars} characters long; an address has at most {MAX_DESTINATION_CHARS}."
        )));
    }
    if !destination.chars().any(char::is_alphabetic) {
        return Err(ShipmentError::BadDestination(format!(
            "The destination '{destination}' has no street or city name; ask for the full address."
        )));
    }
    Ok(())
}

/// The civil date (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` of the day `business_days` weekdays after the (UTC) day of `at_ms`.
pub(crate) fn delivery_date(at_ms: i64, business_days: i64) -> String {
    let mut day = at_ms.div_euclid(86_400_000);
    let mut left = business_days;
    while left > 0 {
        day += 1;
        // 1970-01-01 was a Thursday: weekday 0 = Monday.
        let weekday = (day + 3).rem_euclid(7);
        if weekday < 5 {
            left -= 1;
        }
    }
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

const SHIPMENT_COLUMNS: &str = "tracking_id, order_id, destination, carrier, status, estimated_delivery, created_at";

impl Store {
    /// Creates the shipment of an order to `destination` (normalised first, see
    /// [`normalize_destination`]) and marks the order `shipping`. An order has one shipment: asking
    /// again returns the existing one unchanged (whatever destination is given), so a retried tool
    /// call is harmless.
    pub async fn create_shipment(&self, order_id: &str, destination: &str) -> Result<Shipment, ShipmentError> {
        let destination = normalize_destination(destination);
        check_destination(&destination)?;
        let mut tx = self.pool.begin().await?;
        // The order's row is written first (the transaction's lock, as in `place_order`).
        let marked = sqlx::query("UPDATE orders SET status = 'shipping' WHERE id = $1")
            .bind(order_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if marked == 0 {
            tx.rollback().await?;
            return Err(ShipmentError::UnknownOrder(order_id.to_owned()));
        }
        let existing = sqlx::query(&format!("SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE order_id = $1"))
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            let shipment = Shipment::from_row(&row)?;
            tx.commit().await?;
            return Ok(shipment);
        }
        let created_at = now_ms();
        let shipment = Shipment {
            tracking_id: random_id("TRK", 10),
            order_id: order_id.to_owned(),
            destination,
            carrier: CARRIER.into(),
            status: "processing".into(),
            estimated_delivery: delivery_date(created_at, DELIVERY_BUSINESS_DAYS),
            created_at,
        };
        sqlx::query(
            "INSERT INTO shipments (tracking_id, order_id, destination, carrier, status, estimated_delivery, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&shipment.tracking_id)
        .bind(&shipment.order_id)
        .bind(&shipment.destination)
        .bind(&shipment.carrier)
        .bind(&shipment.status)
        .bind(&shipment.estimated_delivery)
        .bind(shipment.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(shipment)
    }

    /// Shipments, newest first.
    pub async fn shipments(&self, limit: i64, offset: i64) -> Result<Page<Shipment>, StoreError> {
        let (limit, offset) = page_bounds(limit, offset);
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM shipments").fetch_one(&self.pool).await?.try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {SHIPMENT_COLUMNS} FROM shipments ORDER BY created_at DESC, tracking_id LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(Shipment::from_row).collect::<Result<_, _>>()?;
        Ok(Page { items, total, limit, offset })
    }

    /// The shipment of an order, if it has one.
    pub async fn shipment_for_order(&self, order_id: &str) -> Result<Option<Shipment>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE order_id = $1"))
            .bind(order_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(Shipment::from_row).transpose()?)
    }

    /// An order with its shipment, if any.
    pub async fn order_status(&self, order_id: &str) -> Result<Option<(Order, Option<Shipment>)>, StoreError> {
        let Some(order) = self.order(order_id).await? else { return Ok(None) };
        let shipment = self.shipment_for_order(order_id).await?;
        Ok(Some((order, shipment)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_normalised() {
        assert_eq!(normalize_destination("  12  main st,\n seattle, wa 98101 "), "12 Main St, Seattle, WA 98101");
        assert_eq!(normalize_destination("1 MAIN STREET, PORTLAND OR"), "1 Main Street, Portland OR");
        assert_eq!(normalize_destination("5 walk in lane, london sw1a 1aa, uk"), "5 Walk In Lane, London SW1A 1AA, UK");
        assert_eq!(normalize_destination("po box 7, o'neil-smith road"), "PO Box 7, O'Neil-Smith Road");
        assert_eq!(normalize_destination(""), "");
    }

    #[test]
    fn destinations_are_checked() {
        assert!(matches!(check_destination(""), Err(ShipmentError::BadDestination(m)) if m.contains("empty")));
        assert!(matches!(check_destination("Paris"), Err(ShipmentError::BadDestination(m)) if m.contains("too short")));
        assert!(
            matches!(check_destination("12 345678"), Err(ShipmentError::BadDestination(m)) if m.contains("no street"))
        );
        assert!(check_destination("12 Main St, Seattle").is_ok());
    }

    #[test]
    fn delivery_dates_skip_weekends() {
        // 2024-03-01 was a Friday: three business days on is Wednesday the 6th.
        let friday = 1_709_294_400_000; // 2024-03-01T12:00Z
        assert_eq!(delivery_date(friday, 3), "2024-03-06");
        assert_eq!(delivery_date(0, 0), "1970-01-01");
        // 2024-02-28 (Wednesday) + 1 → Thursday the 29th (leap day).
        assert_eq!(delivery_date(1_709_121_600_000, 1), "2024-02-29");
    }
}
