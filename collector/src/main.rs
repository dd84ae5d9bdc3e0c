use clap::Parser;

// Ingest allocates and frees many small buffers per event across threads; glibc's malloc spent
// ~20% of the collector's CPU there in a profile under load. mimalloc is built for this.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pulseline_collector::telemetry::init_logging();
    pulseline_collector::cli::run(pulseline_collector::cli::Cli::parse()).await
}
