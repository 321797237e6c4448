//! The shared storage conformance suite on each provider, against real
//! stand-ins (SeaweedFS, Azurite) and the GCS XML-API test server; each
//! case gets its own fresh prefix. Run `scripts/install-stand-ins.sh` first.

mod support;

use std::sync::Arc;

use orbit_storage::Storage;

async fn open_s3() -> Arc<dyn Storage> {
    let weed = support::weed();
    let store = orbit_cloud::open_s3(&weed.config(&support::fresh_prefix("s3"))).expect("open s3");
    support::ready(store).await
}

async fn open_azure() -> Arc<dyn Storage> {
    let azurite = support::azurite();
    let store =
        orbit_cloud::open_azure(&azurite.config(&support::fresh_prefix("az"))).expect("open azure");
    support::ready(store).await
}

async fn open_gcp() -> Arc<dyn Storage> {
    let server = support::gcs();
    let store = orbit_cloud::open_gcp(&support::gcp_config(server, &support::fresh_prefix("gcs")))
        .expect("open gcs");
    support::ready(store).await
}

mod s3 {
    orbit_conformance::conformance_tests!(super::open_s3);
}

mod azure {
    orbit_conformance::conformance_tests!(super::open_azure);
}

mod gcs {
    orbit_conformance::conformance_tests!(super::open_gcp);
}
