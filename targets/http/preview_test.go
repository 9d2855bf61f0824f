package http_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

// Preview shows what Deliver would send, without sending, and no secret.
func TestPreview(t *testing.T) {
	t.Setenv("PIPE_TEST_KEY", "key-s3cret")
	block := `url: https://user:url-s3cret@api.example.com/c/*/orders?token=query-s3cret
headers: {X-Team: hdr-s3cret}
auth: {apiKey: {name: X-Key, value: '${PIPE_TEST_KEY}'}}
pathParameterValues: [$.value.customer]
headerParameters: {X-Order: $.value.id, X-Static: s}
queryStringParameters: {key: $.key, v: '2'}
inputTemplate: '{"id": <$.value.id>}'`
	tg := build(t, block)
	b := batchOf(jrec(0, 7, "k1", `{"id": 1, "customer": "acme corp"}`), jrec(0, 8, "k2", `{"id": 2}`))
	tctx := pipeline.NewTemplateContext("orders-api")
	reqs := tg.(pipeline.Previewer).Preview(b, &tctx)
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want one per record", len(reqs))
	}
	want := pipeline.Request{
		Records: []int{0},
		Summary: "POST https://api.example.com/c/acme%20corp/orders",
		Attributes: map[string]string{"header Content-Type": "application/json", "header X-Order": "1", "header X-Static": "s",
			"query key": "k1", "query v": "2"},
		Body: []byte(`{"id": 1}`),
	}
	if !reflect.DeepEqual(reqs[0], want) {
		t.Errorf("request 0:\n got %+v\nwant %+v", reqs[0], want)
	}
	if r := reqs[1]; !strings.Contains(r.Err, "path parameter 1") || r.Body != nil || !reflect.DeepEqual(r.Records, []int{1}) {
		t.Errorf("request 1: %+v, want an error for the empty path parameter", r)
	}
	for _, r := range reqs {
		all := fmt.Sprintf("%+v %s", r, r.Body)
		for _, s := range []string{"url-s3cret", "query-s3cret", "hdr-s3cret", "key-s3cret", "X-Team", "X-Key"} {
			if strings.Contains(all, s) {
				t.Errorf("preview shows %q: %s", s, all)
			}
		}
	}

	if d := tg.(pipeline.Describer).Describe(); d != "https://api.example.com/c/*/orders" {
		t.Errorf("Describe() = %q, want the url without credentials or query", d)
	}

	// Batch mode: one request with the envelope.
	tg = build(t, "url: http://h/in\nmethod: PUT\nheaderParameters: {X-A: b}")
	reqs = tg.(pipeline.Previewer).Preview(b, &tctx)
	if len(reqs) != 1 || !reflect.DeepEqual(reqs[0].Records, []int{0, 1}) || reqs[0].Summary != "PUT http://h/in" ||
		string(reqs[0].Body) != string(pipeline.AppendEnvelope(nil, b)) || reqs[0].Attributes["header X-A"] != "b" {
		t.Errorf("batch preview %+v", reqs)
	}
}
