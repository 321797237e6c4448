//! Google Cloud Storage (`ORBIT_PERSISTENCE_BACKEND=gcp`).
//!
//! Exists to turn a [`GcpConfig`] into a [`CloudStorage`]: bucket, prefix,
//! connection timeout, retries, and the service-account key JSON, taken
//! from `ORBIT_GCP_SERVICE_ACCOUNT_KEY` or else the file at
//! `ORBIT_GCP_CREDENTIALS_PATH` (both through [`SecretRef::resolve`]);
//! without either object_store's default Google credential chain is used.
//! `ORBIT_GCP_PROJECT_ID` is not needed by the object API (a bucket name is
//! global) and is only logged. Conditional writes use
//! `x-goog-if-generation-match` with the object generation (0 = create).
//! A key JSON may carry `gcs_base_url` (and `disable_oauth`) to reach a
//! test server; that is how the tests run, against the XML-API server in
//! `orbit-test-support`, not against Google.

use std::sync::Arc;

use object_store::gcp::GoogleCloudStorageBuilder;
use orbit_storage::{GcpConfig, StorageError};

use crate::options::{client_options, retry_config};
use crate::provider::{check_prefix, secret};
use crate::remote::{Counters, CountingConnector, Scrubber};
use crate::store::{Clients, CloudStorage};

/// Opens the GCS store; no request is sent (see [`CloudStorage::probe`]).
pub fn open_gcp(config: &GcpConfig) -> Result<Arc<CloudStorage>, StorageError> {
    check_prefix("ORBIT_GCP_PREFIX", &config.prefix)?;
    if config.bucket_name.is_empty() {
        return Err(StorageError::Invalid(
            "ORBIT_GCP_BUCKET_NAME is empty".into(),
        ));
    }
    let mut scrubber = Scrubber::default();
    let key = match (&config.service_account_key, &config.credentials_path) {
        (Some(r), _) => Some(secret(r, "ORBIT_GCP_SERVICE_ACCOUNT_KEY", &mut scrubber)?),
        (None, Some(r)) => Some(secret(r, "ORBIT_GCP_CREDENTIALS_PATH", &mut scrubber)?),
        (None, None) => None,
    };
    if let Some(project) = &config.project_id {
        tracing::debug!(project, bucket = %config.bucket_name, "opening GCS bucket");
    }
    let allow_http = key.as_deref().is_some_and(|k| k.contains("\"http://"));
    let counters = Arc::new(Counters::default());
    let build = || {
        let mut builder = GoogleCloudStorageBuilder::new()
            .with_bucket_name(&config.bucket_name)
            .with_client_options(client_options(config.connection_timeout, None, allow_http))
            .with_retry(retry_config(
                config.retry_count,
                config.connection_timeout,
                None,
            ))
            .with_http_connector(CountingConnector {
                counters: counters.clone(),
            });
        if let Some(key) = &key {
            builder = builder.with_service_account_key(key);
        }
        builder.build().map_err(|e| {
            StorageError::Invalid(format!(
                "GCS configuration (service-account key): {}",
                scrubber.scrub(&e.to_string())
            ))
        })
    };
    let clients = Clients {
        read: Arc::new(build()?),
        write: Arc::new(build()?),
    };
    Ok(Arc::new(CloudStorage::new(
        "gcs",
        config.bucket_name.clone(),
        clients,
        &config.prefix,
        counters,
        scrubber,
    )
    .with_endpoint(
        "the GCS endpoint (storage.googleapis.com unless the service-account key names another)"
            .into(),
    )))
}
