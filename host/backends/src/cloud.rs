//! Object storage (S3, Azure Blob, GCS) lives in `orbit-cloud`; opening it
//! proves the store honours conditional writes (five requests) before the
//! server takes traffic.

use std::sync::Arc;

use orbit_storage::{AzureConfig, BackendConfig, GcpConfig, S3Config, Storage, StorageError};

macro_rules! cloud_backend {
    ($($config:ident => $variant:ident),*) => {$(
        #[async_trait::async_trait]
        impl crate::Backend for $config {
            async fn open(&self) -> Result<Arc<dyn Storage>, StorageError> {
                orbit_cloud::open_checked(&BackendConfig::$variant(self.clone())).await
            }
        }
    )*};
}

cloud_backend!(S3Config => S3, AzureConfig => Azure, GcpConfig => Gcp);
