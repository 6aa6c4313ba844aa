//! End-to-end tests. Each test starts its own stack (see `synap_tests::Stack`).

mod bench_smoke;
mod dead_letters;
mod delivery;
mod support;
