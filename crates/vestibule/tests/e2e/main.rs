//! End-to-end tests: the real `vestibule` binary on loopback, real echo backends, real
//! HTTP/1.1, HTTP/2 and WebSocket clients.

mod annotations;
mod annotations_external_auth;
mod annotations_rewrite;
mod backend_protocol;
mod bad_input;
mod balancing;
mod canary;
mod check;
mod cluster;
mod debug_routes;
mod http2_abuse;
mod observability;
mod otlp;
mod passthrough;
mod proxying;
mod rate_limits;
mod reload;
mod resilience;
mod routing;
mod shutdown;
mod smuggling;
mod support;
mod tls;
