// Package awsmsg is what the sqs and sns on-failure destinations share: the
// on-failure record as one message with its String attributes, kept within
// the service's size limit, the FIFO message group ID of a failure, and
// telling a too-large answer of the service apart from other errors.
package awsmsg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/smithy-go"

	"github.com/pipe-run/pipe/pipeline"
)

// DataType is the data type of every attribute of a message.
const DataType = "String"

// Attribute names. They follow the headers of the kafka destination.
const (
	AttrPipe        = "pipe-pipe"
	AttrCondition   = "pipe-condition"
	AttrStage       = "pipe-stage"
	AttrAttempts    = "pipe-attempts"
	AttrTopic       = "pipe-topic"
	AttrPartition   = "pipe-partition"
	AttrFirstOffset = "pipe-first-offset"
	AttrLastOffset  = "pipe-last-offset"
	AttrPayload     = "pipe-payload"
)

// Attr is one String message attribute.
type Attr struct{ Name, Value string }

// Message is an on-failure record as an SQS or SNS message.
type Message struct {
	// Body is the on-failure record (pipeline.AppendFailureRecord).
	Body []byte
	// Attrs are the failure's context; none has an empty value.
	Attrs []Attr
	// Payload says whether Body holds the records.
	Payload bool
}

// Size is what the services count against their limit: the body, and each
// attribute's name, data type and value.
func (m *Message) Size() int {
	n := len(m.Body)
	for _, a := range m.Attrs {
		n += len(a.Name) + len(DataType) + len(a.Value)
	}
	return n
}

// Builder makes the messages of a destination.
type Builder struct {
	// Payload adds the records when the message stays within MaxBytes.
	Payload bool
	// MaxBytes is the service's limit on Size.
	MaxBytes int
	// Omitted is the value of the pipe-payload attribute of a message sent
	// without its records because it was too large ("omitted: too large
	// for the queue").
	Omitted string
	// Limit names the setting that sets MaxBytes in errors, if there is
	// one ("maxMessageSize").
	Limit string
}

// Build returns the message of f: with the records when wanted and within
// MaxBytes, else without them and with the pipe-payload attribute. When
// even that is too large, the error text in the record is shortened to fit
// (it still carries the status of the error). It fails only when the
// record without the records and without error text is over MaxBytes.
func (b *Builder) Build(f *pipeline.Failure) (*Message, error) {
	m := &Message{Attrs: Attrs(f), Payload: b.Payload}
	m.Body = pipeline.AppendFailureRecord(nil, f, b.Payload)
	if m.Size() <= b.MaxBytes {
		return m, nil
	}
	return b.WithoutPayload(f)
}

// WithoutPayload returns the message of f without the records, with the
// pipe-payload attribute; see Build.
func (b *Builder) WithoutPayload(f *pipeline.Failure) (*Message, error) {
	m := &Message{Attrs: append(Attrs(f), Attr{AttrPayload, b.Omitted})}
	m.Body = pipeline.AppendFailureRecord(nil, f, false)
	if m.Size() <= b.MaxBytes {
		return m, nil
	}
	if f.Err == nil {
		return nil, b.tooLarge(m.Size())
	}
	// Keep the longest start of the error text that fits: escaping makes
	// the record's size grow with the text, not in step with it.
	text := f.Err.Error()
	g := *f
	render := func(keep int) {
		for keep > 0 && !utf8.RuneStart(text[keep]) {
			keep--
		}
		msg := strings.TrimPrefix(cutMark, " ")
		if keep > 0 {
			msg = text[:keep] + cutMark
		}
		g.Err = &shortened{msg: msg, err: f.Err}
		m.Body = pipeline.AppendFailureRecord(m.Body[:0], &g, false)
	}
	if render(0); m.Size() > b.MaxBytes {
		return nil, b.tooLarge(m.Size())
	}
	lo, hi := 0, len(text) // render(lo) fits, render(hi) does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if render(mid); m.Size() <= b.MaxBytes {
			lo = mid
		} else {
			hi = mid
		}
	}
	render(lo)
	return m, nil
}

func (b *Builder) tooLarge(n int) error {
	limit := strconv.Itoa(b.MaxBytes) + " bytes"
	if b.Limit != "" {
		limit = b.Limit + " (" + limit + ")"
	}
	return fmt.Errorf("the on-failure record is %d bytes even without its records and error text, more than %s", n, limit)
}

// cutMark ends an error text that was shortened to fit the message.
const cutMark = " ... (shortened to fit the message)"

// shortened is an error whose text was cut; it keeps the original error
// for its status code and function error.
type shortened struct {
	msg string
	err error
}

func (e *shortened) Error() string { return e.msg }
func (e *shortened) Unwrap() error { return e.err }

// Attrs returns the failure's context as String attributes: pipe,
// condition, stage (when there is one), attempts, and the topic, partition
// and first and last offsets of its records.
func Attrs(f *pipeline.Failure) []Attr {
	attrs := make([]Attr, 0, 9)
	attrs = append(attrs, Attr{AttrPipe, f.Pipe}, Attr{AttrCondition, f.Condition})
	if f.Stage != "" {
		attrs = append(attrs, Attr{AttrStage, f.Stage})
	}
	attrs = append(attrs, Attr{AttrAttempts, strconv.Itoa(f.Attempts)})
	if recs := f.Batch.Records; len(recs) > 0 {
		first, last := &recs[0], &recs[len(recs)-1]
		attrs = append(attrs,
			Attr{AttrTopic, first.Topic},
			Attr{AttrPartition, strconv.Itoa(int(first.Partition))},
			Attr{AttrFirstOffset, strconv.FormatInt(first.Offset, 10)},
			Attr{AttrLastOffset, strconv.FormatInt(last.Offset, 10)})
	}
	out := attrs[:0]
	for _, a := range attrs {
		if a.Value != "" { // the services take no empty values
			out = append(out, a)
		}
	}
	return out
}

// maxID is the longest message group ID the services take.
const maxID = 128

// GroupID is the message group ID of a failure on a FIFO queue or topic:
// the pipe name, "-", and the topic-partition of its records, so that the
// failures of one partition stay in order. A longer one than the 128
// characters the services take keeps its start and ends with a hash of the
// whole.
func GroupID(f *pipeline.Failure) string {
	id := f.Pipe
	if recs := f.Batch.Records; len(recs) > 0 {
		id += "-" + recs[0].Topic + "-" + strconv.Itoa(int(recs[0].Partition))
	}
	if len(id) <= maxID {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	h := hex.EncodeToString(sum[:8])
	return id[:maxID-len(h)-1] + "-" + h
}

// TooLarge reports whether err is the service's answer that a message is
// over its size limit: SQS answers InvalidParameterValue "Message must be
// shorter than N bytes", SNS InvalidParameter "Message too long".
func TooLarge(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	code := strings.TrimPrefix(ae.ErrorCode(), "AWS.SimpleQueueService.")
	switch strings.TrimSuffix(code, "Exception") {
	case "InvalidParameterValue", "InvalidParameter":
	default:
		return false
	}
	msg := strings.ToLower(ae.ErrorMessage())
	return strings.Contains(msg, "shorter than") || strings.Contains(msg, "too long")
}
