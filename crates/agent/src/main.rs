use clap::Parser;

fn main() {
    let cli = gururmm_agent::cli::Cli::parse();
    std::process::exit(gururmm_agent::cli::main_with(cli));
}
