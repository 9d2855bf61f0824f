// Package enrich is what the enrichment kinds share: the request they send,
// the contract of the answer that replaces the batch, and the stage that
// ties them together. The kinds live in subpackages: stages/enrich/lambda
// (`enrichment: {lambda: ...}`) invokes a Lambda function,
// stages/enrich/http (`enrichment: {http: ...}`) POSTs to an endpoint.
//
// # Request
//
// An enrichment is called synchronously, once per batch (after the filter
// and transform), with the batch envelope: Lambda's Kafka event, the same
// JSON a Lambda target receives. With an inputTemplate, the request is
// instead a JSON array with one element per record, in batch order: the
// template rendered for that record (a JSON template's output as it is, any
// other template's output as a JSON string).
//
// # Answer
//
// The answer replaces the batch for the target. It is one of:
//
//   - Nothing to deliver: an empty body, null, "", {} or []. The batch
//     counts as done and its offsets are committed.
//
//   - An envelope-shaped object, {"records": {"<topic>-<partition>": [...]}}
//     (eventSource and bootstrapServers may be there, and are ignored):
//     records replaced by coordinates. Each record of the answer names a
//     record of the batch by topic, partition and offset, under its
//     "<topic>-<partition>" key, and replaces it; the records of the batch
//     that the answer leaves out are dropped. Fields are written as in the
//     envelope: key and value standard base64, headers a list of one-key
//     objects of byte lists, timestamp epoch milliseconds, timestampType
//     CREATE_TIME or LOG_APPEND_TIME. A field left out keeps the batch
//     record's; a null key or value is a Kafka null; null headers are none.
//     {"records": {}} and {"records": null} leave nothing to deliver. The
//     result keeps the batch's order, so partitions stay in order.
//
//   - A JSON array with exactly one element per record of the batch (of the
//     request's array, with an inputTemplate): element i is record i's new
//     value, and null drops record i. A string element becomes the value's
//     text (no quotes); any other element its JSON text as written. Key,
//     headers, timestamp and coordinates stay.
//
//   - Any other JSON array: a batch of new events, one per non-null
//     element, valued as above. New events have no key and no headers, and
//     take the coordinates (topic, partition, offset), timestamp and
//     timestampType of the batch's first record: that is what names them
//     in logs, errors and partial batch responses of the target, and they
//     are acknowledged with the batch. (An array as long as the batch is
//     always read as the previous shape.)
//
//   - Anything else (not JSON, a number, a non-empty string, an object
//     without "records", a record not in the batch or in it twice, a value
//     that is not base64 ...) is an enrichment failure: an error, retried
//     by the runner like a failing target, with the enrichment called again.
//
// The answer is capped at MaxResponseSize (6 MB); a larger one is a
// failure. A failure to call (a connection refused, a timeout, 429, 5xx, a
// function error) is retried; an answer saying the request itself is wrong
// (another 4xx) is permanent.
//
// Example function (Go, github.com/aws/aws-lambda-go), adding a field to
// every JSON value and dropping the records without one:
//
//	func handle(ev events.KafkaEvent) (events.KafkaEvent, error) {
//		for pk, recs := range ev.Records {
//			var kept []events.KafkaRecord
//			for _, r := range recs {
//				raw, _ := base64.StdEncoding.DecodeString(r.Value)
//				var order map[string]any
//				if json.Unmarshal(raw, &order) != nil || order["customerId"] == nil {
//					continue // dropped
//				}
//				order["tier"] = tierOf(order["customerId"])
//				v, _ := json.Marshal(order)
//				r.Value = base64.StdEncoding.EncodeToString(v)
//				kept = append(kept, r)
//			}
//			ev.Records[pk] = kept
//		}
//		return ev, nil
//	}
//
// The same with inputTemplate: '{"id": <$.value.orderId>}' receives
// [{"id":1},{"id":2},...] and answers one new value per element, or null to
// drop that record. examples/kafka-to-lambda runs such a function.
package enrich
