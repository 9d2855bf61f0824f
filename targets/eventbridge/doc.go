// Package eventbridge is the `eventbridge` target: each record becomes one
// event on an Amazon EventBridge event bus.
//
// Events are put with PutEvents, up to 10 per call and up to 256 KiB per
// call as EventBridge counts it (the bytes of Detail, DetailType, Source and
// each resource, and 14 for a Time), in batch order. Each event's Detail is
// the record as JSON, the object that stands for it in the envelope's
// records lists (key and value in base64, headers as byte arrays), or the
// record's rendering of inputTemplate. EventBridge takes only JSON objects
// as Detail: a JSON template whose root is not an object is refused when the
// config loads, and a text template's rendering is checked per record, a
// record that does not give a JSON object failing permanently. Source
// (default "Pipe <pipe name>"), DetailType (default "Event from
// SelfManagedKafka") and each resource are static text, templates or a
// whole $.path; Time is a fixed RFC 3339 timestamp or a path or template
// giving one or epoch milliseconds ($.timestamp), and is left to
// EventBridge when it resolves to nothing.
//
// Failures are reported per record and only the failed records are
// retried (package internal/awscfg/batch): an event over 256 KiB
// (MaximumPayloadSizeExceeded), a Detail that is not a JSON object, a
// Source or DetailType that resolves to nothing, is too long or (Source)
// starts with aws., a Time that does not parse all fail permanently before
// any call. An entry that EventBridge fails with ThrottlingException or
// InternalFailure is retried, and the later records of its partition wait
// for it; any other entry error (MalformedDetail, InvalidArgument,
// NotAuthorizedForSourceException ...) is permanent. A call that
// EventBridge did not answer, answered 5xx or throttled is retried and the
// records not sent yet wait; another 4xx (a missing bus, access denied)
// fails its records permanently.
//
// AWS access (region, credentials, role, endpoint) is the aws: block of
// internal/awscfg; the region defaults to the one in a bus ARN.
package eventbridge
