//! Kafka's IncrementalAlterConfigs (KIP-339) through librdkafka's C API: rust-rdkafka 0.39 wraps
//! only the older AlterConfigs, which replaces a topic's whole set of settings (resetting every
//! key it does not name, e.g. one an operator set by hand) and which some brokers (tansu) do not
//! serve. The incremental call sets exactly the keys given and leaves the rest.

#[cfg(feature = "test-hooks")]
pub mod test_hooks;

use std::ffi::{CStr, CString, c_char};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::ClientContext;
use rdkafka_sys as rd;
use rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;

#[derive(Debug, thiserror::Error)]
pub enum AlterError {
    #[error("{what} {value:?} contains a NUL byte")]
    Nul { what: &'static str, value: String },
    #[error("setting {key} of topic {topic}: {reason}")]
    Setting { topic: String, key: String, reason: String },
    #[error("no answer from the broker within {0:?}")]
    Timeout(Duration),
    #[error("the broker refused the request: {0}")]
    Request(String),
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
}

/// One topic's settings to set: (key, value) pairs.
pub struct TopicChange {
    pub topic: String,
    pub set: Vec<(String, String)>,
}

/// Sets every change's keys on its topic and leaves the topics' other settings as they are.
/// Blocks the calling thread for the broker's answer, `timeout` at most (an admin command's call).
pub fn set_topic_configs<C: ClientContext>(
    admin: &AdminClient<C>,
    changes: &[TopicChange],
    timeout: Duration,
) -> Result<(), AlterError> {
    if changes.is_empty() {
        return Ok(());
    }
    let rk = admin.inner().native_ptr();
    let mut resources = Resources(Vec::with_capacity(changes.len()));
    for change in changes {
        let name = c_string("topic", &change.topic)?;
        // SAFETY: `name` is a valid C string for the call; librdkafka copies it.
        let resource = unsafe {
            rd::rd_kafka_ConfigResource_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name.as_ptr(),
            )
        };
        resources.0.push(resource);
        for (key, value) in &change.set {
            let (k, v) = (c_string("key", key)?, c_string("value", value)?);
            // SAFETY: `resource` was just created and is owned by `resources`; the strings are
            // valid for the call and copied by librdkafka.
            let error = unsafe {
                rd::rd_kafka_ConfigResource_add_incremental_config(
                    resource,
                    k.as_ptr(),
                    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                    v.as_ptr(),
                )
            };
            if !error.is_null() {
                // SAFETY: a non-null error is ours to read once and destroy.
                let reason = unsafe {
                    let reason = text(rd::rd_kafka_error_string(error));
                    rd::rd_kafka_error_destroy(error);
                    reason
                };
                return Err(AlterError::Setting { topic: change.topic.clone(), key: key.clone(), reason });
            }
        }
    }

    // SAFETY: `rk` is the admin client's live handle (borrowed for this call); the queue is
    // destroyed by `Queue`'s drop before this function returns.
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk) });
    // SAFETY: the resources stay alive (owned by `resources`) for the call, which copies them;
    // null options mean librdkafka's defaults; the result arrives on `queue`.
    unsafe {
        rd::rd_kafka_IncrementalAlterConfigs(
            rk,
            resources.0.as_mut_ptr(),
            resources.0.len(),
            std::ptr::null(),
            queue.0,
        )
    };
    let wait_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `queue.0` is a live queue; the event returned (if any) is owned by `Event`.
    let event = Event(unsafe { rd::rd_kafka_queue_poll(queue.0, wait_ms) });
    if event.0.is_null() {
        return Err(AlterError::Timeout(timeout));
    }
    // SAFETY: `event.0` is a live event until `event` drops, after every read below.
    unsafe {
        if rd::rd_kafka_event_error(event.0) != RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(AlterError::Request(text(rd::rd_kafka_event_error_string(event.0))));
        }
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.0);
        if result.is_null() {
            return Err(AlterError::Request("not an IncrementalAlterConfigs result".into()));
        }
        let mut count = 0usize;
        let list = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let resource = *list.add(i);
            if rd::rd_kafka_ConfigResource_error(resource) != RD_KAFKA_RESP_ERR_NO_ERROR {
                return Err(AlterError::Topic {
                    topic: text(rd::rd_kafka_ConfigResource_name(resource)),
                    reason: text(rd::rd_kafka_ConfigResource_error_string(resource)),
                });
            }
        }
    }
    Ok(())
}

fn c_string(what: &'static str, value: &str) -> Result<CString, AlterError> {
    CString::new(value).map_err(|_| AlterError::Nul { what, value: value.to_owned() })
}

/// A string librdkafka returned, or "" for null.
///
/// # Safety
/// `s` is null or a NUL-terminated string valid for this call.
unsafe fn text(s: *const c_char) -> String {
    if s.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated, as the caller promises.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

/// The request's config resources, destroyed together.
struct Resources(Vec<*mut rd::rd_kafka_ConfigResource_t>);

impl Drop for Resources {
    fn drop(&mut self) {
        for resource in &self.0 {
            // SAFETY: each was created by `rd_kafka_ConfigResource_new` and is destroyed once.
            unsafe { rd::rd_kafka_ConfigResource_destroy(*resource) };
        }
    }
}

struct Queue(*mut rd::rd_kafka_queue_t);

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created by `rd_kafka_queue_new`, destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) };
    }
}

struct Event(*mut rd::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: returned by `rd_kafka_queue_poll`, destroyed once (null is skipped).
            unsafe { rd::rd_kafka_event_destroy(self.0) };
        }
    }
}
