//! Arbitrary sequences of pushes (text, OpenMetrics, protobuf, OTLP, each
//! under arbitrary path labels) into one gateway: delta windows sent again,
//! replayed running totals and producers' levels included. After every accepted push, the
//! scrape in all three formats must pass the validity oracle, and a
//! snapshot of the state must restore to the very same scrapes.
//!
//! Input: records of `[flags][path length][path][body length: u16 LE][body]`;
//! the first byte's low two bits pick `--gauge-mode`, its third bit puts
//! `RULES` in force (cumulative sources, live levels, labels folded away,
//! gauge modes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::aggregate::GaugeMode;
use prom_aggregation_gateway::decode::{self, path};
use prom_aggregation_gateway::encode;
use prom_aggregation_gateway::format::Format;
use prom_aggregation_gateway::ingest::Ticket;
use prom_aggregation_gateway::{Config, Gateway, persist};
use prom_aggregation_gateway_fuzz::{amplification_bound, held_within};

const RULES: &str = r#"
rules:
  - match: '{__name__=~"l.*", instance=~".+"}'
    mode: latest
    combine: max
    source_labels: [instance]
    without: [instance]
  - match: '{__name__=~"m.*"}'
    mode: latest
    combine: mean
    by: [a]
  - match: '{instance=~".+"}'
    mode: total
    source_labels: [instance]
    without: [instance]
  - match: '{__name__=~".*_total"}'
    without: [a, b]
  - match: '{a="1"}'
    mode: last
  - match: '{__name__=~"g.*"}'
    mode: max
    by: [b]
"#;

fn scrapes(gw: &Gateway) -> [Vec<u8>; 3] {
    [Format::Text, Format::OpenMetrics, Format::Protobuf]
        .map(|f| encode::render(gw.aggregator(), f))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let gauge_mode = [
        GaugeMode::Sum,
        GaugeMode::Last,
        GaugeMode::Max,
        GaugeMode::Min,
    ][usize::from(first & 3)];
    let config = Config {
        gauge_mode,
        max_series: 10_000,
        ..Config::default()
    };
    let gw = Gateway::new(config.clone());
    if first & 4 != 0 {
        gw.set_rules(gw.parse_rules("fuzz", RULES).expect("valid rules"));
    }
    while rest.len() >= 2 {
        let flags = rest[0];
        let plen = usize::from(rest[1]);
        rest = &rest[2..];
        let Some(p) = rest.get(..plen) else { return };
        rest = &rest[plen..];
        let Some(len) = rest.get(..2) else { return };
        let blen = usize::from(u16::from_le_bytes([len[0], len[1]]));
        rest = &rest[2..];
        let body = &rest[..blen.min(rest.len())];
        rest = &rest[body.len()..];
        let format = [
            Some(Format::Text),
            Some(Format::OpenMetrics),
            Some(Format::Protobuf),
            None,
        ][usize::from(flags & 3)];
        let Ok(labels) = std::str::from_utf8(p)
            .map_err(|_| ())
            .and_then(|p| path::parse(p).map_err(|_| ()))
        else {
            continue;
        };
        let (ticket, _guard) = Ticket::new(None);
        let reservation = gw.memory().reservation();
        let input = body.len() + p.len();
        // Decoding and applying: what the push leaves in the aggregate
        // counts too, so it is within the bound as well.
        let ingested = held_within("push", amplification_bound(input), || {
            gw.ingest(labels, &ticket, reservation, input, |opts| match format {
                Some(format) => decode::decode(body, format, opts),
                None => gw.decode_otlp(body, opts),
            })
        });
        if ingested.is_err() {
            continue;
        }
        let [text, om, pb] = scrapes(&gw);
        if let Err(e) = pag_oracle::check_all(&text, &om, &pb) {
            panic!(
                "accepted push left an invalid scrape: {e}\n{}\n{}",
                String::from_utf8_lossy(&text),
                String::from_utf8_lossy(&om)
            );
        }
        let snapshot = persist::encode(&gw);
        let restored = Gateway::new(config.clone());
        if first & 4 != 0 {
            // Sources restore as what their rule in force says.
            restored.set_rules(restored.parse_rules("fuzz", RULES).expect("valid rules"));
        }
        if let Err(e) = persist::restore_bytes(&restored, std::path::Path::new("fuzz"), &snapshot) {
            panic!(
                "own snapshot refused: {e}\n{}",
                String::from_utf8_lossy(&text)
            );
        }
        let again = scrapes(&restored);
        assert_eq!(again, [text, om, pb], "snapshot restored to another scrape");
    }
});
