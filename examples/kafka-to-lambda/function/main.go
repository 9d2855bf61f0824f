// Command function is the example's Lambda function, written with
// github.com/aws/aws-lambda-go as for AWS. The pipe calls it twice per
// batch:
//
//   - as the enrichment, with a JSON array of orders (the pipe's
//     inputTemplate rendered per record): it answers one element per order,
//     the order with a "tier" added, or null to drop an order without a
//     total;
//   - as the target, with the Kafka batch event (events.KafkaEvent): it
//     prints each record and reports the orders marked "fail": true as
//     failed in a partial batch response, the first time it sees them, so
//     the pipe retries them (and the later records of their partitions).
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"sort"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type order struct {
	OrderID any     `json:"orderId"`
	Total   float64 `json:"total"`
	Tier    string  `json:"tier,omitempty"`
	Fail    bool    `json:"fail,omitempty"`
}

type itemFailure struct {
	ItemIdentifier struct {
		Partition string `json:"partition"`
		Offset    int64  `json:"offset"`
	} `json:"itemIdentifier"`
}

// failedOnce remembers the orders reported failed already.
var failedOnce = map[string]bool{}

func handle(ctx context.Context, event json.RawMessage) (any, error) {
	if bytes.HasPrefix(bytes.TrimSpace(event), []byte("[")) {
		return enrich(event)
	}
	var ev events.KafkaEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, fmt.Errorf("not a Kafka event: %w", err)
	}
	return deliver(&ev)
}

// enrich answers the enrichment: one element per order.
func enrich(event json.RawMessage) (any, error) {
	var in []*order
	if err := json.Unmarshal(event, &in); err != nil {
		return nil, fmt.Errorf("not a list of orders: %w", err)
	}
	out := make([]*order, len(in))
	for i, o := range in {
		if o == nil || o.Total == 0 {
			continue // null: the pipe drops this record
		}
		o.Tier = "standard"
		if o.Total >= 100 {
			o.Tier = "gold"
		}
		out[i] = o
	}
	log.Printf("enriched %d orders", len(in))
	return out, nil
}

// deliver handles the batch as the target.
func deliver(ev *events.KafkaEvent) (any, error) {
	failures := []itemFailure{}
	keys := make([]string, 0, len(ev.Records))
	for k := range ev.Records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, pk := range keys {
		for _, r := range ev.Records[pk] {
			key, _ := base64.StdEncoding.DecodeString(r.Key)
			value, _ := base64.StdEncoding.DecodeString(r.Value)
			var o order
			json.Unmarshal(value, &o)
			id := fmt.Sprintf("%s/%d", pk, r.Offset)
			if o.Fail && !failedOnce[id] {
				failedOnce[id] = true
				log.Printf("%s offset %d key=%s: reporting it failed", pk, r.Offset, key)
				var f itemFailure
				f.ItemIdentifier.Partition = pk
				f.ItemIdentifier.Offset = r.Offset
				failures = append(failures, f)
				continue
			}
			log.Printf("%s offset %d key=%s value=%s", pk, r.Offset, key, value)
		}
	}
	return map[string]any{"batchItemFailures": failures}, nil
}

func main() {
	lambda.Start(handle)
}
