fn main() {
    println!("gururmm-agent {}", env!("CARGO_PKG_VERSION"));
}
