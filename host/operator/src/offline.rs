//! Rendering without a cluster (`orbit-operator render`, the parity and
//! process tests): an `OrbitCluster` document in, the objects the reconciler
//! would apply out, or the refusal it would write to the status.

use crate::crd::OrbitCluster;
use crate::render::{self, Inputs, Rendered};
use crate::translate::Translators;

/// Parses one `OrbitCluster` document; the namespace defaults to `namespace`.
pub fn parse(text: &str, namespace: &str) -> Result<OrbitCluster, String> {
    let mut c: OrbitCluster =
        serde_yaml::from_str(text).map_err(|e| format!("not an OrbitCluster: {e}"))?;
    if c.metadata.namespace.is_none() {
        c.metadata.namespace = Some(namespace.to_string());
    }
    if c.metadata.name.as_deref().unwrap_or_default().is_empty() {
        return Err("metadata.name is missing".into());
    }
    Ok(c)
}

/// The objects of `c` (as the reconciler renders them, without owner
/// references and checksums of live objects), or why it is refused.
pub async fn render_cluster(
    translators: &Translators,
    c: &OrbitCluster,
) -> Result<Rendered, String> {
    let resolved = translators
        .resolve(c, None)
        .await
        .map_err(|e| format!("InvalidConfiguration: {e}"))?;
    if let Some((reason, message)) = render::refusal(c, resolved.backend) {
        return Err(format!("{reason}: {message}"));
    }
    let inputs = Inputs {
        default_tag: env!("CARGO_PKG_VERSION").to_string(),
        ..Inputs::default()
    };
    Ok(render::render(c, &resolved, &inputs))
}

pub async fn render_text(
    translators: &Translators,
    text: &str,
    namespace: &str,
) -> Result<Rendered, String> {
    render_cluster(translators, &parse(text, namespace)?).await
}
