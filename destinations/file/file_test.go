package file_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/destinations/file"
	"github.com/pipe-run/pipe/pipeline"
)

func failure(pipe string, offsets ...int64) *pipeline.Failure {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "k:9092"}
	for _, o := range offsets {
		b.Records = append(b.Records, pipeline.Record{Topic: "orders", Partition: 1, Offset: o, Timestamp: time.UnixMilli(1000 + o), Key: []byte("k"), Value: []byte(`{"n":1}`)})
	}
	return &pipeline.Failure{Pipe: pipe, RequestID: "r", Condition: pipeline.RetryAttemptsExhausted, Attempts: 2,
		Stage: "target", Err: errors.New("boom"), Batch: b, Time: time.Unix(0, 0)}
}

// TestAppendsLinesThatRedriveReads: two destinations on one path (two
// pipes) append whole lines; each line is the on-failure record with its
// payload, which ParseFailureRecord reads back; the directory is created.
func TestAppendsLinesThatRedriveReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "failed.jsonl")
	cfg := &file.Config{Path: path, Sync: true}
	d1, err := cfg.NewDestination(pipeline.Env{Pipe: "a"})
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := cfg.NewDestination(pipeline.Env{Pipe: "b"})
	ctx := context.Background()
	if err := d1.Send(ctx, failure("a", 5, 6)); err != nil {
		t.Fatal(err)
	}
	if err := d2.Send(ctx, failure("b", 9)); err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	// d2 still writes after d1 closed the shared file's first user.
	if err := d2.Send(ctx, failure("b", 10)); err != nil {
		t.Fatal(err)
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if want := string(pipeline.AppendFailureRecord(nil, failure("", 0), true)); !strings.HasPrefix(line, want[:40]) {
			t.Errorf("line does not start like an on-failure record: %.80s", line)
		}
		b, err := pipeline.ParseFailureRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		var offs []string
		for _, r := range b.Records {
			offs = append(offs, string(rune('0'+r.Offset%10)))
		}
		got = append(got, strings.Join(offs, ","))
	}
	if strings.Join(got, " ") != "5,6 9 0" {
		t.Fatalf("records per line: %v", got)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestUnwritable: a path that cannot be created fails Send (the runner then
// retries it and the partition waits); a directory path fails validation.
func TestUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	d, _ := (&file.Config{Path: filepath.Join(blocker, "x.jsonl")}).NewDestination(pipeline.Env{})
	if err := d.Send(context.Background(), failure("a", 1)); err == nil {
		t.Fatal("Send into a path under a regular file succeeded")
	}
	if ps := (&file.Config{Path: dir}).Validate(); len(ps) != 1 || ps[0].Msg != "is a directory" {
		t.Fatalf("Validate(dir) = %v", ps)
	}
}
