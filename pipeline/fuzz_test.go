package pipeline_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// FuzzEnvelope builds a batch from arbitrary fields: the envelope must be
// valid JSON, hold the record's bytes, and have the size the size functions
// predict.
func FuzzEnvelope(f *testing.F) {
	f.Add("orders", int32(0), int64(15), int64(1545084650987), false, []byte("key"), false, []byte("value"), false, "h", []byte{0, 0x7f, 0x80, 0xdc, 0xff}, uint8(3))
	f.Add("", int32(-1), int64(-1), int64(-1), true, []byte{}, false, []byte(nil), true, "", []byte(nil), uint8(0))
	f.Add("q\"\\\x00\b\f\n\r\t\u2028\xff<>&", int32(2147483647), int64(9223372036854775807), int64(-9223372036854775808), true, []byte{0xfb, 0xff}, true, []byte{0xfe}, false, "\xe2\x82\u2029", []byte{1}, uint8(255))
	f.Fuzz(func(t *testing.T, topic string, partition int32, offset, ms int64, logAppend bool, key []byte, nullKey bool, value []byte, nullValue bool, hkey string, hvalue []byte, n uint8) {
		if nullKey {
			key = nil
		} else if key == nil {
			key = []byte{}
		}
		if nullValue {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		r := pipeline.Record{Topic: topic, Partition: partition, Offset: offset, Timestamp: time.UnixMilli(ms), Key: key, Value: value}
		if logAppend {
			r.TimestampType = pipeline.LogAppendTime
		}
		for range n % 4 {
			r.Headers = append(r.Headers, pipeline.Header{Key: hkey, Value: hvalue})
		}
		b := pipeline.Batch{EventSource: topic, BootstrapServers: hkey}
		for i := range int(n%5) + 1 {
			r.Offset = offset + int64(i)
			b.Records = append(b.Records, r)
		}
		// A second partition, so the envelope has a comma between lists.
		other := r
		other.Topic, other.Partition = topic+"x", partition
		if n%2 == 1 {
			b.Records = append(b.Records, other)
		}

		out := pipeline.AppendEnvelope(nil, &b)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %q", out)
		}
		if got := pipeline.EnvelopeSize(&b); got != len(out) {
			t.Fatalf("EnvelopeSize = %d, len(AppendEnvelope) = %d: %q", got, len(out), out)
		}
		if got := pipeline.RecordSize(&r); got != len(pipeline.AppendRecord(nil, &r)) {
			t.Fatalf("RecordSize = %d, len(AppendRecord) = %d", got, len(pipeline.AppendRecord(nil, &r)))
		}

		var env struct {
			Records map[string][]struct {
				Partition     int32               `json:"partition"`
				Offset        int64               `json:"offset"`
				Timestamp     int64               `json:"timestamp"`
				TimestampType string              `json:"timestampType"`
				Key           *string             `json:"key"`
				Value         *string             `json:"value"`
				Headers       []map[string][]int8 `json:"headers"`
			} `json:"records"`
		}
		if err := json.Unmarshal(out, &env); err != nil {
			t.Fatalf("decoding: %v\n%q", err, out)
		}
		count := 0
		for _, list := range env.Records {
			for _, got := range list {
				count++
				if got.Partition != partition || got.Timestamp != time.UnixMilli(ms).UnixMilli() || got.TimestampType != r.TimestampType.String() {
					t.Fatalf("partition %d timestamp %d %s", got.Partition, got.Timestamp, got.TimestampType)
				}
				for _, f := range []struct {
					got  *string
					want []byte
				}{{got.Key, key}, {got.Value, value}} {
					if (f.got == nil) != (f.want == nil) {
						t.Fatalf("null-ness lost: %v for %q", f.got, f.want)
					}
					if f.got != nil {
						dec, err := base64.StdEncoding.DecodeString(*f.got)
						if err != nil || !bytes.Equal(dec, f.want) {
							t.Fatalf("%q decodes to %q, %v; want %q", *f.got, dec, err, f.want)
						}
					}
				}
				if len(got.Headers) != len(r.Headers) {
					t.Fatalf("%d headers, want %d", len(got.Headers), len(r.Headers))
				}
				for _, h := range got.Headers {
					for _, v := range h {
						if len(v) != len(hvalue) {
							t.Fatalf("header of %d bytes, want %d", len(v), len(hvalue))
						}
						for i, c := range v {
							if byte(c) != hvalue[i] {
								t.Fatalf("header byte %d = %d, want %d", i, c, hvalue[i])
							}
						}
					}
				}
			}
		}
		if count != len(b.Records) {
			t.Fatalf("%d records decoded, %d in the batch", count, len(b.Records))
		}
	})
}

// FuzzParse: Parse never panics, and returns either a config or a non-empty
// list of problems in file order that name the file.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`
shutdownTimeout: 10s
pipes:
  - name: orders
    source:
      kafka: &k
        bootstrapServers: "a:1,b:2"
        topics: [orders, "${UNSET:-x}"]
        batchSize: 10
        maximumBatchingWindow: 1s
        partitionBuffer: 1MB
        startingPosition: AT_TIMESTAMP
        startingPositionTimestamp: 2020-01-01T00:00:00Z
    target:
      http: {url: "http://h/", headers: {A: $$b}}
  - {name: b, source: {kafka: *k}, target: {stdout: {}}}
`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := pipeline.Parse("fuzz.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", cfg, err)
		}
		if err != nil {
			var ps pipeline.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a list of problems: %v", err)
			}
			for i, p := range ps {
				if !strings.HasPrefix(p.Error(), "fuzz.yaml:") || p.Msg == "" {
					t.Fatalf("problem %q", p.Error())
				}
				if i > 0 && (p.Line < ps[i-1].Line || p.Line == ps[i-1].Line && p.Column < ps[i-1].Column) {
					t.Fatalf("problems out of order: %v", err)
				}
			}
			return
		}
		if len(cfg.Pipes) == 0 {
			t.Fatal("a config with no pipes")
		}
		names := map[string]bool{}
		for _, p := range cfg.Pipes {
			if names[p.Name] || p.Source == nil || p.Target == nil || p.Line == 0 {
				t.Fatalf("pipe %+v", p)
			}
			names[p.Name] = true
		}
	})
}
