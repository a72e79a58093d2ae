//! Pushes one batch to a gateway and prints how many series it touched.
//!
//! `cargo run -p prom-aggregation-gateway-client --example push -- http://localhost:8080`

use prom_aggregation_gateway_client::{Client, families};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://localhost:8080".into());
    let mut client = Client::connect(endpoint).await?;
    let batch = vec![
        families::counter(
            "jobs_processed_total",
            "Jobs processed",
            &[("queue", "emails")],
            3.0,
        ),
        families::gauge("queue_depth", "Jobs waiting", &[("queue", "emails")], 12.0),
        families::histogram(
            "job_duration_seconds",
            "Job duration",
            &[("queue", "emails")],
            &[(0.1, 1), (1.0, 2)],
            3,
            2.35,
        ),
    ];
    let touched = client.push(batch, [("job", "example")]).await?;
    println!("pushed; {touched} series touched");
    Ok(())
}
