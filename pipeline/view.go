package pipeline

import (
	"strconv"
	"unsafe"
)

// View returns the record as the JSON object that event patterns, templates
// and expressions see:
//
//	{"topic": ..., "partition": ..., "offset": ..., "timestamp": <epoch ms>,
//	 "timestampType": ..., "key": ..., "value": ..., "headers": {name: text}}
//
// key and value are their bytes decoded as JSON when they are valid JSON,
// else their text; a null key or value is missing. headers maps each name to
// its value as text (the last one wins for a repeated name, as Get says).
// The view is decoded once, on first use, and kept with the record.
//
// The view's strings share the record's Key, Value and header bytes rather
// than copying them, so those bytes must not change while the view is in
// use; copy a string (strings.Clone) to keep it longer than the record.
func (r *Record) View() *Value {
	if r.view == nil {
		r.view = r.buildView(new(recordView), false)
	} else if rv := asRecordView(r.view); rv.stale {
		r.view = r.buildView(rv, true)
	}
	return r.view
}

// HasView says whether the record's view is decoded and current, so that
// View returns it without decoding anything.
func (r *Record) HasView() bool {
	return r.view != nil && !asRecordView(r.view).stale
}

// ResetView forgets the record's view, so that the next View decodes the
// record again (after its Key, Value or Headers changed, or for a new
// record in a reused Record) in the memory of the old view: decoding a
// stream of records through one Record costs no allocation once the
// memory has grown to fit. Values obtained from the old view must not be
// used after ResetView, nor the view of a copy of the Record made before
// it (the copy shares the view).
func (r *Record) ResetView() {
	if r.view != nil {
		asRecordView(r.view).stale = true
	}
}

// recordView is a view and everything it points to, but the decoded key and
// value, in one allocation. root comes first: a view's *Value is a
// *recordView.
type recordView struct {
	root    Value
	fields  [8]Field
	headers [4]Field // the first headers; more take a slice of their own
	digits  [3 * 20]byte
	stale   bool    // ResetView was called
	extra   []Field // headers beyond the first four, kept for reuse
	key     arena   // the key's slabs, kept for reuse
	value   arena   // the value's slabs, kept for reuse
}

func asRecordView(v *Value) *recordView {
	return (*recordView)(unsafe.Pointer(v))
}

func (r *Record) buildView(rv *recordView, reused bool) *Value {
	rv.stale = false
	rv.root = Value{}
	clear(rv.fields[:])
	clear(rv.headers[:])
	digits := rv.digits[:0]
	f := rv.fields[:0]
	f = append(f,
		Field{"topic", Value{Type: TypeString, Str: r.Topic}},
		Field{"partition", metaNumber(&digits, int64(r.Partition))},
		Field{"offset", metaNumber(&digits, r.Offset)},
		Field{"timestamp", metaNumber(&digits, r.Timestamp.UnixMilli())},
		Field{"timestampType", Value{Type: TypeString, Str: r.TimestampType.String()}},
	)
	// A view built the first time carves its slabs from memory shared with
	// other views; one rebuilt after ResetView keeps slabs of its own.
	keyArena, valueArena := &rv.key, &rv.value
	if !reused {
		keyArena, valueArena = nil, nil
	}
	if r.Key != nil {
		f = append(f, Field{Name: "key"})
		decodeAliased(r.Key, &f[len(f)-1].Value, keyArena)
	}
	if r.Value != nil {
		f = append(f, Field{Name: "value"})
		decodeAliased(r.Value, &f[len(f)-1].Value, valueArena)
	}
	hs := rv.headers[:0]
	if len(r.Headers) > len(rv.headers) {
		if cap(rv.extra) < len(r.Headers) {
			rv.extra = make([]Field, 0, len(r.Headers))
		}
		hs = rv.extra[:0]
	}
	for _, h := range r.Headers {
		hs = append(hs, Field{h.Key, Value{Type: TypeString, Str: aliasString(h.Value)}})
	}
	f = append(f, Field{"headers", Value{Type: TypeObject, Fields: hs}})
	rv.root = Value{Type: TypeObject, Fields: f}
	return &rv.root
}

// metaNumber is the number n of the record's metadata, its text appended
// to digits, which has room for it.
func metaNumber(digits *[]byte, n int64) Value {
	start := len(*digits)
	*digits = strconv.AppendInt(*digits, n, 10)
	return Value{Type: TypeNumber, Num: float64(n), Str: unsafe.String(&(*digits)[start], len(*digits)-start)}
}

// DecodeData decodes a key or value: JSON when the bytes are valid JSON,
// else a string of their text. The Value does not share b's bytes, except
// for Raw slices.
func DecodeData(b []byte) Value {
	var v Value
	if decodeJSON(b, &v, false, nil) {
		return v
	}
	return Value{Type: TypeString, Str: string(b)}
}

// decodeAliased is DecodeData into v with strings that share b's bytes,
// in ar's slabs when they fit.
func decodeAliased(b []byte, v *Value, ar *arena) {
	if !decodeJSON(b, v, true, ar) {
		*v = Value{Type: TypeString, Str: aliasString(b)}
	}
}

// aliasString is b as a string without a copy; b must not change after.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
