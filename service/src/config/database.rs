//! The `database` setting as logs and messages show it: without its
//! password.

/// The database URL without its password (in the user part, or given as
/// `?password=`), for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        // Not a URL: a SQLite path, which holds no password.
        return url.to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let secret = |k: &str| k.to_ascii_lowercase().contains("password");
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_leave_database_urls() {
        let r = redact_url("postgres://u:pw1@h/db?sslmode=require&password=pw2&sslpassword=pw3");
        assert!(
            !r.contains("pw1") && !r.contains("pw2") && !r.contains("pw3"),
            "{r}"
        );
        assert!(r.contains("sslmode=require"), "{r}");
        assert_eq!(redact_url("tminus.db"), "tminus.db");
    }
}
