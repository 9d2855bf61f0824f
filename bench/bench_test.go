package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestValueIsJSONOfTheAskedSize(t *testing.T) {
	for _, size := range []int{16, 17, 40, 63, 64, 65, 100, 200, 512, 1000, 1024, 4096} {
		for _, i := range []int{0, 7, 123456, 99999999} {
			v := valueOf(i, size)
			if len(v) != size {
				t.Fatalf("valueOf(%d, %d) is %d bytes", i, size, len(v))
			}
			var obj map[string]any
			if err := json.Unmarshal(v, &obj); err != nil {
				t.Fatalf("valueOf(%d, %d) = %s: %v", i, size, v, err)
			}
		}
	}
	if k := keyOf(42); len(k) != 16 {
		t.Fatalf("keyOf(42) = %q, want 16 bytes", k)
	}
	// The 1 KiB value has structure to decode, not just padding.
	var obj map[string]any
	json.Unmarshal(valueOf(1, 1024), &obj)
	if items, _ := obj["items"].([]any); len(items) < 10 {
		t.Fatalf("a 1 KiB value has %d items, want at least 10", len(items))
	}
}

func TestMedianPicksTheMiddleRate(t *testing.T) {
	rs := []run{{rate: 3, result: result{HWMKiB: 10}}, {rate: 1, result: result{HWMKiB: 30}}, {rate: 2, result: result{HWMKiB: 20}}}
	m, maxRSS := median(rs)
	if m.rate != 2 || maxRSS != 30 {
		t.Fatalf("median = %v, max RSS %d; want rate 2, 30", m.rate, maxRSS)
	}
	m, _ = median(rs[:2])
	if m.rate != 1 {
		t.Fatalf("median of two = %v, want the lower, 1", m.rate)
	}
}

// TestModes runs every mode in this process against a real broker and
// endpoint, as the child processes do.
func TestModes(t *testing.T) {
	const n, partitions = 3000, 4
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "bench", "bench-skew"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	if err := produce(addr, "bench", partitions, n, 512, false); err != nil {
		t.Fatal(err)
	}
	if err := produce(addr, "bench-skew", partitions, n, 512, true); err != nil {
		t.Fatal(err)
	}
	var posted atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Records map[string][]json.RawMessage `json:"records"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, recs := range env.Records {
			posted.Add(int64(len(recs)))
		}
	}))
	defer srv.Close()

	for _, tc := range []struct{ mode, decoder, topic string }{
		{modePoll, "std", "bench"},
		{modePipe, "std", "bench"},
		{modeJSON, "std", "bench"},
		{modeJSON, "view", "bench"},
		{modeSkew, "std", "bench-skew"},
	} {
		t.Run(tc.mode+"-"+tc.decoder, func(t *testing.T) {
			posted.Store(0)
			a := childArgs{mode: tc.mode, broker: addr, topic: tc.topic, group: fmt.Sprintf("test-%s-%s", tc.mode, tc.decoder),
				url: srv.URL, n: n, batchSize: 100, decoder: tc.decoder, timeout: time.Minute}
			var res result
			if tc.mode == modePoll {
				res, err = runPoll(context.Background(), a, time.Now())
			} else {
				res, err = runPipe(context.Background(), a, time.Now())
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != n || res.Window <= 0 {
				t.Fatalf("records %d, window %d; want %d records in a positive window", res.Records, res.Window, n)
			}
			if tc.mode != modePoll && posted.Load() != n {
				t.Fatalf("the endpoint got %d records, want %d", posted.Load(), n)
			}
		})
	}
}
