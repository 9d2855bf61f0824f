package pipeline_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

type discardTarget struct{}

func (discardTarget) Deliver(context.Context, *pipeline.Batch) error { return nil }
func (discardTarget) Close() error                                   { return nil }

type passStage struct{}

func (passStage) Process(_ context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	return b, nil
}

// BenchmarkHandle is the runner's own cost for a batch of 100 records that
// passes one stage and is delivered at once: what the pipe adds around the
// components (metrics, status, retries bookkeeping), per batch.
func BenchmarkHandle(b *testing.B) {
	recs := make([]pipeline.Record, 100)
	value := make([]byte, 1024)
	for i := range recs {
		recs[i] = pipeline.Record{Topic: "bench", Partition: 0, Offset: int64(i), Timestamp: time.Now(), Value: value,
			Headers: []pipeline.Header{{Key: "source", Value: []byte("bench")}}}
	}
	batch := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, Records: recs}
	p := &pipeline.Pipe{Name: "bench", Target: discardTarget{}, Stages: []pipeline.Stage{passStage{}}, StageNames: []string{"filter"},
		Logger: slog.New(slog.DiscardHandler), MaxRetries: -1}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Handle(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
