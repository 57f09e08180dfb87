//! The log every binary writes: `RUST_LOG` (default `info`) to standard
//! error, so standard output stays the command's own.

/// Installs the process's log subscriber. Call once, first thing in `main`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
