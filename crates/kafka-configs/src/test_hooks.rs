//! librdkafka's hooks for tests, for the workspace's tests of what a stage does when librdkafka
//! fails in ways a local broker cannot be made to (feature `test-hooks`, a dev-dependency only).

use std::ffi::CString;

use rdkafka::client::{Client, ClientContext};
use rdkafka_sys as rd;

/// Makes `client` fail for good, as an idempotent producer does when its sequence breaks
/// (`rd_kafka_test_fatal_error`, which raises `OUT_OF_ORDER_SEQUENCE_NUMBER` here): every write
/// fails from then on and `fatal_error()` reports `reason`. Returns whether librdkafka raised it
/// (it refuses a second one).
pub fn fail_for_good<C: ClientContext>(client: &Client<C>, reason: &str) -> bool {
    let reason = CString::new(reason.replace('\0', " ")).expect("NUL bytes replaced");
    // SAFETY: `client`'s handle is live for the call (borrowed) and `reason` is a valid C string
    // that librdkafka copies.
    let raised = unsafe {
        rd::rd_kafka_test_fatal_error(
            client.native_ptr(),
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason.as_ptr(),
        )
    };
    raised == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
}
