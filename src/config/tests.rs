//! Unit tests of the settings: the back-off the defaults describe, the
//! start-up warnings, every flag's environment twin, and the bounds of
//! `--prune-batch`.

use super::*;

#[test]
fn the_default_back_off_never_waits_more_than_an_hour() {
    let p = Config::defaults().retry_policy();
    let hour = chrono::Duration::hours(1);
    assert_eq!(p.backoff(1), chrono::Duration::seconds(5));
    assert!(p.backoff(10) < hour);
    for attempt in [11, 12, 13, 20, 100, u32::MAX] {
        assert_eq!(p.backoff(attempt), hour, "attempt {attempt}");
    }
    // With the largest jitter the wait is still under the cap.
    let now = crate::clock::wall();
    let far = now + chrono::Duration::days(30);
    let failed = crate::delivery::retry::Response::Failed;
    for attempt in 1..=64 {
        match p.verdict(attempt, &failed, now, far, 0.999_999) {
            crate::store::Verdict::Retry(at) => assert!(at - now <= hour, "attempt {attempt}"),
            v => panic!("attempt {attempt}: {v:?}"),
        }
    }
}

#[test]
fn a_lease_not_longer_than_the_http_timeout_is_warned_about() {
    let mut c = Config::defaults();
    let lease_warning = |c: &Config| {
        let (errors, warnings) = c.check();
        assert!(errors.is_empty(), "{errors:?}");
        warnings.iter().any(|w| w.starts_with("lease ("))
    };
    assert!(
        !lease_warning(&c),
        "the defaults (90s over 30s) need no warning"
    );
    c.lease = c.http_timeout;
    assert!(lease_warning(&c), "a lease equal to the HTTP timeout");
    c.lease = Duration::from_secs(10);
    assert!(lease_warning(&c), "a lease shorter than the HTTP timeout");
}

#[test]
fn a_secret_grace_under_a_second_is_refused() {
    // A lane signs only with a copy of its subscription confirmed within a
    // grace: with none, every delivery would wait.
    let mut c = Config::defaults();
    c.secret_grace = Duration::ZERO;
    let (errors, _) = c.check();
    assert!(
        errors.iter().any(|e| e.starts_with("secret grace")),
        "{errors:?}"
    );
    c.secret_grace = Duration::from_secs(1);
    assert!(c.check().0.is_empty());
}

#[test]
fn every_serve_flag_has_a_tminus_environment_twin() {
    use clap::Args;
    // `tminus serve` flattens `Config` into `ServeArgs`: its settings are these.
    let cmd = Config::augment_args(clap::Command::new("serve"));
    let mut seen = 0;
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        seen += 1;
        let env = arg.get_env().and_then(|e| e.to_str());
        assert!(
            env.is_some_and(|e| e.starts_with("TMINUS_")),
            "--{id} has no TMINUS_* twin: {env:?}"
        );
    }
    assert!(seen > 30, "only {seen} arguments found");
}

#[test]
fn a_prune_batch_is_one_row_to_a_hundred_thousand() {
    use clap::{Args, FromArgMatches};
    let parse = |v: &str| {
        let cmd = Config::augment_args(clap::Command::new("serve")).no_binary_name(true);
        let m = cmd.try_get_matches_from([format!("--prune-batch={v}")])?;
        Config::from_arg_matches(&m).map(|c| c.prune_batch)
    };
    assert_eq!(Config::defaults().prune_batch, 500);
    assert_eq!(parse("1").unwrap(), 1);
    assert_eq!(parse("100000").unwrap(), 100_000);
    for bad in ["0", "100001", "many"] {
        assert!(parse(bad).is_err(), "--prune-batch={bad}");
    }
}

#[test]
fn the_operational_webhook_settings_are_checked_at_start() {
    let errors = |url: &str, secret: Option<&str>, http: bool| {
        let mut c = Config::defaults();
        c.operational_webhook_url = Some(url.into());
        c.operational_webhook_secret = secret.map(Into::into);
        c.allow_http = http;
        c.check().0
    };
    assert!(errors("https://platform.example/ops", None, false).is_empty());
    let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(errors("https://platform.example/ops", Some(good), false).is_empty());
    let refused = [
        errors("http://platform.example/ops", None, false),
        errors("ops", None, false),
        // The target guard, as for a hook URL.
        errors("https://127.0.0.1/ops", None, false),
        errors(
            "https://platform.example/ops",
            Some("MfKQ9r8GKYqrTwjUPD8I"),
            false,
        ),
        errors(
            "https://platform.example/ops",
            Some("whsec_not base64!"),
            false,
        ),
    ];
    for (i, e) in refused.iter().enumerate() {
        assert_eq!(e.len(), 1, "case {i}: {e:?}");
        assert!(e[0].starts_with("operational-webhook-"), "case {i}: {e:?}");
    }
}
