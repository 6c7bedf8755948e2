//! `walguard restore`: the replica of `database.path` into a new file.

use walguard::Settings;

use crate::cli::RestoreArgs;
use crate::error::CliError;
use crate::status::secs;

/// Runs `walguard restore`.
pub(crate) fn run(args: &RestoreArgs) -> Result<(), CliError> {
    let settings = Settings::load(Some(&args.config)).map_err(CliError::Settings)?;
    let r = &settings.replication;
    if r.url.is_none() {
        return Err(CliError::Settings(walguard::Error::InvalidSetting {
            key: "replication.url".to_owned(),
            value: "~".to_owned(),
            reason: "restore needs the replica's URL".to_owned(),
        }));
    }
    let out = args.db.as_ref().unwrap_or(&settings.database.path);
    let started = std::time::Instant::now();
    walguard_actors::replication::restore_to(&settings, out)
        .map_err(walguard_actors::Error::from)?;
    let replica = walguard::settings::redact(r.url.as_deref().unwrap_or_default());
    let elapsed = started.elapsed();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "database": settings.database.path.display().to_string(),
                "replica": replica,
                "restored": out.display().to_string(),
                "elapsed_s": secs(elapsed),
            })
        );
    } else {
        println!(
            "restored {} from {replica} into {} in {:.1}s",
            settings.database.path.display(),
            out.display(),
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
