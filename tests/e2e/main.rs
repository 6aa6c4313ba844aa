//! End-to-end tests. Each test starts its own stack (see `synap_tests::Stack`).

mod bench_smoke;
mod cli;
mod control;
mod control_access;
mod control_outbound;
mod control_routing;
mod control_support;
mod crash;
mod dead_letters;
mod delivery;
mod delivery_api;
mod delivery_isolation;
mod delivery_retries;
mod delivery_support;
mod set_aside;
mod storage;
mod support;
mod telemetry;
mod telemetry_logs;
mod test_send;
mod tls;
