//! Every route the gateway answers, in one table: path, method, the
//! credentials it needs and the bodies it takes.
//!
//! The HTTP router is built from this table (`transport::http`), and the
//! middleware decides credentials and content types from the entry a
//! request's path and method match, never from a header the caller chooses:
//! a gRPC content type on an HTTP route, or an HTTP one on a gRPC method,
//! needs the same credentials as the route asks and is then refused (415 /
//! `INVALID_ARGUMENT`). A request that matches no entry is answered 404 (or
//! 405 for a known path) before it reaches any handler, so a route that is
//! served but missing here cannot be reached at all.

use axum::http::Method;

/// The protocol a push came over.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP (text, OpenMetrics or protobuf body).
    Http,
    /// gRPC.
    Grpc,
}

impl Protocol {
    /// The `protocol` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

/// The credentials a route needs (`--auth-users`, `--admin-users`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Anyone: reads, health, reflection.
    Open,
    /// Push users (admin users too): changes that add to the aggregate.
    Push,
    /// Admin users (push users when no admin users are set): deletes, wipe.
    Admin,
}

/// What a route reads from the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Nothing: any `Content-Type` but gRPC's is ignored.
    None,
    /// A push in an exposition format; `Content-Type` names it (absent,
    /// `text/plain` or `application/x-www-form-urlencoded` mean text).
    Exposition,
    /// gRPC messages: `application/grpc` or `application/grpc+proto`.
    Grpc,
    /// An OTLP/HTTP export: `application/x-protobuf`.
    Otlp,
}

/// What answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    /// `GET /metrics`: the aggregate.
    Scrape,
    /// `POST`/`PUT /metrics[/<labels>]`.
    Push,
    /// `DELETE /metrics/<labels>`.
    Delete,
    /// `PUT /api/v1/admin/wipe`.
    Wipe,
    /// `GET /api/v1/status`.
    Status,
    /// `GET /api/v1/families`.
    Families,
    /// `GET /api/v1/series`.
    Series,
    /// `GET /api/v1/cardinality`.
    Cardinality,
    /// `GET /api/v1/groups`.
    Groups,
    /// `GET /api/v1/rejections`.
    Rejections,
    /// `GET /`: the status page.
    Page,
    /// `GET /static/app.js`: the page's script.
    Script,
    /// `GET /static/app.css`: the page's style.
    Style,
    /// `GET /static/favicon.svg`: the page's icon.
    Icon,
    /// `GET /-/metrics`: the gateway's own metrics.
    SelfMetrics,
    /// `GET /-/healthy`.
    Healthy,
    /// `GET /-/ready`.
    Ready,
    /// `POST /v1/metrics`: an OTLP/HTTP metrics export.
    OtlpMetrics,
    /// gRPC `AggregationGateway/Push`.
    GrpcPush,
    /// gRPC `AggregationGateway/PushStream`.
    GrpcPushStream,
    /// OTLP/gRPC `MetricsService/Export`.
    GrpcOtlpExport,
    /// gRPC `grpc.health.v1.Health`.
    GrpcHealth,
    /// gRPC server reflection (v1 and v1alpha).
    GrpcReflection,
}

impl Handler {
    /// A short fixed name, for the self-metrics' `handler` label.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Scrape => "scrape",
            Handler::Push => "push",
            Handler::Delete => "delete",
            Handler::Wipe => "admin",
            Handler::Status => "status",
            Handler::Families => "families",
            Handler::Series => "series",
            Handler::Cardinality => "cardinality",
            Handler::Groups => "groups",
            Handler::Rejections => "rejections",
            Handler::Page | Handler::Script | Handler::Style | Handler::Icon => "page",
            Handler::SelfMetrics => "self_metrics",
            Handler::Healthy | Handler::Ready => "health",
            Handler::OtlpMetrics => "otlp_metrics",
            Handler::GrpcPush => "Push",
            Handler::GrpcPushStream => "PushStream",
            Handler::GrpcOtlpExport => "otlp_export",
            Handler::GrpcHealth => "health",
            Handler::GrpcReflection => "reflection",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Route {
    /// The method (`GET` routes answer `HEAD` too).
    pub method: Method,
    /// The path as axum writes it; `{*labels}` at the end matches one or
    /// more further segments.
    pub path: &'static str,
    /// What answers it.
    pub handler: Handler,
    /// The credentials it needs.
    pub scope: Scope,
    /// What it reads.
    pub body: Body,
}

impl Route {
    /// Whether the route speaks gRPC.
    pub fn protocol(&self) -> Protocol {
        match self.body {
            Body::Grpc => Protocol::Grpc,
            _ => Protocol::Http,
        }
    }

    fn matches_path(&self, path: &str) -> bool {
        match self.path.strip_suffix("{*labels}") {
            Some(prefix) => path.len() > prefix.len() && path.starts_with(prefix),
            None => path == self.path,
        }
    }
}

const fn route(
    method: Method,
    path: &'static str,
    handler: Handler,
    scope: Scope,
    body: Body,
) -> Route {
    Route {
        method,
        path,
        handler,
        scope,
        body,
    }
}

use Body as B;
use Handler as H;
use Scope as S;

/// The routes of `--listen` (and `--grpc-listen`).
pub static MAIN: &[Route] = &[
    route(Method::GET, "/metrics", H::Scrape, S::Open, B::None),
    route(Method::GET, "/metrics/", H::Scrape, S::Open, B::None),
    route(Method::POST, "/metrics", H::Push, S::Push, B::Exposition),
    route(Method::PUT, "/metrics", H::Push, S::Push, B::Exposition),
    route(Method::POST, "/metrics/", H::Push, S::Push, B::Exposition),
    route(Method::PUT, "/metrics/", H::Push, S::Push, B::Exposition),
    route(
        Method::POST,
        "/metrics/{*labels}",
        H::Push,
        S::Push,
        B::Exposition,
    ),
    route(
        Method::PUT,
        "/metrics/{*labels}",
        H::Push,
        S::Push,
        B::Exposition,
    ),
    route(
        Method::DELETE,
        "/metrics/{*labels}",
        H::Delete,
        S::Admin,
        B::None,
    ),
    route(
        Method::PUT,
        "/api/v1/admin/wipe",
        H::Wipe,
        S::Admin,
        B::None,
    ),
    route(Method::GET, "/api/v1/status", H::Status, S::Open, B::None),
    route(
        Method::GET,
        "/api/v1/families",
        H::Families,
        S::Open,
        B::None,
    ),
    route(Method::GET, "/api/v1/series", H::Series, S::Open, B::None),
    route(
        Method::GET,
        "/api/v1/cardinality",
        H::Cardinality,
        S::Open,
        B::None,
    ),
    route(Method::GET, "/api/v1/groups", H::Groups, S::Open, B::None),
    route(
        Method::GET,
        "/api/v1/rejections",
        H::Rejections,
        S::Open,
        B::None,
    ),
    route(Method::GET, "/", H::Page, S::Open, B::None),
    route(Method::GET, "/static/app.js", H::Script, S::Open, B::None),
    route(Method::GET, "/static/app.css", H::Style, S::Open, B::None),
    route(
        Method::GET,
        "/static/favicon.svg",
        H::Icon,
        S::Open,
        B::None,
    ),
    route(
        Method::POST,
        "/v1/metrics",
        H::OtlpMetrics,
        S::Push,
        B::Otlp,
    ),
    route(Method::GET, "/-/metrics", H::SelfMetrics, S::Open, B::None),
    route(Method::GET, "/-/healthy", H::Healthy, S::Open, B::None),
    route(Method::GET, "/healthy", H::Healthy, S::Open, B::None),
    route(Method::GET, "/-/ready", H::Ready, S::Open, B::None),
    route(Method::GET, "/ready", H::Ready, S::Open, B::None),
    route(
        Method::POST,
        "/aggregation_gateway.v1.AggregationGateway/Push",
        H::GrpcPush,
        S::Push,
        B::Grpc,
    ),
    route(
        Method::POST,
        "/aggregation_gateway.v1.AggregationGateway/PushStream",
        H::GrpcPushStream,
        S::Push,
        B::Grpc,
    ),
    route(
        Method::POST,
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        H::GrpcOtlpExport,
        S::Push,
        B::Grpc,
    ),
    route(
        Method::POST,
        "/grpc.health.v1.Health/Check",
        H::GrpcHealth,
        S::Open,
        B::Grpc,
    ),
    route(
        Method::POST,
        "/grpc.health.v1.Health/Watch",
        H::GrpcHealth,
        S::Open,
        B::Grpc,
    ),
    route(
        Method::POST,
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        H::GrpcReflection,
        S::Open,
        B::Grpc,
    ),
    route(
        Method::POST,
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        H::GrpcReflection,
        S::Open,
        B::Grpc,
    ),
];

/// The routes of `--lifecycle-listen`: health and self-metrics, all open.
pub static LIFECYCLE: &[Route] = &[
    route(Method::GET, "/metrics", H::SelfMetrics, S::Open, B::None),
    route(Method::GET, "/-/metrics", H::SelfMetrics, S::Open, B::None),
    route(Method::GET, "/-/healthy", H::Healthy, S::Open, B::None),
    route(Method::GET, "/healthy", H::Healthy, S::Open, B::None),
    route(Method::GET, "/-/ready", H::Ready, S::Open, B::None),
    route(Method::GET, "/ready", H::Ready, S::Open, B::None),
];

/// Why a request matched no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No route has this path.
    NotFound,
    /// Routes have this path, none this method.
    Method,
}

/// The route a request matches: its entry in `table` by path and method.
/// Carried in the request's extensions from the top of the stack down.
#[derive(Debug, Clone, Copy)]
pub struct Matched(pub Result<&'static Route, Miss>);

impl Matched {
    /// The matched route, if any.
    pub fn route(&self) -> Option<&'static Route> {
        self.0.ok()
    }
}

/// Finds the route for `method` and `path` in `table`.
pub fn find(table: &'static [Route], method: &Method, path: &str) -> Matched {
    let method = if *method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let mut path_known = false;
    for r in table {
        if r.matches_path(path) {
            if r.method == *method {
                return Matched(Ok(r));
            }
            path_known = true;
        }
    }
    Matched(Err(if path_known {
        Miss::Method
    } else {
        Miss::NotFound
    }))
}

/// The methods `table` answers on `path`, as a 405's `Allow` header
/// lists them (RFC 9110, 15.5.6): in table order, `HEAD` after `GET`.
pub fn allowed(table: &'static [Route], path: &str) -> String {
    let mut methods: Vec<&str> = Vec::new();
    for r in table.iter().filter(|r| r.matches_path(path)) {
        let names: &[&str] = if r.method == Method::GET {
            &["GET", "HEAD"]
        } else {
            &[r.method.as_str()]
        };
        for name in names {
            if !methods.contains(name) {
                methods.push(name);
            }
        }
    }
    methods.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let h = |m: Method, p: &str| find(MAIN, &m, p).0.map(|r| r.handler);
        assert_eq!(h(Method::GET, "/metrics"), Ok(H::Scrape));
        assert_eq!(h(Method::HEAD, "/metrics"), Ok(H::Scrape));
        assert_eq!(h(Method::POST, "/metrics/job/a"), Ok(H::Push));
        assert_eq!(h(Method::DELETE, "/metrics/job/a"), Ok(H::Delete));
        assert_eq!(h(Method::DELETE, "/metrics"), Err(Miss::Method));
        assert_eq!(h(Method::GET, "/metrics/job/a"), Err(Miss::Method));
        assert_eq!(h(Method::GET, "/api/v1/admin/wipe"), Err(Miss::Method));
        assert_eq!(h(Method::PUT, "/api/v1/admin/wipe/x"), Err(Miss::NotFound));
        assert_eq!(h(Method::GET, "/"), Ok(H::Page));
        assert_eq!(h(Method::POST, "/"), Err(Miss::Method));
        assert_eq!(h(Method::GET, "/x"), Err(Miss::NotFound));
        assert_eq!(allowed(MAIN, "/metrics"), "GET, HEAD, POST, PUT");
        assert_eq!(allowed(MAIN, "/metrics/job/a"), "POST, PUT, DELETE");
        assert_eq!(allowed(MAIN, "/api/v1/admin/wipe"), "PUT");
        assert_eq!(
            h(
                Method::POST,
                "/aggregation_gateway.v1.AggregationGateway/Push"
            ),
            Ok(H::GrpcPush)
        );
        assert_eq!(
            h(Method::POST, "/grpc.health.v1.Health/Other"),
            Err(Miss::NotFound)
        );
    }
}
