-- brazen's first schema. Portable SQL for SQLite and PostgreSQL: text ids made in Rust, money in
-- integer cents, times as BIGINT unix milliseconds, dates as 'YYYY-MM-DD' text.

CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    description TEXT NOT NULL,
    image TEXT NOT NULL,
    stock BIGINT NOT NULL CHECK (stock >= 0)
);
CREATE INDEX IF NOT EXISTS products_by_category ON products (category, price_cents);

CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products (id),
    product_name TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    total_cents BIGINT NOT NULL CHECK (total_cents = unit_price_cents * quantity),
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    conversation_id TEXT
);
CREATE INDEX IF NOT EXISTS orders_by_created ON orders (created_at);

CREATE TABLE IF NOT EXISTS shipments (
    tracking_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE REFERENCES orders (id),
    destination TEXT NOT NULL,
    carrier TEXT NOT NULL,
    status TEXT NOT NULL,
    estimated_delivery TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS shipments_by_created ON shipments (created_at);

CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX IF NOT EXISTS conversations_by_started ON conversations (started_at);

CREATE TABLE IF NOT EXISTS conversation_entries (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    role TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    call_id TEXT,
    text TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE IF NOT EXISTS call_analyses (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    call_reason TEXT,
    customer_satisfaction TEXT,
    customer_sentiment TEXT,
    rating BIGINT,
    rating_justification TEXT,
    product TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS call_analyses_by_status ON call_analyses (status);
