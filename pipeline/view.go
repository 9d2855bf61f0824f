package pipeline

import "strconv"

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
func (r *Record) View() *Value {
	if r.view == nil {
		r.view = r.buildView()
	}
	return r.view
}

func (r *Record) buildView() *Value {
	fields := make([]Field, 0, 8)
	fields = append(fields,
		Field{"topic", Value{Type: TypeString, Str: r.Topic}},
		Field{"partition", numberValue(int64(r.Partition))},
		Field{"offset", numberValue(r.Offset)},
		Field{"timestamp", numberValue(r.Timestamp.UnixMilli())},
		Field{"timestampType", Value{Type: TypeString, Str: r.TimestampType.String()}},
	)
	if r.Key != nil {
		fields = append(fields, Field{"key", DecodeData(r.Key)})
	}
	if r.Value != nil {
		fields = append(fields, Field{"value", DecodeData(r.Value)})
	}
	hs := make([]Field, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = Field{h.Key, Value{Type: TypeString, Str: string(h.Value)}}
	}
	fields = append(fields, Field{"headers", Value{Type: TypeObject, Fields: hs}})
	return &Value{Type: TypeObject, Fields: fields}
}

// DecodeData decodes a key or value: JSON when the bytes are valid JSON,
// else a string of their text.
func DecodeData(b []byte) Value {
	if v, err := ParseJSON(b); err == nil {
		return v
	}
	return Value{Type: TypeString, Str: string(b)}
}

func numberValue(n int64) Value {
	return Value{Type: TypeNumber, Num: float64(n), Str: strconv.FormatInt(n, 10)}
}
