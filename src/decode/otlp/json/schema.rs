//! The OTLP/JSON schema the transcoder reads: per message, its fields' JSON
//! names (and snake_case), protobuf numbers and how each is written.

/// How a field is written.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// A message of the schema the function gives (a function: the
    /// schema of attribute values refers to itself).
    Message(fn() -> &'static [Field]),
    Messages(fn() -> &'static [Field]),
    String,
    Bool,
    /// `int64`/`uint32`/enum: a varint (negative as two's complement).
    Varint,
    Sint32,
    /// `fixed64`/`sfixed64`.
    Fixed64,
    Double,
    PackedFixed64,
    PackedDouble,
    PackedVarint,
    /// Base64 in JSON.
    Bytes,
}

pub(super) struct Field {
    pub(super) json: &'static str,
    pub(super) snake: &'static str,
    pub(super) number: u8,
    pub(super) kind: Kind,
}

const fn f(json: &'static str, snake: &'static str, number: u8, kind: Kind) -> Field {
    Field {
        json,
        snake,
        number,
        kind,
    }
}

pub(super) static REQUEST: &[Field] = &[f(
    "resourceMetrics",
    "resource_metrics",
    1,
    Kind::Messages(|| RESOURCE_METRICS),
)];
pub(super) static RESOURCE_METRICS: &[Field] = &[
    f("resource", "resource", 1, Kind::Message(|| RESOURCE)),
    f(
        "scopeMetrics",
        "scope_metrics",
        2,
        Kind::Messages(|| SCOPE_METRICS),
    ),
];
pub(super) static RESOURCE: &[Field] = &[f(
    "attributes",
    "attributes",
    1,
    Kind::Messages(|| KEY_VALUE),
)];
pub(super) static SCOPE_METRICS: &[Field] = &[
    f("scope", "scope", 1, Kind::Message(|| SCOPE)),
    f("metrics", "metrics", 2, Kind::Messages(|| METRIC)),
];
// The scope names a running total's producer, with the resource.
pub(super) static SCOPE: &[Field] = &[
    f("name", "name", 1, Kind::String),
    f("version", "version", 2, Kind::String),
    f("attributes", "attributes", 3, Kind::Messages(|| KEY_VALUE)),
];
pub(super) static METRIC: &[Field] = &[
    f("name", "name", 1, Kind::String),
    f("description", "description", 2, Kind::String),
    f("unit", "unit", 3, Kind::String),
    f("gauge", "gauge", 5, Kind::Message(|| GAUGE)),
    f("sum", "sum", 7, Kind::Message(|| SUM)),
    f("histogram", "histogram", 9, Kind::Message(|| HISTOGRAM)),
    f(
        "exponentialHistogram",
        "exponential_histogram",
        10,
        Kind::Message(|| EXPONENTIAL),
    ),
    f("summary", "summary", 11, Kind::Message(|| SUMMARY)),
];
pub(super) static GAUGE: &[Field] = &[f(
    "dataPoints",
    "data_points",
    1,
    Kind::Messages(|| NUMBER_POINT),
)];
pub(super) static SUM: &[Field] = &[
    f(
        "dataPoints",
        "data_points",
        1,
        Kind::Messages(|| NUMBER_POINT),
    ),
    f(
        "aggregationTemporality",
        "aggregation_temporality",
        2,
        Kind::Varint,
    ),
    f("isMonotonic", "is_monotonic", 3, Kind::Bool),
];
pub(super) static HISTOGRAM: &[Field] = &[
    f(
        "dataPoints",
        "data_points",
        1,
        Kind::Messages(|| HISTOGRAM_POINT),
    ),
    f(
        "aggregationTemporality",
        "aggregation_temporality",
        2,
        Kind::Varint,
    ),
];
pub(super) static EXPONENTIAL: &[Field] = &[
    f(
        "dataPoints",
        "data_points",
        1,
        Kind::Messages(|| EXPONENTIAL_POINT),
    ),
    f(
        "aggregationTemporality",
        "aggregation_temporality",
        2,
        Kind::Varint,
    ),
];
pub(super) static SUMMARY: &[Field] = &[f(
    "dataPoints",
    "data_points",
    1,
    Kind::Messages(|| SUMMARY_POINT),
)];
// Quantiles are not kept: they do not add up.
pub(super) static SUMMARY_POINT: &[Field] = &[
    f("attributes", "attributes", 7, Kind::Messages(|| KEY_VALUE)),
    f(
        "startTimeUnixNano",
        "start_time_unix_nano",
        2,
        Kind::Fixed64,
    ),
    f("timeUnixNano", "time_unix_nano", 3, Kind::Fixed64),
    f("count", "count", 4, Kind::Fixed64),
    f("sum", "sum", 5, Kind::Double),
    f("flags", "flags", 8, Kind::Varint),
];
pub(super) static NUMBER_POINT: &[Field] = &[
    f("attributes", "attributes", 7, Kind::Messages(|| KEY_VALUE)),
    f(
        "startTimeUnixNano",
        "start_time_unix_nano",
        2,
        Kind::Fixed64,
    ),
    f("timeUnixNano", "time_unix_nano", 3, Kind::Fixed64),
    f("asDouble", "as_double", 4, Kind::Double),
    f("asInt", "as_int", 6, Kind::Fixed64),
    f("flags", "flags", 8, Kind::Varint),
];
pub(super) static HISTOGRAM_POINT: &[Field] = &[
    f("attributes", "attributes", 9, Kind::Messages(|| KEY_VALUE)),
    f(
        "startTimeUnixNano",
        "start_time_unix_nano",
        2,
        Kind::Fixed64,
    ),
    f("timeUnixNano", "time_unix_nano", 3, Kind::Fixed64),
    f("count", "count", 4, Kind::Fixed64),
    f("sum", "sum", 5, Kind::Double),
    f("bucketCounts", "bucket_counts", 6, Kind::PackedFixed64),
    f("explicitBounds", "explicit_bounds", 7, Kind::PackedDouble),
    f("flags", "flags", 10, Kind::Varint),
];
pub(super) static EXPONENTIAL_POINT: &[Field] = &[
    f("attributes", "attributes", 1, Kind::Messages(|| KEY_VALUE)),
    f(
        "startTimeUnixNano",
        "start_time_unix_nano",
        2,
        Kind::Fixed64,
    ),
    f("timeUnixNano", "time_unix_nano", 3, Kind::Fixed64),
    f("count", "count", 4, Kind::Fixed64),
    f("sum", "sum", 5, Kind::Double),
    f("scale", "scale", 6, Kind::Sint32),
    f("zeroCount", "zero_count", 7, Kind::Fixed64),
    f("positive", "positive", 8, Kind::Message(|| BUCKETS)),
    f("negative", "negative", 9, Kind::Message(|| BUCKETS)),
    f("flags", "flags", 10, Kind::Varint),
    f("zeroThreshold", "zero_threshold", 14, Kind::Double),
];
pub(super) static BUCKETS: &[Field] = &[
    f("offset", "offset", 1, Kind::Sint32),
    f("bucketCounts", "bucket_counts", 2, Kind::PackedVarint),
];
pub(super) static KEY_VALUE: &[Field] = &[
    f("key", "key", 1, Kind::String),
    f("value", "value", 2, Kind::Message(|| ANY_VALUE)),
];
pub(super) static ANY_VALUE: &[Field] = &[
    f("stringValue", "string_value", 1, Kind::String),
    f("boolValue", "bool_value", 2, Kind::Bool),
    f("intValue", "int_value", 3, Kind::Varint),
    f("doubleValue", "double_value", 4, Kind::Double),
    f(
        "arrayValue",
        "array_value",
        5,
        Kind::Message(|| ARRAY_VALUE),
    ),
    f(
        "kvlistValue",
        "kvlist_value",
        6,
        Kind::Message(|| KEY_VALUE_LIST),
    ),
    f("bytesValue", "bytes_value", 7, Kind::Bytes),
];
pub(super) static ARRAY_VALUE: &[Field] = &[f("values", "values", 1, Kind::Messages(|| ANY_VALUE))];
pub(super) static KEY_VALUE_LIST: &[Field] =
    &[f("values", "values", 1, Kind::Messages(|| KEY_VALUE))];

/// Deepest nesting of messages: the schema's own is 7; attribute values
/// (arrays, maps) may nest further, and are refused past this.
pub(super) const MAX_DEPTH: usize = 24;
