//! runmesh's contracts: one module per protobuf package (`runmesh::<domain>::v1`, `google::api`),
//! generated at build time from `proto/`, and the encoded descriptor set that feeds server
//! reflection, the edge's REST transcoder and OpenAPI.

include!(concat!(env!("OUT_DIR"), "/packages.rs"));

/// Every file this crate compiled, with imports and extension options (`google.api.http`) kept.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/runmesh_descriptor.bin"));
