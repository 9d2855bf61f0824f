package filter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

// docShapes are values of different shapes: objects without arrays, the
// 1 KiB order, arrays of small arrays, one large array, a document larger
// than the decoder's chunks, many fields with colons in their strings.
func docShapes() map[string]func(i int) string {
	return map[string]func(i int) string{
		"flat object": func(i int) string {
			return fmt.Sprintf(`{"id":%d,"status":"PAID","amount":%d.5,"country":"DE","note":"x\"y"}`, i, i%1000)
		},
		"order": func(int) string { return benchValue },
		"arrays of arrays": func(i int) string {
			var b strings.Builder
			b.WriteString(`{"rows":[`)
			for j := range 40 + i%7 {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `[%d,"r%d",[true,null]]`, j, j)
			}
			b.WriteString(`]}`)
			return b.String()
		},
		"one large array": func(i int) string {
			return `[` + strings.TrimSuffix(strings.Repeat(fmt.Sprintf("%d,", i), 500), ",") + `]`
		},
		"large document": func(i int) string {
			var b strings.Builder
			b.WriteString(`{"items":[`)
			for j := range 300 {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"sku":"S%d","qty":%d,"tags":["a","b"],"at":"10:21:%02d"}`, j, i, j%60)
			}
			b.WriteString(`]}`)
			return b.String()
		},
		"colons in strings": func(i int) string {
			return fmt.Sprintf(`{"t":"%s","n":%d}`, strings.Repeat("12:00:", 40+i%9), i)
		},
	}
}

// TestMemoryStaysBounded runs many fresh records through a filter, as a
// long-running pipe does, and checks that the records' decoded views are
// freed once the records are: the live heap after a collection does not
// grow with the number of records filtered, whatever the values' shapes.
//
// It runs on one P, as a pipe limited to one CPU does: the decoder's pooled
// memory then stays with the one goroutine that decodes.
func TestMemoryStaysBounded(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := newStage(t, "    filter:\n      patterns: ['{\"topic\": [\"orders\"]}']\n", nil)
	shapes := docShapes()
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		shape := shapes[name]
		t.Run(name, func(t *testing.T) {
			var values [][]byte
			for i := range 10 {
				values = append(values, []byte(shape(i)))
			}
			size := 0
			for _, v := range values {
				size += len(v)
			}
			n := max(1000, 4<<20/size*10) // about 4 MB of JSON, some 30 MB decoded
			process := func(n int) {
				for k := range n / 10 {
					b := &pipeline.Batch{Records: make([]pipeline.Record, 10)}
					for i := range b.Records {
						b.Records[i] = pipeline.Record{Topic: "orders", Offset: int64(k*10 + i), Value: values[i]}
					}
					out, err := s.Process(context.Background(), b)
					if err != nil || len(out.Records) != 10 {
						t.Fatalf("Process: %v", err)
					}
					if v := b.Records[0].View().Get("value"); v == nil || v.Type != pipeline.TypeObject && v.Type != pipeline.TypeArray {
						t.Fatalf("value not decoded as JSON")
					}
				}
			}
			// The live heap is measured while records keep coming: between
			// collections, a batch is filtered, as a busy pipe does.
			live := func(n int) uint64 {
				process(n)
				for range 3 {
					runtime.GC()
					process(10)
				}
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			first := live(n / 10)
			after := live(n)
			t.Logf("%d records of %d bytes on average: live heap %d KiB, then %d KiB", n, size/10, first>>10, after>>10)
			if after > first+8<<20 {
				t.Fatalf("the live heap grew by %d MiB over %d records: decoded views are kept after their records are gone", (after-first)>>20, n)
			}
		})
	}
}

// TestViewsStayIndependent decodes records of every shape one after
// another, keeping them all, and checks each view afterwards against
// encoding/json: the memory the decoder shares between records never
// mixes them up.
func TestViewsStayIndependent(t *testing.T) {
	shapes := docShapes()
	names := slices.Sorted(maps.Keys(shapes))
	var recs []pipeline.Record
	for i := range 600 {
		// Shapes in turn, so that large and small, array-heavy and
		// field-heavy documents follow one another.
		v := shapes[names[i%len(names)]](i)
		recs = append(recs, pipeline.Record{Topic: "orders", Offset: int64(i), Value: []byte(v)})
		recs[i].View()
	}
	for i := range recs {
		var want any
		if err := json.Unmarshal(recs[i].Value, &want); err != nil {
			t.Fatal(err)
		}
		if got := recs[i].View().Get("value").Interface(); !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d (%s) decoded to something else", i, names[i%len(names)])
		}
	}
}
