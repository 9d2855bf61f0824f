package http

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// answerOK is a transport that answers 200 without a network, so a
// benchmark measures the target's own work per request.
type answerOK struct{}

func (answerOK) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

func overheadTarget(b *testing.B, block string) *target {
	src := "pipes:\n  - name: bench\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n    target:\n      http:\n"
	for _, l := range strings.Split(block, "\n") {
		src += "        " + l + "\n"
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	tg, err := cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	t := tg.(*target)
	t.client.Transport = answerOK{}
	return t
}

// BenchmarkRecordOverhead is record mode without a network: rendering the
// body, the path, query and headers, and the client's bookkeeping.
func BenchmarkRecordOverhead(b *testing.B) {
	for _, tc := range []struct{ name, block string }{
		{"template", "url: http://127.0.0.1:1/in\ninputTemplate: '{\"id\": <$.value.orderId>, \"customer\": \"<$.value.customer>\"}'"},
		{"template+params", "url: http://127.0.0.1:1/c/*\ninputTemplate: '{\"id\": <$.value.orderId>, \"customer\": \"<$.value.customer>\"}'\npathParameterValues: [$.value.customer]\nheaderParameters: {X-Order: $.value.orderId}\nqueryStringParameters: {key: $.key}"},
		{"record as is", "url: http://127.0.0.1:1/in\nmode: record"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			t := overheadTarget(b, tc.block)
			batch := &pipeline.Batch{}
			for o := range 100 {
				batch.Records = append(batch.Records, pipeline.Record{Topic: "orders", Partition: 0, Offset: int64(o), Timestamp: time.UnixMilli(1e12),
					Key: []byte(fmt.Sprint("k", o)), Value: []byte(fmt.Sprintf(`{"orderId":%d,"customer":"c-%d","total":1.5}`, o, o%7))})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for i := range batch.Records {
					batch.Records[i].ResetView()
				}
				if err := t.Deliver(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch.Records))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
