use std::io::IsTerminal;
use tidegate::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let (config, settings) = Config::load();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logger.with_ansi(std::io::stderr().is_terminal()).init(),
        // Fields at the top level of each object, next to "message", as log collectors
        // index them.
        LogFormat::Json => logger.json().flatten_event(true).init(),
    }
    if let Err(message) = config.validate() {
        eprintln!("tidegate: {message}");
        return std::process::ExitCode::from(2);
    }
    if config.check_config {
        if let Err(error) = tidegate::server::check(&config) {
            eprintln!("tidegate: {error:#}");
            return std::process::ExitCode::from(2);
        }
        for setting in settings {
            println!("{setting}");
        }
        return std::process::ExitCode::SUCCESS;
    }
    match tidegate::server::run(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
