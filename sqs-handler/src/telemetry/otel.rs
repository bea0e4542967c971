//! Trace context across the queue (feature `opentelemetry`): the Producer writes the current
//! span's context as W3C `traceparent` / `tracestate` message attributes; the consumer links
//! each message's process span to the context it carries (`traceparent`, or the X-Ray
//! `AWSTraceHeader` system attribute that AWS services set), as the OpenTelemetry messaging
//! conventions ask.

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::message::SqsMessage;

/// The W3C trace context attributes.
pub(crate) const TRACEPARENT: &str = "traceparent";
/// The W3C trace state attribute.
pub(crate) const TRACESTATE: &str = "tracestate";

/// Links `span` to the trace context each message carries.
pub(crate) fn link(span: &tracing::Span, messages: &[SqsMessage]) {
    for m in messages {
        if let Some(cx) = context_of(m) {
            span.add_link(cx);
        }
    }
}

/// Makes `message`'s trace context the parent of `span` (one message only, before the span is
/// entered), keeping the link too.
pub(crate) fn adopt(span: &tracing::Span, message: &SqsMessage) {
    if let Some(cx) = context_of(message) {
        let parent = opentelemetry::Context::new().with_remote_span_context(cx);
        if let Err(e) = span.set_parent(parent) {
            tracing::debug!(error = %e, "the message's trace context could not become the span's parent");
        }
    }
}

/// The context a message carries: `traceparent` (with `tracestate`), else `AWSTraceHeader`.
pub(crate) fn context_of(message: &SqsMessage) -> Option<SpanContext> {
    let attrs = message.message_attributes();
    let string = |name: &str| attrs.get(name).and_then(|v| v.string_value());
    if let Some(cx) = string(TRACEPARENT).and_then(|tp| parse_traceparent(tp, string(TRACESTATE))) {
        return Some(cx);
    }
    message
        .system_attribute(MessageSystemAttributeName::AwsTraceHeader)
        .and_then(parse_xray)
}

/// Writes the current span's context as `traceparent` / `tracestate`: only when there is a
/// valid context, only attributes the message does not have, and only while the message stays
/// within SQS's 10 attributes and `room` more bytes (what SQS counts: name, `String`, value).
/// Returns what was added.
pub(crate) fn inject(
    attributes: &mut HashMap<String, MessageAttributeValue>,
    room: usize,
) -> usize {
    let mut room = room;
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return 0;
    }
    let state = sc.trace_state().header();
    let mut wanted = vec![(TRACEPARENT, format_traceparent(sc))];
    if !state.is_empty() {
        wanted.push((TRACESTATE, state));
    }
    let mut added = 0;
    for (name, value) in wanted {
        if attributes.contains_key(name) || attributes.len() >= 10 {
            continue;
        }
        let Ok(v) = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
        else {
            continue;
        };
        let size = crate::producer::attribute_size(name, &v);
        if size > room {
            continue;
        }
        room -= size;
        attributes.insert(name.to_owned(), v);
        added += 1;
    }
    added
}

fn format_traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>` (W3C Trace Context, version 00).
pub(crate) fn parse_traceparent(value: &str, state: Option<&str>) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let exact = [(version, 2), (trace, 32), (span, 16), (flags, 2)]
        .iter()
        .all(|(field, len)| is_lower_hex(field, *len));
    if version != "00" || parts.next().is_some() || !exact {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let state = state
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let cx = SpanContext::new(trace, span, TraceFlags::new(flags), true, state);
    cx.is_valid().then_some(cx)
}

/// Exactly `len` lowercase hex digits, as both formats write them.
fn is_lower_hex(field: &str, len: usize) -> bool {
    field.len() == len
        && field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>` (X-Ray), as a W3C context whose
/// trace id is the two hex parts joined.
pub(crate) fn parse_xray(header: &str) -> Option<SpanContext> {
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", v)) => root = Some(v),
            Some(("Parent", v)) => parent = Some(v),
            Some(("Sampled", v)) => sampled = v == "1",
            _ => {}
        }
    }
    let mut root_parts = root?.split('-');
    let (version, epoch, unique) = (root_parts.next()?, root_parts.next()?, root_parts.next()?);
    let exact = is_lower_hex(epoch, 8)
        && is_lower_hex(unique, 24)
        && parent.is_some_and(|p| is_lower_hex(p, 16));
    if version != "1" || root_parts.next().is_some() || !exact {
        return None;
    }
    let trace = TraceId::from_hex(&format!("{epoch}{unique}")).ok()?;
    let span = SpanId::from_hex(parent?).ok()?;
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let cx = SpanContext::new(trace, span, flags, true, TraceState::default());
    cx.is_valid().then_some(cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_ones_are_refused() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = parse_traceparent(tp, Some("vendor=abc")).unwrap();
        assert_eq!(format_traceparent(&cx), tp);
        assert_eq!(cx.trace_state().header(), "vendor=abc");
        assert!(cx.is_remote() && cx.is_sampled());
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            assert!(parse_traceparent(bad, None).is_none(), "{bad}");
        }
    }

    #[test]
    fn xray_header_becomes_a_w3c_context() {
        let h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let cx = parse_xray(h).unwrap();
        assert_eq!(
            cx.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(cx.span_id().to_string(), "53995c3f42cd8ad8");
        assert!(cx.is_sampled());
        assert!(parse_xray("Root=1-5759e988-bd86;Parent=53995c3f42cd8ad8").is_none());
        assert!(parse_xray("Parent=53995c3f42cd8ad8").is_none());
        assert!(
            parse_xray("Root=1-5759e988-bd862e3fe1be46a994272793-x;Parent=53995c3f42cd8ad8")
                .is_none()
        );
    }
}
