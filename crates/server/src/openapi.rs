//! `GET /openapi.json`: the OpenAPI document of brazen's REST routes (the agent's data and the
//! retail sample's backend API), generated from the handlers and types themselves (utoipa).
//! The Realtime WebSocket speaks its own protocol (README "Protocol compatibility").

use axum::response::IntoResponse;
use utoipa::OpenApi;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "brazen",
        description = "A self-hosted voice agent: the agent's data and the retail sample's backend API."
    ),
    paths(
        crate::app::agent,
        crate::admin_api::products,
        crate::admin_api::orders,
        crate::admin_api::order,
        crate::admin_api::shipments,
        crate::admin_api::conversations,
        crate::admin_api::conversation,
        crate::admin_api::picture,
        crate::retail_api::create,
        crate::retail_api::avatar_offer,
        crate::retail_api::text,
        crate::retail_api::commit_audio,
        crate::retail_api::socket,
    )
)]
pub struct ApiDoc;

/// Serves the document.
pub async fn document() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rest_route_and_its_types_are_described() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for path in
            ["/api/products", "/api/orders/{id}", "/api/conversations/{id}", "/sessions", "/sessions/{id}/avatar-offer"]
        {
            assert!(paths.contains_key(path), "{path} in {:?}", paths.keys().collect::<Vec<_>>());
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for schema in ["Product", "Order", "Shipment", "ConversationDetail", "CallAnalysis", "Detail"] {
            assert!(schemas.contains_key(schema), "{schema} in {:?}", schemas.keys().collect::<Vec<_>>());
        }
        let product = &schemas["Product"]["properties"];
        assert!(product.get("price_cents").is_some() && product.get("stock").is_some(), "{product}");
    }
}
