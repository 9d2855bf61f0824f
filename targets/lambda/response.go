package lambda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/pipe-run/pipe/pipeline"
)

// errPartialResponse starts the errors of a partial batch response that
// fails the whole invocation.
var errPartialResponse = errors.New("partial batch response")

// itemFailures reads a function's partial batch response to the envelope of
// b and returns, in ascending order, the indexes in b.Records of the records
// to retry: each record named in batchItemFailures and every later record of
// its partition.
//
// As Lambda does, an empty answer, null, an object without
// batchItemFailures, and a null or empty batchItemFailures list mean every
// record succeeded. An answer that is not JSON, or not an object, a
// batchItemFailures that is not a list, and an entry whose itemIdentifier is
// missing, null, not an object, has no non-empty "partition" string or no
// integer "offset", or names a record that is not in the batch, fail the
// whole invocation (the error).
func itemFailures(resp []byte, b *pipeline.Batch) ([]int, error) {
	s := bytes.TrimSpace(resp)
	if len(s) == 0 || string(s) == "null" {
		return nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(s, &top); err != nil {
		return nil, fmt.Errorf("%w: the answer is not a JSON object (%s): %s", errPartialResponse, jsonProblem(err), snippet(s, 128))
	}
	raw, ok := top["batchItemFailures"]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%w: batchItemFailures is not a list: %s", errPartialResponse, snippet(raw, 128))
	}
	if len(items) == 0 {
		return nil, nil
	}
	type coord struct {
		pk     string
		offset int64
	}
	at := make(map[coord]int, len(b.Records))
	for i := range b.Records {
		r := &b.Records[i]
		at[coord{r.Topic + "-" + strconv.Itoa(int(r.Partition)), r.Offset}] = i
	}
	marked := make([]bool, len(b.Records))
	for n, item := range items {
		var entry map[string]json.RawMessage
		if err := json.Unmarshal(item, &entry); err != nil || entry == nil {
			return nil, fmt.Errorf("%w: batchItemFailures[%d] is not an object: %s", errPartialResponse, n, snippet(item, 128))
		}
		id, ok := entry["itemIdentifier"]
		var ident map[string]json.RawMessage
		if !ok || isNull(id) || json.Unmarshal(id, &ident) != nil {
			return nil, fmt.Errorf("%w: batchItemFailures[%d] has no itemIdentifier object: %s", errPartialResponse, n, snippet(item, 128))
		}
		var pk string
		if p, ok := ident["partition"]; !ok || json.Unmarshal(p, &pk) != nil || pk == "" {
			return nil, fmt.Errorf(`%w: batchItemFailures[%d].itemIdentifier has no "partition" string: %s`, errPartialResponse, n, snippet(id, 128))
		}
		o, ok := ident["offset"]
		offset, err := strconv.ParseInt(string(bytes.TrimSpace(o)), 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf(`%w: batchItemFailures[%d].itemIdentifier has no integer "offset": %s`, errPartialResponse, n, snippet(id, 128))
		}
		i, ok := at[coord{pk, offset}]
		if !ok {
			return nil, fmt.Errorf("%w: batchItemFailures[%d] names %s offset %d, which is not in the batch", errPartialResponse, n, pk, offset)
		}
		marked[i] = true
	}
	var failed []int
	for i := range b.Records {
		if i > 0 && marked[i-1] && b.Records[i].Partition == b.Records[i-1].Partition && b.Records[i].Topic == b.Records[i-1].Topic {
			marked[i] = true
		}
		if marked[i] {
			failed = append(failed, i)
		}
	}
	return failed, nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// jsonProblem says briefly why a text did not decode.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "not JSON"
	}
	return "another JSON value"
}
