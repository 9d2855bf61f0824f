package awsmsg

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

type statusErr struct{ msg string }

func (e *statusErr) Error() string   { return e.msg }
func (e *statusErr) StatusCode() int { return 503 }

func failure(err error) *pipeline.Failure {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "k:9092",
		Records: []pipeline.Record{{Topic: "orders", Partition: 1, Offset: 7, Timestamp: time.UnixMilli(5), Value: []byte(strings.Repeat("v", 4000))}}}
	return &pipeline.Failure{Pipe: "p", RequestID: "r", Condition: pipeline.RetryAttemptsExhausted, Attempts: 1,
		Stage: "target", Err: err, Batch: b, Time: time.Unix(0, 0)}
}

// TestShortenedToFit: error texts whose JSON escapes are longer than the
// text (quotes, control characters, multi-byte characters) are cut until
// the message fits, on a character boundary, keeping the error's status.
func TestShortenedToFit(t *testing.T) {
	for _, text := range []string{strings.Repeat(`"`, 5000), strings.Repeat("\x01", 5000), strings.Repeat("€", 5000), "ok " + strings.Repeat("\n", 3000)} {
		b := Builder{Payload: true, MaxBytes: 1024, Omitted: "omitted"}
		m, err := b.Build(failure(&statusErr{text}))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			ResponseContext struct{ StatusCode int } `json:"responseContext"`
			ErrorMessage    string                   `json:"errorMessage"`
		}
		if err := json.Unmarshal(m.Body, &rec); err != nil {
			t.Fatalf("%q...: %v", text[:3], err)
		}
		cut, ok := strings.CutSuffix(rec.ErrorMessage, cutMark)
		if m.Size() > 1024 || m.Size() <= 1024-6 || !ok || !strings.HasPrefix(text, cut) ||
			rec.ResponseContext.StatusCode != 503 || m.Payload || m.Attrs[len(m.Attrs)-1] != (Attr{AttrPayload, "omitted"}) {
			t.Errorf("%q...: size %d, status %d, payload %v, attrs %v, errorMessage %q", text[:3], m.Size(), rec.ResponseContext.StatusCode, m.Payload, m.Attrs, rec.ErrorMessage)
		}
	}

	// Small enough: sent whole, with the records.
	b := Builder{Payload: true, MaxBytes: 256 << 10}
	f := failure(errors.New("boom"))
	m, err := b.Build(f)
	if err != nil || !m.Payload || string(m.Body) != string(pipeline.AppendFailureRecord(nil, f, true)) || len(m.Attrs) != 8 {
		t.Fatalf("whole: %v %v %v", err, m.Payload, m.Attrs)
	}

	// Too large even with no error text: an error naming the setting.
	f.Target = strings.Repeat("t", 2000)
	b = Builder{Payload: true, MaxBytes: 1024, Limit: "maxMessageSize"}
	if _, err := b.Build(f); err == nil || !strings.Contains(err.Error(), "more than maxMessageSize (1024 bytes)") {
		t.Fatalf("too large: %v", err)
	}
}
