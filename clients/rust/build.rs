//! Compiles the gateway's protos (shared with the server, in `../../proto`)
//! into client code with the pure-Rust `protox` compiler: no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = "../../proto";
    let protos = [
        "../../proto/io/prometheus/client/metrics.proto",
        "../../proto/aggregation_gateway/v1/gateway.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, [root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .include_file("pb.rs")
        .compile_fds(descriptors)?;
    Ok(())
}
