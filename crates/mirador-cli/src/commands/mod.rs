//! One module per subcommand.

pub(crate) mod backtest;
pub(crate) mod check;
pub(crate) mod cluster;
pub(crate) mod export;
pub(crate) mod run;
pub(crate) mod score;
pub(crate) mod synth;

use mirador_pipeline::RunError;

/// Exit code of a failure: 1 for data or configuration problems the user can fix, 75 when
/// another run holds the lock (try again later), 2 for internal errors.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(run) = err.downcast_ref::<RunError>() {
        return match run {
            RunError::Locked(_) => 75,
            e if e.is_user_error() => 1,
            _ => 2,
        };
    }
    if err.downcast_ref::<mirador_pipeline::ConfigError>().is_some() || err.downcast_ref::<UserError>().is_some() {
        return 1;
    }
    if let Some(e) = err.downcast_ref::<mirador_export::ExportError>() {
        return if e.is_user_error() { 1 } else { 2 };
    }
    2
}

/// Writes `text` to stdout; a reader that stops early (`| head`) is not an error.
pub(crate) fn print_all(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A mistake in how Mirador was called (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UserError(pub(crate) String);
