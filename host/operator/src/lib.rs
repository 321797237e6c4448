//! The Orbit operator: reconciles `OrbitCluster` resources
//! (`orbit.turingworks.com/v1`) into the objects that run the Orbit storage
//! host, validating each resource with the same translator plugin the
//! server runs. See `DESIGN.md`.

pub mod crd;
pub mod crd_gen;
pub mod offline;
pub mod reconcile;
pub mod render;
pub mod settings_schema;
pub mod telemetry;
pub mod translate;
