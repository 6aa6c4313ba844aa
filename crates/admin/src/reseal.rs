//! `synap-admin reseal`: re-encrypts every sealed secret under the first key of
//! `encryption.keys`, the step of a key rotation after which an old key can be removed (the
//! procedure is in the README). Safe while the services run and safe to run again.

use anyhow::{Context, bail};
use synap_db::reseal::Report;
use synap_db::{DatabaseConfig, EncryptionConfig};

#[derive(clap::Args)]
pub struct ResealArgs {
    /// Rows rewritten per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch_size: u32,
}

pub async fn run(
    database: &DatabaseConfig,
    encryption: &EncryptionConfig,
    args: ResealArgs,
) -> anyhow::Result<()> {
    let secrets = encryption.secret_box()?;
    let pool = synap_db::connect(database)?;
    // The same check the services make: a wrong key must not seal anything.
    synap_db::keyring::check(&pool, &secrets)
        .await
        .context("checking the encryption keys against the database")?;
    let report = synap_db::reseal::run(&pool, &secrets, args.batch_size as usize).await?;
    print!("{}", describe(&report));
    if !report.remaining.is_empty() {
        bail!(
            "values remain sealed under other keys than {}: keep those keys in `encryption.keys`{}",
            report.sealing_key_id,
            if report.unreadable.is_empty() {
                "; they were written meanwhile by a service still sealing with an older key: roll every service \
                 to the new key order and run reseal again"
            } else {
                "; the values listed as unreadable open with no configured key: add the key they were sealed \
                 with, or replace them (update the subscription's basic auth, rotate its signing secret)"
            }
        );
    }
    Ok(())
}

/// What the run did, one fact a line, for an operator's terminal.
fn describe(report: &Report) -> String {
    let mut out =
        format!("resealed {} values under key id {}", report.total_resealed(), report.sealing_key_id);
    let per_column: Vec<String> =
        report.resealed.iter().map(|(column, n)| format!("{column}: {n}")).collect();
    if !per_column.is_empty() {
        out.push_str(&format!(" ({})", per_column.join(", ")));
    }
    out.push('\n');
    if report.changed_meanwhile > 0 {
        out.push_str(&format!(
            "changed by another writer meanwhile (left as written, checked again): {}\n",
            report.changed_meanwhile
        ));
    }
    for reason in &report.unreadable {
        out.push_str(&format!("unreadable: {reason}\n"));
    }
    for key_id in &report.dropped {
        out.push_str(&format!(
            "no value is sealed under key id {key_id} any more: its canary is dropped and the key can be removed from `encryption.keys`\n"
        ));
    }
    for (key_id, n) in &report.remaining {
        out.push_str(&format!("still sealed under key id {key_id}: {n}\n"));
    }
    if report.remaining.is_empty() {
        out.push_str(&format!("every sealed value is under key id {}\n", report.sealing_key_id));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_counts_and_key_ids() {
        let mut report = Report { sealing_key_id: "aaaa".into(), ..Report::default() };
        report.resealed.insert("subscriptions.basic_auth_password".into(), 2);
        report.resealed.insert("subscription_secrets.secret".into(), 3);
        report.dropped.push("legacy".into());
        let text = describe(&report);
        assert!(
            text.starts_with("resealed 5 values under key id aaaa (subscription_secrets.secret: 3, "),
            "{text}"
        );
        assert!(text.contains("key id legacy any more"), "{text}");
        assert!(text.ends_with("every sealed value is under key id aaaa\n"), "{text}");
        report.remaining.insert("bbbb".into(), 1);
        assert!(describe(&report).contains("still sealed under key id bbbb: 1\n"));
        assert!(!describe(&report).contains("every sealed value"));
    }
}
