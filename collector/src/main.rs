use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulseline_collector::telemetry::init_logging();
    pulseline_collector::cli::run(pulseline_collector::cli::Cli::parse()).await
}
