//! Decode stage: request body and push path in, [`Push`] out (contract §2).
//!
//! Picks the decoder by `Content-Type`, undoes `Content-Encoding` with the
//! body limit applied to the decompressed size, and holds the value checks
//! every decoder shares, so HTTP and gRPC refuse the same input the same way.

pub mod compression;
pub mod options;
pub mod otlp;
pub mod path;
pub mod protobuf;
pub mod push_request;
pub mod text;

use crate::error::Rejection;
use crate::model::Push;
pub use compression::decompress;
pub use options::{Options, Spend};

use crate::format::Format;

/// Decodes a (decompressed) body in the given format.
pub fn decode(body: &[u8], format: Format, opts: &Options<'_>) -> Result<Push, Rejection> {
    match format {
        Format::Text => text::parse(body, text::Dialect::Prometheus, opts),
        Format::OpenMetrics => text::parse(body, text::Dialect::OpenMetrics, opts),
        Format::Protobuf => protobuf::delimited(body, opts),
    }
}
