//! Why an HTTP attempt failed before an answer came: the connection could
//! not be made, or the request could not be sent or its answer read. It owns
//! the [`Failure`] a sender reports and the short, operator-readable reason
//! the attempt log keeps for it: the innermost cause of the error chain, or,
//! for a TLS handshake the receiver's certificate failed, what is wrong
//! with the certificate in plain words (an unknown issuer, a name mismatch,
//! expired, a CA certificate in a server's place) rather than rustls's
//! type names.

use rustls::CertificateError;

/// Any error a connection or an exchange can end in.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why an exchange failed, for the attempt log.
pub(super) enum Failure {
    Connect(BoxError),
    Request(BoxError),
}

/// A short, operator-readable reason for a transport failure.
pub(super) fn describe(f: &Failure) -> String {
    let (kind, e) = match f {
        Failure::Connect(e) => ("connection failed", e),
        Failure::Request(e) => ("request failed", e),
    };
    if let Some(tls) = find_tls(&**e) {
        return format!("{kind}: {}", tls_words(tls));
    }
    let mut cause = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// The rustls error in `e`'s chain, if any. An `io::Error` does not list
/// the error it wraps among its sources, so each is opened.
fn find_tls<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let wrapped = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let Some(tls) = wrapped.and_then(|w| find_tls(w)) {
            return Some(tls);
        }
        cause = c.source();
    }
    None
}

/// A TLS failure in words a person reads.
fn tls_words(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => {
            format!("the receiver's TLS certificate {}", certificate_words(c))
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the receiver ended the TLS handshake ({alert:?})")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the receiver does not speak TLS (is it plain HTTP?)".to_owned()
        }
        rustls::Error::NoCertificatesPresented => {
            "the receiver presented no TLS certificate".to_owned()
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

/// What is wrong with a receiver's certificate, after "the receiver's TLS
/// certificate".
fn certificate_words(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "has an unknown issuer: neither a public root nor a \
             certificate in --target-ca signed it"
            .to_owned(),
        CertificateError::NotValidForName => {
            "is not valid for the host name (name mismatch)".to_owned()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<String> = presented.iter().map(|p| shown_name(p)).collect();
            let names = if names.is_empty() {
                // As `openssl req -x509` makes one without `-addext
                // subjectAltName=…`: the subject's CN is not a name for TLS.
                "no host name (only subject alternative names count, not the common name)"
                    .to_owned()
            } else {
                names.join(", ")
            };
            format!(
                "is not valid for {} (name mismatch): it is for {names}",
                expected.to_str()
            )
        }
        CertificateError::Expired => "has expired".to_owned(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("has expired: it was valid until {}", date(*not_after))
        }
        CertificateError::NotValidYet => "is not valid yet".to_owned(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("is not valid yet: it is valid from {}", date(*not_before))
        }
        CertificateError::BadSignature => {
            "has a bad signature: its issuer did not sign it".to_owned()
        }
        CertificateError::BadEncoding => "cannot be read".to_owned(),
        CertificateError::Revoked => "is revoked".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "is not for TLS servers (its extended key usage)".to_owned()
        }
        CertificateError::UnhandledCriticalExtension => {
            "has a critical extension tminus does not know".to_owned()
        }
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "is signed with an algorithm tminus does not accept".to_owned()
        }
        CertificateError::Other(other)
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            "is a CA certificate used as a server certificate (it carries CA:TRUE): serve \
             a certificate this CA signed, or put this very certificate in --target-ca to \
             trust it as pinned"
                .to_owned()
        }
        other => format!("is refused: {other}"),
    }
}

/// A name as webpki lists a certificate's names (`DnsName("x.example")`):
/// the name alone.
fn shown_name(presented: &str) -> String {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map(|inner| inner.trim_matches('"').to_owned())
        .unwrap_or_else(|| presented.to_owned())
}

/// An instant of a certificate, for people.
fn date(t: rustls::pki_types::UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{secs} s after 1970"))
}
