//! Certificates read from PEM files: the roots `--database-ca` gives the
//! PostgreSQL connection and the pins `--target-ca` gives deliveries. Its
//! own module so the store, the sender and the start-up checks share one
//! reader without depending on one another.

/// Every certificate in a PEM file (`--database-ca`, `--target-ca`); an
/// error when it cannot be read or holds none.
pub fn pem_certificates(
    path: &std::path::Path,
) -> anyhow::Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use anyhow::Context;
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("a certificate in {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}
