//! Azure Blob Storage (`ORBIT_PERSISTENCE_BACKEND=azure`).
//!
//! Exists to turn an [`AzureConfig`] into a [`CloudStorage`]: account name,
//! account key (through [`SecretRef::resolve`]; without one object_store's
//! default Azure credential chain is used), container, endpoint, prefix,
//! connection timeout and retries. The endpoint is the account URL, e.g.
//! `https://ACCOUNT.blob.core.windows.net`, or for Azurite the path-style
//! `http://127.0.0.1:10000/devstoreaccount1`; plain http is allowed only
//! when the endpoint says `http://` (Azure has no `ENABLE_SSL` setting).
//! Azure has no separate read / write timeout settings: both clients use
//! object_store's 30 s request timeout. The container must exist.
//! Conditional writes use `If-Match` / `If-None-Match: *`.

use std::sync::Arc;

use object_store::azure::MicrosoftAzureBuilder;
use orbit_storage::{AzureConfig, StorageError};

use crate::options::{client_options, retry_config};
use crate::provider::{check_prefix, secret};
use crate::remote::{Counters, CountingConnector, Scrubber};
use crate::store::{Clients, CloudStorage};

/// Opens the Azure store; no request is sent (see [`CloudStorage::probe`]).
pub fn open_azure(config: &AzureConfig) -> Result<Arc<CloudStorage>, StorageError> {
    check_prefix("ORBIT_AZURE_PREFIX", &config.prefix)?;
    if config.account_name.is_empty() || config.container_name.is_empty() {
        return Err(StorageError::Invalid(
            "ORBIT_AZURE_ACCOUNT_NAME and ORBIT_AZURE_CONTAINER_NAME must be set".into(),
        ));
    }
    let mut scrubber = Scrubber::default();
    let key = config
        .account_key
        .as_ref()
        .map(|r| secret(r, "ORBIT_AZURE_ACCOUNT_KEY", &mut scrubber))
        .transpose()?;
    let allow_http = config
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let counters = Arc::new(Counters::default());
    let build = || {
        let mut builder = MicrosoftAzureBuilder::new()
            .with_account(&config.account_name)
            .with_container_name(&config.container_name)
            .with_allow_http(allow_http)
            .with_client_options(client_options(config.connection_timeout, None, allow_http))
            .with_retry(retry_config(
                config.retry_count,
                config.connection_timeout,
                None,
            ))
            .with_http_connector(CountingConnector {
                counters: counters.clone(),
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
        }
        if let Some(key) = &key {
            builder = builder.with_access_key(key);
        }
        builder.build().map_err(|e| {
            StorageError::Invalid(format!(
                "Azure configuration: {}",
                scrubber.scrub(&e.to_string())
            ))
        })
    };
    let clients = Clients {
        read: Arc::new(build()?),
        write: Arc::new(build()?),
    };
    Ok(Arc::new(
        CloudStorage::new(
            "azure",
            format!("{}/{}", config.account_name, config.container_name),
            clients,
            &config.prefix,
            counters,
            scrubber,
        )
        .with_endpoint(
            config.endpoint.clone().unwrap_or_else(|| {
                format!("https://{}.blob.core.windows.net", config.account_name)
            }),
        ),
    ))
}
