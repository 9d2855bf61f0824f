package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

// The README's config reference is generated from the code; it must be
// current.
func TestReadmeReferenceIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := spliceReference(doc, pipeline.Reference())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Fatal("README.md's config reference is stale: run `go run ./cmd/pipe config-reference -w README.md`")
	}
}

// Every example and the quick-start are valid configs.
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/pipes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../pipes.yaml")
	if len(files) < 2 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		if _, err := pipeline.LoadFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
