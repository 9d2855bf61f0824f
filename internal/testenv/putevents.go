package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// PutEvents is a server that speaks the PutEvents API of EventBridge (AWS
// JSON 1.1, POST / with X-Amz-Target: AWSEvents.PutEvents), with its limits and validation as
// the service answers them: at most 10 entries and 256 KiB per request
// (ValidationException for the whole request), an unknown bus
// (ResourceNotFoundException), and per-entry errors for a missing or
// invalid Source, DetailType or Detail (InvalidArgument, MalformedDetail),
// a Source starting with aws. (NotAuthorizedForSourceException) and
// Resources that are not ARNs. The answer lists one result per entry, in
// order, with FailedEntryCount. Requests must be signed with SigV4 for the
// events service. Accepted events are kept in order.
//
// No emulator of EventBridge runs here, so the eventbridge target and the
// target conformance suite are tested against this server.
//
// Tests change its answers (Reset): entryFault fails an entry as the
// service does under load (ThrottlingException, InternalFailure); callFault answers a
// whole call.
type PutEvents struct {
	*httptest.Server
	mu         sync.Mutex
	buses      map[string]bool
	events     []PutEvent
	calls      []int
	auths      []string
	nextID     int
	entryFault func(call, k int, e *PutEntry) (code, msg string)
	callFault  func(call int) (status int, typ, msg string)
}

// PutEntry is one entry of a PutEvents request as it is sent.
type PutEntry struct {
	Detail       *string
	DetailType   *string
	EventBusName *string
	Resources    []string
	Source       *string
	Time         *json.Number
	TraceHeader  *string
}

// PutEvent is an event the server accepted.
type PutEvent struct {
	ID, Bus, Source, DetailType, Detail string
	Resources                           []string
	// Time is when the event happened: the entry's Time, or the time of
	// the call.
	Time    time.Time
	HasTime bool
}

// StartPutEvents starts the server with the buses default and orders; it
// is closed when the test ends.
func StartPutEvents(t testing.TB) *PutEvents {
	s := &PutEvents{buses: map[string]bool{"default": true, "orders": true}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *PutEvents) fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "req-1")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (s *PutEvents) serve(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		s.fail(w, 404, "UnknownOperationException", "")
		return
	case !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=") || !strings.Contains(auth, "/events/aws4_request"):
		s.fail(w, 400, "IncompleteSignatureException", "Authorization header requires a SigV4 signature for events.")
		return
	case r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents":
		s.fail(w, 400, "UnknownOperationException", "")
		return
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		s.fail(w, 400, "SerializationException", "")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in struct{ Entries []PutEntry }
	if err := json.Unmarshal(body, &in); err != nil {
		s.fail(w, 400, "SerializationException", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, len(in.Entries))
	s.auths = append(s.auths, auth)
	call := len(s.calls)
	if s.callFault != nil {
		if status, typ, msg := s.callFault(call); status != 0 {
			s.fail(w, status, typ, msg)
			return
		}
	}
	if n := len(in.Entries); n < 1 || n > 10 {
		s.fail(w, 400, "ValidationException", fmt.Sprintf("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1 (got %d)", n))
		return
	}
	total := 0
	for i := range in.Entries {
		total += putEventsEntrySize(&in.Entries[i])
	}
	if total > 256*1024 {
		s.fail(w, 400, "ValidationException", "Total size of the entries in the request is over the limit.")
		return
	}
	for i := range in.Entries {
		if bus := putEventsBusName(in.Entries[i].EventBusName); !s.buses[bus] {
			s.fail(w, 400, "ResourceNotFoundException", "Event bus "+bus+" does not exist.")
			return
		}
	}
	type result struct {
		EventId      string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	out := struct {
		Entries          []result
		FailedEntryCount int
	}{}
	for k := range in.Entries {
		e := &in.Entries[k]
		code, msg := putEventsValidate(e)
		if code == "" && s.entryFault != nil {
			code, msg = s.entryFault(call, k, e)
		}
		if code != "" {
			out.Entries = append(out.Entries, result{ErrorCode: code, ErrorMessage: msg})
			out.FailedEntryCount++
			continue
		}
		s.nextID++
		ev := PutEvent{ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", s.nextID), Bus: putEventsBusName(e.EventBusName),
			Source: *e.Source, DetailType: *e.DetailType, Detail: *e.Detail, Resources: e.Resources, Time: time.Now()}
		if e.Time != nil {
			f, _ := e.Time.Float64()
			ev.Time, ev.HasTime = time.UnixMilli(int64(f*1000+0.5)).UTC(), true
		}
		s.events = append(s.events, ev)
		out.Entries = append(out.Entries, result{EventId: ev.ID})
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

// entrySize is an entry's size as EventBridge counts it: 14 bytes for a
// Time, and the UTF-8 bytes of Source, DetailType, Detail and each
// resource.
func putEventsEntrySize(e *PutEntry) int {
	n := 0
	if e.Time != nil {
		n += 14
	}
	for _, s := range []*string{e.Source, e.DetailType, e.Detail} {
		if s != nil {
			n += len(*s)
		}
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

func putEventsBusName(s *string) string {
	if s == nil || *s == "" {
		return "default"
	}
	if _, name, ok := strings.Cut(*s, ":event-bus/"); ok {
		return name
	}
	return *s
}

// validate checks an entry as PutEvents does, per entry.
func putEventsValidate(e *PutEntry) (code, msg string) {
	switch {
	case e.Source == nil || *e.Source == "":
		return "InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument."
	case e.DetailType == nil || *e.DetailType == "":
		return "InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument."
	case e.Detail == nil || *e.Detail == "":
		return "InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument."
	case utf8.RuneCountInString(*e.Source) > 256:
		return "InvalidArgument", "Parameter Source is not valid. Reason: Source is too long."
	case utf8.RuneCountInString(*e.DetailType) > 128:
		return "InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is too long."
	case strings.HasPrefix(*e.Source, "aws."):
		return "NotAuthorizedForSourceException", "Not authorized for the source."
	}
	var obj map[string]any
	if json.Unmarshal([]byte(*e.Detail), &obj) != nil || obj == nil {
		return "MalformedDetail", "Detail is malformed."
	}
	for _, r := range e.Resources {
		if !strings.HasPrefix(r, "arn:") {
			return "InvalidArgument", "Parameter Resources is not valid. Reason: " + r + " is not a valid ARN."
		}
	}
	return "", ""
}

// Received returns the accepted events and the entries of each call.
// Auths returns the Authorization header of each request, in order.
func (s *PutEvents) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

func (s *PutEvents) Received() ([]PutEvent, []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PutEvent(nil), s.events...), append([]int(nil), s.calls...)
}

// Reset forgets the events and calls and sets the faults.
func (s *PutEvents) Reset(entryFault func(call, k int, e *PutEntry) (string, string), callFault func(call int) (int, string, string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events, s.calls, s.auths = nil, nil, nil
	s.entryFault, s.callFault = entryFault, callFault
}
