//! Generated protobuf types, compiled once for every crate of the workspace.

pub mod envelope {
    pub mod v1 {
        tonic::include_proto!("synap.envelope.v1");
    }
}

pub mod pipeline {
    pub mod v1 {
        tonic::include_proto!("synap.pipeline.v1");
    }
}

pub mod control {
    pub mod v1 {
        tonic::include_proto!("synap.control.v1");
    }
}

/// The encoded file descriptor set of every proto above, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("synap_descriptor");
pub use prost_types::Timestamp;
