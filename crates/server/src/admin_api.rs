//! The agent's data, read over HTTP: products (with their pictures), orders, shipments, and
//! conversations with their transcripts and call analyses. Lists are paged (`limit` ≤ 500,
//! `offset`) as `{items, total, limit, offset}`; the routes need the API key when the server has
//! keys. Without an agent (`agent = "none"`) there is no database and they answer 404.

// A refusal here is the HTTP response itself, made once per request.
#![allow(clippy::result_large_err)]

use crate::app::{AppState, json_error};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brazen_store::{Page, ProductFilter, Store};
use serde::Deserialize;
use std::sync::Arc;

/// Paging and filters of a list request.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size (1–500; default 50).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
    /// Products only: this category (any spelling the tools accept).
    category: Option<String>,
    /// Products only: costing at most this many dollars.
    max_price: Option<f64>,
    /// A key given in the query (`?api-key=`), as the other routes take it.
    #[serde(rename = "api-key")]
    #[param(rename = "api-key")]
    _api_key: Option<String>,
}

impl ListQuery {
    fn page(&self) -> Result<(i64, i64), Response> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(1..=500).contains(&limit) {
            return Err(json_error(StatusCode::BAD_REQUEST, "invalid_limit", "'limit' must be 1 to 500."));
        }
        if offset < 0 {
            return Err(json_error(StatusCode::BAD_REQUEST, "invalid_offset", "'offset' must be 0 or more."));
        }
        Ok((limit, offset))
    }
}

/// The store, once the caller is admitted.
fn store_for(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> Result<Store, Response> {
    if !state.authenticated(headers, query) {
        return Err(json_error(StatusCode::UNAUTHORIZED, "unauthorized", "Missing or invalid API key."));
    }
    state.store.clone().ok_or_else(|| {
        json_error(
            StatusCode::NOT_FOUND,
            "no_agent",
            "This server runs no agent (agent = \"none\"), so it keeps no data.",
        )
    })
}

/// A list request, admitted and read: the store, the query, its page size and offset.
fn list_request(
    state: &AppState,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<(Store, ListQuery, i64, i64), Response> {
    let store = store_for(state, headers, raw_query)?;
    let Ok(Query(query)) = query else { return Err(bad_query()) };
    let (limit, offset) = query.page()?;
    Ok((store, query, limit, offset))
}

fn failed(e: impl std::fmt::Display) -> Response {
    json_error(StatusCode::SERVICE_UNAVAILABLE, "database_error", &format!("The database could not be read: {e}"))
}

fn not_found(what: &str, id: &str) -> Response {
    let id: String = id.chars().take(64).collect();
    json_error(StatusCode::NOT_FOUND, "not_found", &format!("There is no {what} '{id}'."))
}

macro_rules! list_route {
    ($(#[$doc:meta])* $name:ident, $call:ident, $path:literal, $item:ty) => {
        $(#[$doc])*
        #[utoipa::path(get, path = $path, params(ListQuery),
            responses((status = 200, body = Page<$item>), (status = 400, description = "bad paging"),
                (status = 401, description = "the key is missing or wrong"), (status = 404, description = "no agent")))]
        pub async fn $name(
            State(state): State<Arc<AppState>>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            query: Result<Query<ListQuery>, QueryRejection>,
        ) -> Response {
            let (store, _, limit, offset) = match list_request(&state, &headers, uri.query(), query) {
                Ok(r) => r,
                Err(refused) => return refused,
            };
            match store.$call(limit, offset).await {
                Ok(page) => axum::Json(page).into_response(),
                Err(e) => failed(e),
            }
        }
    };
}

fn bad_query() -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "Unknown or malformed query parameters: lists take limit, offset (and, for products, category and max_price).",
    )
}

list_route!(
    /// `GET /api/orders`: orders, newest first.
    orders,
    orders,
    "/api/orders",
    brazen_store::Order
);
list_route!(
    /// `GET /api/shipments`: shipments, newest first.
    shipments,
    shipments,
    "/api/shipments",
    brazen_store::Shipment
);
list_route!(
    /// `GET /api/conversations`: conversations, newest first, with their entry counts and
    /// analysis status and rating.
    conversations,
    conversations,
    "/api/conversations",
    brazen_store::ConversationSummary
);

/// `GET /api/products?category=&max_price=`: the catalogue, cheapest first.
#[utoipa::path(get, path = "/api/products", params(ListQuery),
    responses((status = 200, body = Page<brazen_store::Product>), (status = 400, description = "bad paging or filter"),
        (status = 401, description = "the key is missing or wrong"), (status = 404, description = "no agent")))]
pub async fn products(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let (store, query, limit, offset) = match list_request(&state, &headers, uri.query(), query) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let category = match query.category.as_deref() {
        Some(given) => match brazen_retail::resolve_category(given) {
            Some(c) => Some(c.to_owned()),
            None => {
                let message = format!(
                    "Unknown category '{}': the categories are {}.",
                    given.chars().take(40).collect::<String>(),
                    brazen_retail::CATEGORIES.join(", ")
                );
                return json_error(StatusCode::BAD_REQUEST, "invalid_category", &message);
            }
        },
        None => None,
    };
    let max_price_cents = match query.max_price {
        Some(p) if p.is_finite() && p > 0.0 => Some((p * 100.0).round() as i64),
        Some(_) => return json_error(StatusCode::BAD_REQUEST, "invalid_max_price", "'max_price' must be above 0."),
        None => None,
    };
    match store.products(&ProductFilter { category, max_price_cents, limit, offset }).await {
        Ok(page) => axum::Json(page).into_response(),
        Err(e) => failed(e),
    }
}

/// `GET /api/orders/{id}`: one order and its shipment, if it has one.
#[utoipa::path(get, path = "/api/orders/{id}", params(("id" = String, Path, description = "ORD_…")),
    responses((status = 200, body = OrderView), (status = 404, description = "no such order, or no agent")))]
pub async fn order(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let store = match store_for(&state, &headers, uri.query()) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    match store.order_status(&id).await {
        Ok(Some((order, shipment))) => axum::Json(OrderView { order, shipment }).into_response(),
        Ok(None) => not_found("order", &id),
        Err(e) => failed(e),
    }
}

/// An order with its shipment.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The order.
    order: brazen_store::Order,
    /// Its shipment, once one was created.
    shipment: Option<brazen_store::Shipment>,
}

/// `GET /api/conversations/{id}`: the transcript (calls and outputs included) and the analysis.
#[utoipa::path(get, path = "/api/conversations/{id}", params(("id" = String, Path, description = "the session id, sess_…")),
    responses((status = 200, body = brazen_store::ConversationDetail), (status = 404, description = "no such conversation, or no agent")))]
pub async fn conversation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let store = match store_for(&state, &headers, uri.query()) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    match store.conversation(&id).await {
        Ok(Some(detail)) => axum::Json(detail).into_response(),
        Ok(None) => not_found("conversation", &id),
        Err(e) => failed(e),
    }
}

/// `GET /images/products/{id}.svg`: a product's picture (drawn by brazen).
#[utoipa::path(get, path = "/images/products/{file}", params(("file" = String, Path, description = "P001.svg")),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, description = "no such product")))]
pub async fn picture(State(state): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    let Some(store) = state.store.clone() else { return not_found("product", &file) };
    let Some(id) = file.strip_suffix(".svg") else { return not_found("picture", &file) };
    match store.product(id).await {
        Ok(Some(product)) => (
            [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=3600")],
            brazen_retail::picture_svg(&product),
        )
            .into_response(),
        Ok(None) => not_found("product", id),
        Err(e) => failed(e),
    }
}
