//! TLS for wss://: rustls with the system's root certificates plus an optional CA file.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Reads the certificates of a PEM file (a clear error when there are none).
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid CA file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "CA file {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("system certificate store: {e}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        }
    } else if added == 0 {
        tracing::warn!(
            "no system root certificates found; wss:// will fail unless server.ca_file is set"
        );
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An HTTP client builder with the agent's TLS settings (`server.ca_file` trusted in
/// addition to the built-in roots), its user agent and connect timeout. Used by the legacy
/// transport and for update downloads.
pub(crate) fn http_client_builder(
    ctx: &crate::agent::Ctx,
) -> Result<reqwest::ClientBuilder, String> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(ctx.config.auth_timeout())
        .user_agent(format!("gururmm-agent/{}", ctx.version));
    if let Some(path) = &ctx.config.server.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("invalid CA file {}: {e}", path.display()))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_ca_file(&dir.path().join("none.pem")).unwrap_err();
        assert!(err.contains("none.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = read_ca_file(&empty).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn config_builds_with_system_roots() {
        assert!(client_config(None).is_ok());
    }
}
