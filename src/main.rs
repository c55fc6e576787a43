fn main() {
    std::process::exit(clusterlab::cli::main());
}
