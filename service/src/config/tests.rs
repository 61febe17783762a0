//! Unit tests of the settings: the start-up warnings, every flag's
//! environment twin, and the bounds of `--prune-batch`.

use super::*;

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
