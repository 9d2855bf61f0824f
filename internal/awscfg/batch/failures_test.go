package batch

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

func recs(n int) []pipeline.Record {
	var out []pipeline.Record
	for i := range n {
		out = append(out, pipeline.Record{Topic: "t", Partition: int32(i % 2), Offset: int64(i)})
	}
	return out
}

func TestFailures(t *testing.T) {
	r := recs(12)
	var f Failures
	f.What = "sending to X"
	if f.Err(12) != nil {
		t.Fatal("no failure, but an error")
	}

	f.TooLarge(3, &r[3], "big")
	err := f.Err(12)
	if failed, ok := pipeline.RetryOnlyOf(err); !ok || !slices.Equal(failed, []int{3}) || !pipeline.IsTooLarge(err) {
		t.Fatalf("one record too large: %v %v", err, failed)
	}
	if err.Error() != "sending to X: 1 of 12 records failed permanently: t/1/3: big" {
		t.Fatalf("message %q", err)
	}

	f.Fail(1, &r[1], true, "bad")
	err = f.Err(12)
	if !pipeline.IsPermanent(err) || pipeline.IsTooLarge(err) {
		t.Fatalf("too large and another permanent failure: %v", err)
	}
	if f.Blocked(&r[5]) {
		t.Fatal("a permanent failure blocks its partition")
	}

	f.Fail(0, &r[0], false, "busy")
	if !f.Blocked(&r[2]) || f.Blocked(&r[1]) {
		t.Fatal("a retryable failure must block its partition only")
	}
	f.Skip(2, &r[2])
	f.FailCall([]int{4, 6, 8}, r, errors.New("call failed"))
	for i := 9; i < 12; i++ {
		f.Fail(i, &r[i], true, "x%d", i)
	}
	err = f.Err(12)
	failed, _ := pipeline.RetryOnlyOf(err)
	if pipeline.IsPermanent(err) || !slices.Equal(failed, []int{0, 1, 2, 3, 4, 6, 8, 9, 10, 11}) {
		t.Fatalf("mixed: %v %v", err, failed)
	}
	if !strings.HasPrefix(err.Error(), "sending to X: 10 of 12 records failed: t/1/3: big; t/1/1: bad; t/0/0: busy; 3 records: call failed; t/1/9: x9; and 2 more") {
		t.Fatalf("message %q", err)
	}
}
