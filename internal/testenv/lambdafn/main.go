// Command lambdafn is the Lambda function that tests run behind AWS's
// runtime interface emulator (see testenv.Lambda). It is written with
// github.com/aws/aws-lambda-go, as a user's function would be, and its
// behaviour is chosen by environment variables:
//
//	PIPE_FN_MODE       echo (default): decode the event as events.KafkaEvent
//	                   and answer with it; an event that does not decode is a
//	                   function error.
//	                   fail-keys: decode events.KafkaEvent and answer
//	                   {"batchItemFailures": [...]} naming every record whose
//	                   key is one of PIPE_FN_FAIL_KEYS (comma-separated);
//	                   with PIPE_FN_FAIL_ONCE=true, only the first time the
//	                   function sees that key.
//	                   error: answer with a function error.
//	                   enrich: an envelope is answered with the envelope of
//	                   its records with values upper-cased, leaving out
//	                   records keyed "drop"; a JSON array is answered with
//	                   one {"enriched": <element>} per element.
//	                   reply: answer with the bytes of the file PIPE_FN_REPLY,
//	                   read at each invocation (so a test can change it).
//	PIPE_FN_RECORD     a file to which every event is appended as one JSON
//	                   line: {"payload": "<the event as received>",
//	                   "event": <events.KafkaEvent as decoded, or null>}.
//
// The event {"pipeTestenvPing":true} is answered with "pong" and not
// recorded: testenv sends it to wait until the function is up.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// Ping is the event testenv sends to wait for the function.
const ping = `{"pipeTestenvPing":true}`

type handler struct {
	mode     string
	record   string
	reply    string
	failKeys map[string]bool
	failOnce bool
	mu       sync.Mutex
	failed   map[string]bool // keys reported failed so far
}

func main() {
	h := &handler{
		mode:     os.Getenv("PIPE_FN_MODE"),
		record:   os.Getenv("PIPE_FN_RECORD"),
		reply:    os.Getenv("PIPE_FN_REPLY"),
		failKeys: map[string]bool{},
		failOnce: os.Getenv("PIPE_FN_FAIL_ONCE") == "true",
		failed:   map[string]bool{},
	}
	if h.mode == "" {
		h.mode = "echo"
	}
	for _, k := range strings.Split(os.Getenv("PIPE_FN_FAIL_KEYS"), ",") {
		if k != "" {
			h.failKeys[k] = true
		}
	}
	lambda.Start(h)
}

// itemFailure is one entry of a partial batch response for Kafka.
type itemFailure struct {
	ItemIdentifier struct {
		Partition string `json:"partition"`
		Offset    int64  `json:"offset"`
	} `json:"itemIdentifier"`
}

// Invoke implements lambda.Handler, so the answer goes back byte for byte.
func (h *handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if string(payload) == ping {
		return []byte(`"pong"`), nil
	}
	var ev *events.KafkaEvent
	if bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) {
		var e events.KafkaEvent
		if err := json.Unmarshal(payload, &e); err == nil {
			ev = &e
		} else if h.mode == "echo" || h.mode == "fail-keys" {
			h.write(payload, nil)
			return nil, fmt.Errorf("decoding events.KafkaEvent: %w", err)
		}
	}
	if err := h.write(payload, ev); err != nil {
		return nil, err
	}
	switch h.mode {
	case "echo":
		if ev == nil {
			return nil, errors.New("the event is not a Kafka event")
		}
		return json.Marshal(ev)
	case "fail-keys":
		if ev == nil {
			return nil, errors.New("the event is not a Kafka event")
		}
		failures := []itemFailure{}
		for pk, recs := range ev.Records {
			for _, r := range recs {
				key, err := base64.StdEncoding.DecodeString(r.Key)
				if err != nil {
					return nil, fmt.Errorf("record %s/%d: key: %w", pk, r.Offset, err)
				}
				if h.failKeys[string(key)] && !(h.failOnce && h.failed[string(key)]) {
					h.failed[string(key)] = true
					var f itemFailure
					f.ItemIdentifier.Partition = pk
					f.ItemIdentifier.Offset = r.Offset
					failures = append(failures, f)
				}
			}
		}
		return json.Marshal(map[string]any{"batchItemFailures": failures})
	case "error":
		return nil, errors.New("the function failed on purpose")
	case "enrich":
		return enrich(payload, ev)
	case "reply":
		return os.ReadFile(h.reply)
	}
	return nil, fmt.Errorf("unknown PIPE_FN_MODE %q", h.mode)
}

// write appends the event to the record file, if there is one.
func (h *handler) write(payload []byte, ev *events.KafkaEvent) error {
	if h.record == "" {
		return nil
	}
	line, err := json.Marshal(struct {
		Payload string             `json:"payload"`
		Event   *events.KafkaEvent `json:"event"`
	}{string(payload), ev})
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := os.OpenFile(h.record, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func enrich(payload []byte, ev *events.KafkaEvent) ([]byte, error) {
	if ev == nil {
		var elems []json.RawMessage
		if err := json.Unmarshal(payload, &elems); err != nil {
			return nil, fmt.Errorf("the event is neither a Kafka event nor a JSON array: %w", err)
		}
		out := make([]map[string]json.RawMessage, len(elems))
		for i, e := range elems {
			out[i] = map[string]json.RawMessage{"enriched": e}
		}
		return json.Marshal(out)
	}
	for pk, recs := range ev.Records {
		kept := recs[:0]
		for _, r := range recs {
			key, _ := base64.StdEncoding.DecodeString(r.Key)
			if string(key) == "drop" {
				continue
			}
			v, err := base64.StdEncoding.DecodeString(r.Value)
			if err != nil {
				return nil, fmt.Errorf("record %s/%d: value: %w", pk, r.Offset, err)
			}
			r.Value = base64.StdEncoding.EncodeToString(bytes.ToUpper(v))
			kept = append(kept, r)
		}
		ev.Records[pk] = kept
	}
	return json.Marshal(ev)
}
