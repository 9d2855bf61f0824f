package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Conditions of an on-failure record, as Lambda names them.
const (
	RetryAttemptsExhausted     = "RetryAttemptsExhausted"
	MaximumPayloadSizeExceeded = "MaximumPayloadSizeExceeded"
	RecordAgeExceeded          = "RecordAgeExceeded"
)

// Failure is what an on-failure destination receives: records the pipe gave
// up on, and why.
type Failure struct {
	// Pipe names the pipe.
	Pipe string
	// RequestID identifies this failure (a random UUID).
	RequestID string
	// Condition is RetryAttemptsExhausted, MaximumPayloadSizeExceeded or
	// RecordAgeExceeded.
	Condition string
	// Attempts is how many times the records were tried.
	Attempts int
	// Stage is where the last attempt failed: "target", "filter",
	// "transform", "enrichment"; empty for RecordAgeExceeded.
	Stage string
	// Target describes the target (a function ARN, a URL without query).
	Target string
	// Err is the last error; nil for RecordAgeExceeded.
	Err error
	// Batch holds the records, all of one partition, in offset order.
	Batch *Batch
	// Time is when the pipe gave up.
	Time time.Time
}

// Destination receives the records a pipe gives up on. Send returns nil once
// the failure is stored; until then the pipe retries it and the partition
// waits, since the records' offsets may not be committed before.
type Destination interface {
	Send(ctx context.Context, f *Failure) error
	Close() error
}

// DestinationConfig is the decoded config of an on-failure destination kind
// (`onFailure: {file: ...}`).
type DestinationConfig interface {
	NewDestination(env Env) (Destination, error)
}

// RegisterDestination registers an on-failure destination kind under its
// YAML name.
func RegisterDestination[C DestinationConfig](name, doc string, newConfig func() C) {
	register[DestinationConfig](name, doc, func() any { return newConfig() })
}

// StatusCoder is implemented by errors that carry the status code of the
// answer that failed (an HTTP status, a Lambda invoke status).
type StatusCoder interface {
	StatusCode() int
}

// FunctionErrorer is implemented by errors of a Lambda function that
// answered with X-Amz-Function-Error ("Unhandled", "Handled").
type FunctionErrorer interface {
	FunctionError() string
}

// Describer is implemented by targets that can name themselves in failure
// records (a function ARN, a queue URL, an endpoint without its query).
type Describer interface {
	Describe() string
}

// tooLargeError marks a record too large for the target.
type tooLargeError struct{ error }

func (e *tooLargeError) Unwrap() error { return e.error }

// TooLarge wraps a target's error to say the payload is over the target's
// limit: retrying cannot help, and the on-failure record's condition is
// MaximumPayloadSizeExceeded. nil stays nil.
func TooLarge(err error) error {
	if err == nil {
		return nil
	}
	return &tooLargeError{Permanent(err)}
}

// IsTooLarge reports whether err was marked TooLarge.
func IsTooLarge(err error) bool {
	var t *tooLargeError
	return errors.As(err, &t)
}

// stageError names the stage an error came from.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// StageOf returns the stage an error of the runner came from, "target" when
// none is named.
func StageOf(err error) string {
	var s *stageError
	if errors.As(err, &s) {
		return s.stage
	}
	return "target"
}

func newRequestID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[b>>4], hex[b&0xf])
	}
	return string(out)
}

// isoMillis formats a time as Lambda's on-failure records do.
func isoMillis(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// AppendFailureRecord appends the on-failure record of f as JSON: Lambda's
// format (REFERENCE: requestContext, responseContext, version, timestamp,
// KafkaBatchInfo) with pipe, stage and errorMessage added, and, with
// payload, the records as a batch envelope under "payload".
func AppendFailureRecord(dst []byte, f *Failure, payload bool) []byte {
	str := func(dst []byte, s string) []byte { return appendString(dst, s) }
	dst = append(dst, `{"requestContext":{"requestId":`...)
	dst = str(dst, f.RequestID)
	if f.Target != "" {
		dst = append(dst, `,"functionArn":`...)
		dst = str(dst, f.Target)
	}
	dst = append(dst, `,"condition":`...)
	dst = str(dst, f.Condition)
	dst = append(dst, `,"approximateInvokeCount":`...)
	dst = strconv.AppendInt(dst, int64(f.Attempts), 10)
	dst = append(dst, `},"responseContext":`...)
	if f.Condition == RetryAttemptsExhausted {
		dst = append(dst, '{')
		var sc StatusCoder
		comma := false
		if errors.As(f.Err, &sc) && sc.StatusCode() != 0 {
			dst = append(dst, `"statusCode":`...)
			dst = strconv.AppendInt(dst, int64(sc.StatusCode()), 10)
			comma = true
		}
		var fe FunctionErrorer
		if errors.As(f.Err, &fe) {
			if comma {
				dst = append(dst, ',')
			}
			dst = append(dst, `"executedVersion":"$LATEST","functionError":`...)
			dst = str(dst, fe.FunctionError())
		}
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"version":"1.0","timestamp":`...)
	dst = str(dst, isoMillis(f.Time))
	dst = append(dst, `,"KafkaBatchInfo":{"batchSize":`...)
	dst = strconv.AppendInt(dst, int64(len(f.Batch.Records)), 10)
	dst = append(dst, `,"bootstrapServers":`...)
	dst = str(dst, f.Batch.BootstrapServers)
	dst = append(dst, `,"payloadSize":`...)
	dst = strconv.AppendInt(dst, int64(EnvelopeSize(f.Batch)), 10)
	dst = append(dst, `,"recordsInfo":{`...)
	recs := f.Batch.Records
	for i := 0; i < len(recs); {
		j := i
		for j+1 < len(recs) && recs[j+1].Topic == recs[i].Topic && recs[j+1].Partition == recs[i].Partition {
			j++
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = str(dst, recs[i].Topic+"-"+strconv.Itoa(int(recs[i].Partition)))
		dst = append(dst, `:{"firstRecordOffset":"`...)
		dst = strconv.AppendInt(dst, recs[i].Offset, 10)
		dst = append(dst, `","lastRecordOffset":"`...)
		dst = strconv.AppendInt(dst, recs[j].Offset, 10)
		dst = append(dst, `","firstRecordTimestamp":`...)
		dst = str(dst, isoMillis(recs[i].Timestamp))
		dst = append(dst, `,"lastRecordTimestamp":`...)
		dst = str(dst, isoMillis(recs[j].Timestamp))
		dst = append(dst, '}')
		i = j + 1
	}
	dst = append(dst, `}},"pipe":`...)
	dst = str(dst, f.Pipe)
	if f.Stage != "" {
		dst = append(dst, `,"stage":`...)
		dst = str(dst, f.Stage)
	}
	if f.Err != nil {
		dst = append(dst, `,"errorMessage":`...)
		dst = str(dst, f.Err.Error())
	}
	if payload {
		dst = append(dst, `,"payload":`...)
		dst = AppendEnvelope(dst, f.Batch)
	}
	return append(dst, '}')
}

// Single returns a failure like f holding only record i of its batch, as a
// Kafka destination sends one message per record.
func (f *Failure) Single(i int) *Failure {
	g := *f
	g.Batch = &Batch{EventSource: f.Batch.EventSource, BootstrapServers: f.Batch.BootstrapServers, Records: f.Batch.Records[i : i+1]}
	return &g
}

// ParseFailureRecord reads the payload back from an on-failure record
// written with its payload (a file or Kafka destination's), for redrive.
func ParseFailureRecord(data []byte) (*Batch, error) {
	var rec struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("not an on-failure record: %w", err)
	}
	if len(rec.Payload) == 0 || string(rec.Payload) == "null" {
		return nil, errors.New("the on-failure record has no payload")
	}
	return ParseEnvelope(rec.Payload)
}
