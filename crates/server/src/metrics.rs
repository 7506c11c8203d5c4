//! Prometheus metrics, served as text at `GET /metrics`.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Sessions open now.
    pub sessions_active: IntGauge,
    /// Sessions opened since start, by dialect.
    pub sessions_total: IntCounterVec,
    /// Connections refused, by reason (`unauthorized`, `capacity`, `not_found`).
    pub refused_total: IntCounterVec,
    /// Client events received.
    pub client_events_total: IntCounter,
    /// Server events sent.
    pub server_events_total: IntCounter,
    /// `error` events sent, by code.
    pub errors_total: IntCounterVec,
    /// Time from receiving a client frame to having sent every event it caused.
    pub handle_seconds: Histogram,
    /// Events the relay passed on, by direction (`client`, `upstream`) and type.
    pub relay_events_total: IntCounterVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let sessions_active =
            IntGauge::new("brazen_sessions_active", "Realtime sessions open now").expect("valid metric");
        let sessions_total =
            IntCounterVec::new(Opts::new("brazen_sessions_total", "Realtime sessions opened"), &["dialect"])
                .expect("valid metric");
        let refused_total =
            IntCounterVec::new(Opts::new("brazen_connections_refused_total", "Connections refused"), &["reason"])
                .expect("valid metric");
        let client_events_total =
            IntCounter::new("brazen_client_events_total", "Client events received").expect("valid metric");
        let server_events_total =
            IntCounter::new("brazen_server_events_total", "Server events sent").expect("valid metric");
        let errors_total = IntCounterVec::new(Opts::new("brazen_error_events_total", "error events sent"), &["code"])
            .expect("valid metric");
        let handle_seconds = Histogram::with_opts(
            HistogramOpts::new("brazen_event_handle_seconds", "Client frame in to its events sent")
                .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1]),
        )
        .expect("valid metric");
        let relay_events_total = IntCounterVec::new(
            Opts::new("brazen_relay_events_total", "Events relayed to and from Voice Live"),
            &["direction", "type"],
        )
        .expect("valid metric");
        for m in [
            Box::new(sessions_active.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(sessions_total.clone()),
            Box::new(refused_total.clone()),
            Box::new(client_events_total.clone()),
            Box::new(server_events_total.clone()),
            Box::new(errors_total.clone()),
            Box::new(handle_seconds.clone()),
            Box::new(relay_events_total.clone()),
        ] {
            registry.register(m).expect("metric names are unique");
        }
        Metrics {
            registry,
            sessions_active,
            sessions_total,
            refused_total,
            client_events_total,
            server_events_total,
            errors_total,
            handle_seconds,
            relay_events_total,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What the runtime reports, counted.
impl brazen_runtime::Observer for Metrics {
    fn session_admitted(&self) {
        self.sessions_active.inc();
    }

    fn session_released(&self) {
        self.sessions_active.dec();
    }

    fn session_opened(&self, dialect: brazen_protocol::Dialect) {
        self.sessions_total.with_label_values(&[dialect.name()]).inc();
    }

    fn client_event(&self) {
        self.client_events_total.inc();
    }

    fn server_event(&self, error: Option<&'static str>) {
        self.server_events_total.inc();
        if let Some(code) = error {
            self.errors_total.with_label_values(&[code]).inc();
        }
    }

    fn handled(&self, elapsed: std::time::Duration) {
        self.handle_seconds.observe(elapsed.as_secs_f64());
    }
}
