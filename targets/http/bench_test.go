package http_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// benchRecords is a batch of n records over parts partitions with ~200-byte
// JSON values.
func benchRecords(n, parts int) *pipeline.Batch {
	b := batchOf()
	for p := range parts {
		for o := range n / parts {
			v := fmt.Sprintf(`{"orderId":%d,"customer":"cust-%d","note":"a \"quoted\" note","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"total":123.45,"currency":"EUR","pad":"%s"}`,
				o, p, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
			b.Records = append(b.Records, jrec(int32(p), int64(o), fmt.Sprintf("key-%d", o), v))
		}
	}
	return b
}

const benchBlock = `mode: record
inputTemplate: '{"id": <$.value.orderId>, "customer": "<$.value.customer>", "total": <$.value.total>, "pipe": "<aws.pipes.pipe-name>"}'
pathParameterValues: [$.value.customer]
headerParameters: {X-Order: $.value.orderId, X-Static: s}
queryStringParameters: {key: $.key}`

// BenchmarkRecordMode sends a batch of 100 records, one request each, to a
// loopback endpoint that answers at once or after a delay, with the
// partitions sent one at a time or together.
func BenchmarkRecordMode(b *testing.B) {
	for _, delay := range []time.Duration{0, time.Millisecond} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if delay > 0 {
				time.Sleep(delay) // the endpoint's own latency
			}
		}))
		for _, conc := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("latency=%v/concurrency=%d", delay, conc), func(b *testing.B) {
				tg := build(b, fmt.Sprintf("url: %s/c/*\nconcurrency: %d\n%s", srv.URL, conc, benchBlock))
				batch := benchRecords(100, 8)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := tg.Deliver(b.Context(), batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*len(batch.Records))/b.Elapsed().Seconds(), "records/s")
			})
		}
		srv.Close()
	}
}

// BenchmarkBatchMode sends a batch of 100 records as one envelope.
func BenchmarkBatchMode(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tg := build(b, "url: "+srv.URL)
	batch := benchRecords(100, 8)
	b.ReportAllocs()
	for range b.N {
		if err := tg.Deliver(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch.Records))/b.Elapsed().Seconds(), "records/s")
}
