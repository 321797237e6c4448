//! Amazon S3 and S3-compatible services (`ORBIT_PERSISTENCE_BACKEND=s3`).
//!
//! Exists to turn an [`S3Config`] into a [`CloudStorage`], applying every
//! setting: endpoint (path-style requests; a scheme-less endpoint gets
//! `https://` or `http://` from `enable_ssl`), region, bucket, prefix,
//! `enable_ssl` (false allows plain http, for stand-ins; true refuses an
//! `http://` endpoint), timeouts and retries (see `options`), and the
//! access key pair, read through [`SecretRef::resolve`]. Without a key pair
//! object_store's default AWS credential chain (web identity, instance
//! metadata) is used. Conditional writes use `If-Match` / `If-None-Match`,
//! which AWS S3 has supported since 2024.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use orbit_storage::{S3Config, SecretRef, StorageError};

use crate::hooks::TestHooks;
use crate::options::{client_options, retry_config};
use crate::provider::{check_prefix, secret};
use crate::remote::{Counters, CountingConnector, Scrubber};
use crate::store::{Clients, CloudStorage};

/// Opens the S3 store; no request is sent (see [`CloudStorage::probe`]
/// and [`CloudStorage::check_conditional_writes`]).
pub fn open_s3(config: &S3Config) -> Result<Arc<CloudStorage>, StorageError> {
    Ok(Arc::new(build_s3(config)?))
}

/// [`open_s3`] with test hooks (fault injection, clock skew); tests only.
#[doc(hidden)]
pub fn open_s3_with_hooks(
    config: &S3Config,
    hooks: TestHooks,
) -> Result<Arc<CloudStorage>, StorageError> {
    Ok(Arc::new(build_s3(config)?.with_test_hooks(hooks)))
}

/// [`open_s3`] with each object_store client passed through `wrap` (tests
/// put fault-injecting or misbehaving stores between the engine and a real
/// service this way).
#[doc(hidden)]
pub fn open_s3_wrapped(
    config: &S3Config,
    wrap: impl Fn(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> + Send + Sync + 'static,
) -> Result<Arc<CloudStorage>, StorageError> {
    open_s3_with_hooks(
        config,
        TestHooks {
            wrap: Some(Arc::new(wrap)),
            ..TestHooks::default()
        },
    )
}

fn build_s3(config: &S3Config) -> Result<CloudStorage, StorageError> {
    check_prefix("ORBIT_S3_PREFIX", &config.prefix)?;
    if config.bucket.is_empty() {
        return Err(StorageError::Invalid("ORBIT_S3_BUCKET is empty".into()));
    }
    let mut scrubber = Scrubber::default();
    let access_key = resolve(
        &config.access_key_id,
        "ORBIT_S3_ACCESS_KEY_ID",
        &mut scrubber,
    )?;
    let secret_key = resolve(
        &config.secret_access_key,
        "ORBIT_S3_SECRET_ACCESS_KEY",
        &mut scrubber,
    )?;
    if access_key.is_some() != secret_key.is_some() {
        return Err(StorageError::Invalid(
            "ORBIT_S3_ACCESS_KEY_ID and ORBIT_S3_SECRET_ACCESS_KEY must be set together".into(),
        ));
    }
    let endpoint = match &config.endpoint {
        None => None,
        Some(e) if e.starts_with("http://") => {
            if config.enable_ssl {
                return Err(StorageError::Invalid(format!(
                    "ORBIT_S3_ENDPOINT {e} is plain http but ORBIT_S3_ENABLE_SSL is true; set it to false to allow http"
                )));
            }
            Some(e.clone())
        }
        Some(e) if e.starts_with("https://") => Some(e.clone()),
        Some(e) => Some(format!(
            "{}://{e}",
            if config.enable_ssl { "https" } else { "http" }
        )),
    };
    let counters = Arc::new(Counters::default());
    let build = |request_timeout: Option<std::time::Duration>| {
        let mut builder = AmazonS3Builder::new()
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_allow_http(!config.enable_ssl)
            .with_client_options(client_options(
                config.connection_timeout,
                request_timeout,
                !config.enable_ssl,
            ))
            .with_retry(retry_config(
                config.retry_count,
                config.connection_timeout,
                request_timeout,
            ))
            .with_http_connector(CountingConnector {
                counters: counters.clone(),
            });
        if let Some(endpoint) = &endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(key)) = (&access_key, &secret_key) {
            builder = builder.with_access_key_id(id).with_secret_access_key(key);
        }
        builder.build().map_err(|e| {
            StorageError::Invalid(format!(
                "S3 configuration: {}",
                scrubber.scrub(&e.to_string())
            ))
        })
    };
    let clients = Clients {
        read: Arc::new(build(config.read_timeout)?),
        write: Arc::new(build(config.write_timeout)?),
    };
    let shown = endpoint
        .clone()
        .unwrap_or_else(|| format!("the AWS S3 endpoint of region {}", config.region));
    Ok(CloudStorage::new(
        "s3",
        config.bucket.clone(),
        clients,
        &config.prefix,
        counters,
        scrubber,
    )
    .with_endpoint(shown))
}

fn resolve(
    secret_ref: &Option<SecretRef>,
    name: &str,
    scrubber: &mut Scrubber,
) -> Result<Option<String>, StorageError> {
    secret_ref
        .as_ref()
        .map(|r| secret(r, name, scrubber))
        .transpose()
}
