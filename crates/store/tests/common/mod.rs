//! Runs each test body against SQLite and PostgreSQL.

use brazen_store::{NewProduct, Store};

/// `backends!(name, ...)` makes a module per test with a `sqlite` and a `postgres` test, each
/// calling `name(&TestDb, &Store)` on a fresh database. Without `BRAZEN_TEST_POSTGRES_URL` the
/// PostgreSQL variant prints a SKIPPED note (scripts/test always sets it).
#[macro_export]
macro_rules! backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = brazen_store::testing::TestDb::sqlite();
                let store = db.open().await.expect("open SQLite");
                super::$name(&db, &store).await;
                store.close().await;
                db.finish().await.expect("remove database");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = brazen_store::testing::TestDb::postgres(concat!(module_path!(), "::postgres"))
                    .await
                    .expect("create PostgreSQL database")
                else {
                    return;
                };
                let store = db.open().await.expect("open PostgreSQL");
                super::$name(&db, &store).await;
                store.close().await;
                db.finish().await.expect("drop database");
            }
        }
    )*};
}

/// A product for tests.
pub fn product(id: &str, category: &str, price_cents: i64, stock: i64) -> NewProduct {
    NewProduct {
        id: id.into(),
        name: format!("Product {id}"),
        category: category.into(),
        price_cents,
        description: format!("The test product {id}."),
        image: format!("/images/products/{id}.svg"),
        stock,
    }
}

/// Stock of one product.
#[allow(dead_code)] // not every test file uses it
pub async fn stock(store: &Store, id: &str) -> i64 {
    store.product(id).await.expect("query").expect("product exists").stock
}
