//! The services' logs on standard error, as text or JSON lines.
/// Installs a log subscriber on standard error.
pub fn init_logs(filter: &str) {
    init_logs_as(filter, LogFormat::Text);
}

/// How the services' logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (with the request span's fields, such as `order_id`).
    Json,
}

/// Installs a log subscriber on standard error in `format`.
pub fn init_logs_as(filter: &str, format: LogFormat) {
    use std::io::IsTerminal as _;
    // Colour only for a terminal: a redirected log file gets no escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
