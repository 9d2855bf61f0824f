package main

import (
	"slices"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/sources/kafka"
	kafkatarget "github.com/pipe-run/pipe/targets/kafka"
)

// TestUseEmbedded: sources move to the embedded broker, and a kafka target
// on the source's cluster moves with them; one on another cluster stays.
func TestUseEmbedded(t *testing.T) {
	cfg, err := pipeline.Parse("pipes.yaml", []byte(`pipes:
  - name: same
    source:
      kafka: {bootstrapServers: "a:9092,b:9092", topics: [orders]}
    target:
      kafka: {bootstrapServers: [b:9092, a:9092], topic: copy}
  - name: other
    source:
      kafka: {bootstrapServers: a:9092, topics: [orders]}
    target:
      kafka: {bootstrapServers: elsewhere:9092, topic: copy}
`))
	if err != nil {
		t.Fatal(err)
	}
	useEmbedded(cfg, "127.0.0.1:4242")
	embedded := []string{"127.0.0.1:4242"}
	for i, wantTarget := range [][]string{embedded, {"elsewhere:9092"}} {
		pc := cfg.Pipes[i]
		if got := pc.Source.(*kafka.Config).Brokers(); !slices.Equal(got, embedded) {
			t.Errorf("pipe %s: source brokers %v", pc.Name, got)
		}
		if got := pc.Target.(*kafkatarget.Config).Brokers(); !slices.Equal(got, wantTarget) {
			t.Errorf("pipe %s: target brokers %v, want %v", pc.Name, got, wantTarget)
		}
	}
}
