package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// bodySink is an HTTP endpoint that keeps every request body, in arrival
// order.
type bodySink struct {
	mu     sync.Mutex
	bodies []string
	types  []string
}

func (s *bodySink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.types = append(s.types, r.Header.Get("Content-Type"))
	s.mu.Unlock()
}

func (s *bodySink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// TestFilterAndTemplateToHTTP runs the binary with an event-pattern filter,
// an expression filter and a JSON input template on the http target, one
// request per record: the endpoint receives exactly the bodies of the
// records that pass, rendered from each record, valid JSON whatever the
// values hold, in offset order per partition; filtered records are
// committed too.
func TestFilterAndTemplateToHTTP(t *testing.T) {
	b := startBroker(t)
	const topic, group = "stage-orders", "e2e-stages"
	b.createTopic(t, topic)

	type order struct {
		key     string
		typ     string
		id      int
		name    string
		amount  float64
		source  string
		notJSON bool
	}
	var orders []order
	for i := range 240 {
		o := order{key: fmt.Sprintf("k%d", i), typ: "order", id: 1000 + i, name: fmt.Sprintf("Name %d", i), amount: float64(i), source: "web"}
		switch i % 6 {
		case 1:
			o.typ = "refund"
		case 2:
			o.name = "Quote \" back\\slash\nnew line \u00e9 \U0001F600"
		case 3:
			o.source = "test" // kept out by the expression
		case 4:
			o.notJSON = true
		}
		orders = append(orders, o)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i, o := range orders {
		v, _ := json.Marshal(map[string]any{"type": o.typ, "orderId": o.id, "customer": map[string]any{"name": o.name}, "amount": o.amount})
		if o.notJSON {
			v = []byte("plain text order " + o.key)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Key: []byte(o.key), Value: v,
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte(o.source)}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offsets := map[string][2]int64{} // key -> partition, offset
	for _, r := range recs {
		offsets[string(r.Key)] = [2]int64{int64(r.Partition), r.Offset}
	}

	sink := &bodySink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "pipes.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`admin: {address: "127.0.0.1:0"}
pipes:
  - name: shaped
    source:
      kafka:
        bootstrapServers: [%s]
        topics: [%s]
        consumerGroupId: %s
        maximumBatchingWindow: 50ms
    filter:
      patterns:
        - '{"value": {"type": ["order"]}}'
      expression: headers["source"] != "test"
    target:
      http:
        url: %s/orders
        inputTemplate: '{"id": <$.value.orderId>, "who": "<$.value.customer.name>", "key": "<$.key>", "at": "<$.topic>/<$.partition>/<$.offset>", "pipe": "<aws.pipes.pipe-name>", "amount": <$.value.amount>}'
`, b.addr, topic, group, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Expected bodies, as parsed JSON, per partition in offset order.
	want := map[int64][]map[string]any{}
	total := 0
	for _, o := range orders {
		if o.typ != "order" || o.source == "test" || o.notJSON {
			continue
		}
		po := offsets[o.key]
		want[po[0]] = append(want[po[0]], map[string]any{"id": float64(o.id), "who": o.name, "key": o.key,
			"at": fmt.Sprintf("%s/%d/%d", topic, po[0], po[1]), "pipe": "shaped", "amount": o.amount})
		total++
	}

	p := startProc(t, "pipe stages", nil, nil, pipeBin, "run", "-f", cfg)
	waitFor(t, 60*time.Second, fmt.Sprintf("%d bodies", total), func() (bool, string) {
		return sink.count() >= total, fmt.Sprintf("%d bodies", sink.count())
	}, p, b.proc)
	// Every record is done: delivered or filtered, so all are committed.
	ends := b.endOffsets(t, topic)
	waitFor(t, 30*time.Second, "every offset committed", func() (bool, string) {
		c, err := b.tryCommitted(group, topic)
		if err != nil {
			return false, err.Error()
		}
		return reflect.DeepEqual(c, ends), fmt.Sprintf("committed %v, end %v", c, ends)
	}, p, b.proc)
	p.stop(t)

	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.bodies) != total {
		t.Fatalf("%d bodies, want %d", len(sink.bodies), total)
	}
	got := map[int64][]map[string]any{}
	for i, body := range sink.bodies {
		if sink.types[i] != "application/json" {
			t.Errorf("body %d: Content-Type %q", i, sink.types[i])
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("body %d is not JSON: %v\n%s", i, err, body)
		}
		at, _ := m["at"].(string)
		parts := strings.Split(at, "/")
		if len(parts) != 3 {
			t.Fatalf("body %d: at %q", i, at)
		}
		var part int64
		fmt.Sscan(parts[1], &part)
		got[part] = append(got[part], m)
	}
	if !reflect.DeepEqual(got, want) {
		for part := range want {
			if !reflect.DeepEqual(got[part], want[part]) {
				t.Errorf("partition %d:\n got %v\nwant %v", part, got[part], want[part])
			}
		}
	}
	if strings.Contains(p.errors(), "level=WARN") {
		t.Errorf("warnings in the log:\n%s", p.errors())
	}
}
