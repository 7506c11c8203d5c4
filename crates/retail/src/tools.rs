//! The retail agent's seven server-side tools, with the seed sample's names and parameters.
//!
//! Every output is a JSON string. A request the shop cannot serve (an unknown category, product
//! or order, bad arguments, too little stock, an unusable address) is answered with
//! [`ToolEvent::Done`] holding `{"error": "<what is wrong and what to ask>", …}` (with extra
//! fields that help the model recover, e.g. `categories`); a tool that breaks (the database or
//! knowledge base fails, no analysis model) ends with [`ToolEvent::Failed`], which the engine
//! hands the model as `{"error": "<text>"}` — the same shape.

use crate::analysis::{analyse, analysis_json, render_call_log};
use crate::catalog::{CATEGORIES, normalize_order_id, normalize_product_id, resolve_category};
use brazen_protocol::Tool;
use brazen_providers::{EngineStream, Knowledge, Llm, ToolCall, ToolEvent, ToolSpec, Tools};
use brazen_store::{Entry, EntryKind, EntryRole, OrderError, ProductFilter, ShipmentError, Store, now_ms};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// At most this many products are listed per answer.
pub const MAX_LISTED: usize = 8;

/// How many passages the knowledge search returns.
pub const QNA_PASSAGES: usize = 3;

/// The timeout of the database tools.
pub const DB_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeout of the knowledge search.
pub const QNA_TIMEOUT: Duration = Duration::from_secs(10);

/// The timeout of a call analysis.
pub const ANALYSIS_TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// The tools' names.
pub mod names {
    /// Lists a category's products.
    pub const GET_PRODUCTS_BY_CATEGORY: &str = "get_products_by_category";
    /// Lists a category's products up to a price.
    pub const SEARCH_PRODUCTS: &str = "search_products_by_category_and_price";
    /// Places an order.
    pub const ORDER_PRODUCTS: &str = "order_products";
    /// Ships an order.
    pub const CREATE_DELIVERY_ORDER: &str = "create_delivery_order";
    /// Searches the shop's documents.
    pub const QNA: &str = "perform_search_based_qna";
    /// Analyses a call log.
    pub const CALL_LOG_ANALYSIS: &str = "perform_call_log_analysis";
    /// Looks up an order and its shipment.
    pub const GET_ORDER_STATUS: &str = "get_order_status";
}

/// The retail tools over a store, an optional knowledge base (for `perform_search_based_qna`)
/// and an optional model (for `perform_call_log_analysis`). Cheap to clone.
#[derive(Clone)]
pub struct RetailTools {
    store: Store,
    knowledge: Option<Arc<dyn Knowledge>>,
    analyst: Option<Arc<dyn Llm>>,
    conversation_id: Option<String>,
}

/// What a tool answers: `Ok` output, or `Err` for a tool that broke (→ `ToolEvent::Failed`).
type Answer = Result<Value, String>;

/// A request the shop cannot serve: `{"error": message}`.
fn refusal(message: impl Into<String>) -> Answer {
    Ok(json!({ "error": message.into() }))
}

fn category_schema() -> Value {
    json!({
        "type": "string",
        "enum": CATEGORIES,
        "description": "The product category: Apparel (t-shirts, hoodies, jeans, trousers, shorts, casual shirts), \
                        Garments (dresses, skirts, blouses, cardigans), Winter wear (coats, jackets, parkas, beanies, \
                        gloves, warm scarves, jumpers, boots), Stockings (tights, stockings, socks), Active wear \
                        (gym, running, yoga and cycling clothes, leggings, sports bras), Swim wear (swimsuits, \
                        bikinis, swim shorts), Formal wear (suits, blazers, gowns, cocktail dresses, bow ties), \
                        Accessories (bags, belts, jewellery, sun hats, caps, silk scarves, backpacks)."
    })
}

fn spec(name: &str, description: &str, properties: Value, required: &[&str], timeout: Duration) -> ToolSpec {
    ToolSpec {
        definition: Tool {
            name: name.into(),
            description: description.into(),
            parameters: json!({"type": "object", "properties": properties, "required": required}),
        },
        timeout,
    }
}

/// The arguments object of a call, or a refusal saying what is wrong with it.
fn arguments(call: &ToolCall) -> Result<Map<String, Value>, String> {
    let text = call.arguments.trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(format!("The arguments of {} must be a JSON object; got {other}.", call.name)),
        Err(e) => Err(format!("The arguments of {} are not valid JSON: {e}.", call.name)),
    }
}

/// A required string argument (numbers are accepted and written as text).
fn string_arg(args: &Map<String, Value>, key: &str) -> Result<String, String> {
    match args.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(_)) | Some(Value::Null) | None => Err(format!("The argument '{key}' is missing or empty.")),
        Some(other) => Err(format!("The argument '{key}' must be a string; got {other}.")),
    }
}

/// A required number argument (`"50"`, `"$49.99"` accepted).
fn number_arg(args: &Map<String, Value>, key: &str) -> Result<f64, String> {
    let n = match args.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().trim_start_matches('$').replace(',', "").trim().parse::<f64>().ok(),
        None | Some(Value::Null) => return Err(format!("The argument '{key}' is missing.")),
        Some(_) => None,
    };
    match n {
        Some(n) if n.is_finite() => Ok(n),
        _ => Err(format!("The argument '{key}' must be a number; got {}.", args.get(key).unwrap_or(&Value::Null))),
    }
}

/// A required whole-number argument (`2`, `2.0`, `"2"` accepted).
fn integer_arg(args: &Map<String, Value>, key: &str) -> Result<i64, String> {
    let n = number_arg(args, key)?;
    if n.fract() != 0.0 || n.abs() > 1e9 {
        return Err(format!("The argument '{key}' must be a whole number; got {n}."));
    }
    Ok(n as i64)
}

/// `{"error", "categories"}` for a category that fits none.
fn unknown_category(given: &str) -> Answer {
    Ok(json!({
        "error": format!("There is no category '{given}'. Use one of the categories listed."),
        "categories": CATEGORIES,
    }))
}

fn dollars(cents: i64) -> Value {
    json!(cents as f64 / 100.0)
}

impl RetailTools {
    /// The tools over `store`, with the knowledge base and analysis model when there are any
    /// (without them, those two tools answer with an error).
    pub fn new(store: Store, knowledge: Option<Arc<dyn Knowledge>>, analyst: Option<Arc<dyn Llm>>) -> RetailTools {
        RetailTools { store, knowledge, analyst, conversation_id: None }
    }

    /// The same tools, recording `conversation_id` on the orders they place.
    pub fn for_conversation(&self, conversation_id: impl Into<String>) -> RetailTools {
        RetailTools { conversation_id: Some(conversation_id.into()), ..self.clone() }
    }

    /// Runs one call to its answer (what [`Tools::call`] streams).
    pub async fn run(&self, call: &ToolCall) -> ToolEvent {
        let args = match arguments(call) {
            Ok(a) => a,
            Err(e) => return ToolEvent::Done(json!({ "error": e }).to_string()),
        };
        let answer = match call.name.as_str() {
            names::GET_PRODUCTS_BY_CATEGORY => self.products_by_category(&args).await,
            names::SEARCH_PRODUCTS => self.search_products(&args).await,
            names::ORDER_PRODUCTS => self.order_products(&args).await,
            names::CREATE_DELIVERY_ORDER => self.create_delivery_order(&args).await,
            names::QNA => self.qna(&args).await,
            names::CALL_LOG_ANALYSIS => self.call_log_analysis(&args).await,
            names::GET_ORDER_STATUS => self.order_status(&args).await,
            other => Err(format!("There is no retail tool named '{other}'.")),
        };
        match answer {
            Ok(v) => ToolEvent::Done(v.to_string()),
            Err(e) => ToolEvent::Failed(e),
        }
    }

    /// A product list answer: at most [`MAX_LISTED`], cheapest first, with how many matched.
    async fn list(&self, category: &'static str, max_price_cents: Option<i64>) -> Answer {
        let page = self
            .store
            .products(&ProductFilter {
                category: Some(category.into()),
                max_price_cents,
                limit: MAX_LISTED as i64,
                offset: 0,
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut out = json!({
            "category": category,
            "matched": page.total,
            "shown": page.items.len(),
            "products": page.items.iter().map(|p| p.tool_json()).collect::<Vec<_>>(),
        });
        if let Some(max) = max_price_cents {
            out["max_price"] = dollars(max);
        }
        if page.total > page.items.len() as i64 {
            out["note"] = json!(format!(
                "Showing the {} cheapest of {} products; a lower price narrows the list.",
                page.items.len(),
                page.total
            ));
        } else if page.total == 0
            && let Some(max) = max_price_cents
        {
            let cheapest = self
                .store
                .products(&ProductFilter { category: Some(category.into()), limit: 1, ..Default::default() })
                .await
                .map_err(|e| e.to_string())?;
            if let Some(p) = cheapest.items.first() {
                out["note"] = json!(format!(
                    "No {category} product costs ${:.2} or less; the cheapest is {} ({}) at ${:.2}.",
                    max as f64 / 100.0,
                    p.name,
                    p.id,
                    p.price_cents as f64 / 100.0
                ));
            }
        }
        Ok(out)
    }

    async fn products_by_category(&self, args: &Map<String, Value>) -> Answer {
        let given = match string_arg(args, "category") {
            Ok(c) => c,
            Err(e) => return Ok(json!({"error": e, "categories": CATEGORIES})),
        };
        match resolve_category(&given) {
            Some(category) => self.list(category, None).await,
            None => unknown_category(&given),
        }
    }

    async fn search_products(&self, args: &Map<String, Value>) -> Answer {
        let given = match string_arg(args, "category") {
            Ok(c) => c,
            Err(e) => return Ok(json!({"error": e, "categories": CATEGORIES})),
        };
        let Some(category) = resolve_category(&given) else { return unknown_category(&given) };
        let price = match number_arg(args, "price") {
            Ok(p) => p,
            Err(e) => return refusal(e),
        };
        if price <= 0.0 {
            return refusal(format!("The maximum price must be above 0; got {price}."));
        }
        let cents = (price * 100.0).round().min(1e12) as i64;
        self.list(category, Some(cents)).await
    }

    async fn order_products(&self, args: &Map<String, Value>) -> Answer {
        let product_id = match string_arg(args, "product_id") {
            Ok(id) => normalize_product_id(&id),
            Err(e) => return refusal(e),
        };
        let quantity = match integer_arg(args, "quantity") {
            Ok(q) => q,
            Err(e) => return refusal(e),
        };
        match self.store.place_order(&product_id, quantity, self.conversation_id.as_deref()).await {
            Ok(order) => Ok(order.tool_json()),
            Err(OrderError::UnknownProduct(id)) => refusal(format!(
                "There is no product with id '{id}'. Product ids look like P001; list a category to find one."
            )),
            Err(e @ OrderError::BadQuantity(_)) => refusal(e.to_string()),
            Err(OrderError::OutOfStock { product_id, name, available, requested }) => Ok(json!({
                "error": if available == 0 {
                    format!("{name} ({product_id}) is out of stock.")
                } else {
                    format!("Only {available} of {name} ({product_id}) are in stock; {requested} were asked for.")
                },
                "in_stock": available,
            })),
            Err(OrderError::Store(e)) => Err(e.to_string()),
        }
    }

    async fn create_delivery_order(&self, args: &Map<String, Value>) -> Answer {
        let order_id = match string_arg(args, "order_id") {
            Ok(id) => normalize_order_id(&id),
            Err(e) => return refusal(e),
        };
        let destination = match args.get("destination") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => return refusal("The argument 'destination' is missing."),
            Some(other) => return refusal(format!("The argument 'destination' must be a string; got {other}.")),
        };
        match self.store.create_shipment(&order_id, &destination).await {
            Ok(shipment) => Ok(shipment.tool_json()),
            Err(ShipmentError::UnknownOrder(id)) => refusal(format!(
                "There is no order with id '{id}'. Order ids look like ORD_ and eight letters or digits."
            )),
            Err(ShipmentError::BadDestination(m)) => refusal(m),
            Err(ShipmentError::Store(e)) => Err(e.to_string()),
        }
    }

    async fn order_status(&self, args: &Map<String, Value>) -> Answer {
        let order_id = match string_arg(args, "order_id") {
            Ok(id) => normalize_order_id(&id),
            Err(e) => return refusal(e),
        };
        match self.store.order_status(&order_id).await.map_err(|e| e.to_string())? {
            Some((order, shipment)) => Ok(json!({
                "order": order.tool_json(),
                "shipment": shipment.map(|s| s.tool_json()),
            })),
            None => refusal(format!(
                "There is no order with id '{order_id}'. Order ids look like ORD_ and eight letters or digits."
            )),
        }
    }

    async fn qna(&self, args: &Map<String, Value>) -> Answer {
        let query = match string_arg(args, "query") {
            Ok(q) => q,
            Err(e) => return refusal(e),
        };
        let Some(knowledge) = self.knowledge.clone() else {
            return Err("This shop has no knowledge base to search; answer from what you know or offer to help \
                        otherwise."
                .into());
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("The knowledge search needs the tokio runtime.".into());
        }
        let q = query.clone();
        let found = tokio::task::spawn_blocking(move || knowledge.search(&q, QNA_PASSAGES))
            .await
            .map_err(|e| format!("The knowledge search stopped: {e}"))?
            .map_err(|e| format!("The knowledge search failed: {e}"))?;
        if found.is_empty() {
            return Ok(json!({"query": query, "passages": [], "note": "Nothing in the shop's documents matches."}));
        }
        Ok(json!({
            "query": query,
            "passages": found.iter().map(|p| json!({
                "source": p.source,
                "title": p.title,
                "text": p.text,
            })).collect::<Vec<_>>(),
        }))
    }

    async fn call_log_analysis(&self, args: &Map<String, Value>) -> Answer {
        let call_log = match args.get("call_log") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(v @ (Value::Array(_) | Value::Object(_))) => v.to_string(),
            _ => return refusal("The argument 'call_log' is missing or empty; pass the call's transcript."),
        };
        let Some(analyst) = self.analyst.clone() else {
            return Err("No model is configured for call analysis.".into());
        };
        let transcript = render_call_log(&call_log);
        // The on-demand analysis is kept like a session's: a conversation holding the call log.
        let id = format!("calllog_{}", now_ms());
        let id = format!("{id}_{:08x}", rand_suffix());
        let at = now_ms();
        let stored = async {
            self.store
                .start_conversation(&id, self.conversation_id.as_deref().unwrap_or("call_log"), "call_log", at)
                .await?;
            let entry = Entry {
                seq: 0,
                at_ms: at,
                role: EntryRole::User,
                kind: EntryKind::Message,
                name: None,
                call_id: None,
                text: transcript.clone(),
            };
            self.store.append_entry(&id, &entry).await?;
            self.store.end_conversation(&id, at).await
        };
        stored.await.map_err(|e| e.to_string())?;
        match analyse(analyst.as_ref(), &transcript).await {
            Ok(analysis) => {
                self.store.record_analysis(&id, &analysis).await.map_err(|e| e.to_string())?;
                let mut out = analysis_json(&analysis);
                out["conversation_id"] = json!(id);
                Ok(out)
            }
            Err(e) => {
                self.store.record_analysis_failure(&id, &e).await.map_err(|e| e.to_string())?;
                Err(format!("The call analysis failed: {e}"))
            }
        }
    }
}

/// A few random bits for ids (from the clock and an address; uniqueness comes with the time).
fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    nanos.rotate_left(13) ^ n.wrapping_mul(0x9e37_79b9) ^ std::process::id()
}

/// The seven tools' definitions (name, description, JSON Schema) and timeouts: what
/// [`RetailTools`] offers, without a store (e.g. to evaluate a model's calls).
pub fn tool_specs() -> Vec<ToolSpec> {
    vec![
        spec(
            names::GET_PRODUCTS_BY_CATEGORY,
            "List the products of one category (up to 8, cheapest first) with id, name, price and stock. \
                 Use it when the customer asks what the shop sells in a category.",
            json!({"category": category_schema()}),
            &["category"],
            DB_TIMEOUT,
        ),
        spec(
            names::SEARCH_PRODUCTS,
            "List the products of one category that cost at most a price (up to 8, cheapest first). \
                 Use it when the customer gives a budget.",
            json!({
                "category": category_schema(),
                "price": {"type": "number", "description": "The highest price in dollars."}
            }),
            &["category", "price"],
            DB_TIMEOUT,
        ),
        spec(
            names::ORDER_PRODUCTS,
            "Order a product the customer chose from the listed products, by its id, as soon as they \
                 say they want it. Returns the order with its OrderId and Total, or an error such as too little \
                 stock.",
            json!({
                "product_id": {"type": "string", "description": "The product id, like P001."},
                "quantity": {"type": "integer", "description": "How many they want (1 to 100; 1 when they do \
                             not say, 2 for a couple)."}
            }),
            &["product_id", "quantity"],
            DB_TIMEOUT,
        ),
        spec(
            names::CREATE_DELIVERY_ORDER,
            "Ship an order to an address once the customer has confirmed it. Returns the TrackingId and \
                 EstimatedDelivery date.",
            json!({
                "order_id": {"type": "string", "description": "The order id, like ORD_12AB34CD."},
                "destination": {"type": "string", "description": "The full delivery address: street, city, postcode."}
            }),
            &["order_id", "destination"],
            DB_TIMEOUT,
        ),
        spec(
            names::QNA,
            "Search the shop's policies and guides and return the 3 best passages. Use it for every question \
                 about returns, refunds, exchanges, shipping and delivery, warranty, payment, gift cards, rewards, \
                 sizes and fit, care of clothes, store hours or privacy.",
            json!({"query": {"type": "string", "description": "The customer's question, in their words."}}),
            &["query"],
            QNA_TIMEOUT,
        ),
        spec(
            names::CALL_LOG_ANALYSIS,
            "Analyse a call log and store the result: reason, satisfaction, sentiment, rating 1 to 5. \
                 Use it only when asked to log or analyse a call.",
            json!({"call_log": {"type": "string", "description": "The call's transcript."}}),
            &["call_log"],
            ANALYSIS_TOOL_TIMEOUT,
        ),
        spec(
            names::GET_ORDER_STATUS,
            "Look up an order the customer placed, by its id: the order and its shipment, if shipped. Use it \
                 when the customer asks where an order is, whether it has shipped or when it arrives.",
            json!({"order_id": {"type": "string", "description": "The order id, like ORD_12AB34CD (customers may \
                                 spell it out)."}}),
            &["order_id"],
            DB_TIMEOUT,
        ),
    ]
}

impl Tools for RetailTools {
    fn specs(&self) -> Vec<ToolSpec> {
        tool_specs()
    }

    fn call(&self, call: ToolCall) -> EngineStream<ToolEvent> {
        // Orders record the session they were placed in, unless these tools name one already.
        let tools = match &self.conversation_id {
            None if !call.session_id.is_empty() => self.for_conversation(call.session_id.clone()),
            _ => self.clone(),
        };
        // The work runs inside the stream: dropping it drops the future, and with it any
        // transaction not yet committed (sqlx rolls a dropped transaction back).
        Box::pin(futures_util::stream::once(async move { tools.run(&call).await }))
    }
}
