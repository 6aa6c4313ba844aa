//! End-to-end tests. Each test starts its own stack (see `synap_tests::Stack`).

mod dead_letters;
mod delivery;
mod support;
mod telemetry;
mod telemetry_logs;
mod tls;
