// Package pattern compiles and matches event patterns: the filter language
// of AWS Lambda event filtering (FilterCriteria) and EventBridge, as the
// aws/event-ruler library implements it. A pattern is matched against a
// record's view (pipeline.Record.View):
//
//	{"topic": ..., "partition": ..., "offset": ..., "timestamp": ...,
//	 "timestampType": ..., "key": ..., "value": ..., "headers": {...}}
//
// where key and value are decoded JSON when they are valid JSON and strings
// otherwise, so {"value": {"amount": [{"numeric": [">", 100]}]}} reads a
// field of a JSON value, and a pattern that expects fields under value never
// matches a value that is not a JSON object.
//
// # The language
//
// A pattern is a JSON object whose fields mirror the event's. A field's
// value is either an object (a pattern for the event's object there) or an
// array of values to match; all the fields must match (AND), any value of an
// array may (OR). The values are:
//
//	"text", 12, true, null   the event's value equals it; numbers compare by
//	                         value, so [300] matches 300, 300.0 and 3.0e2; a
//	                         string that is an IP address matches the same
//	                         address however it is written
//	{"prefix": "x"}          a string starting with x; {"prefix":
//	                         {"equals-ignore-case": "x"}} ignores case
//	{"suffix": "x"}          a string ending with x; also with equals-ignore-case
//	{"equals-ignore-case": "x"}
//	{"wildcard": "a*b"}      * matches any run of characters; \* and \\ escape;
//	                         two stars in a row are an error
//	{"anything-but": ...}    any value present except: a string, a number, a
//	                         list of strings or of numbers, or
//	                         {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": string or list}
//	{"numeric": [">", 0, "<=", 5]}  numbers only: =, <, <=, >, >= and ranges
//	{"exists": true}         the field has a value (null counts; an object or
//	                         an empty array does not: exists looks at leaves)
//	{"exists": false}        the field has no value
//	{"cidr": "10.0.0.0/24"}  a string that is an IPv4 or IPv6 address in the range
//	{"exactly": "x"}         the string x (event-ruler's spelling of an exact match)
//	"$or": [{...}, {...}]    at least two sub-patterns, any of which may match
//
// When the event holds an array, a value matches if any element does
// (["b"] matches ["a", "b"]), at any depth of nesting; fields matched inside
// an array of objects must all come from the same element.
//
// A pattern is rejected when it is compiled if its text is longer than 4096
// characters, is not a JSON object, holds an empty object or array, an
// unknown operator, an operand of the wrong type, a wildcard with "**" or a
// bad escape, an $or with fewer than two objects, or $or alternatives that
// multiply out to more than 1000. The errors (*Error) carry the path to the
// problem and its byte offset.
//
// # Choices where the sources differ or are silent
//
//   - Numbers compare by value as float64 in the full double range, as
//     current event-ruler does; older EventBridge documents limit numeric
//     matching to ±5e9 with six decimals, and said [300] does not match
//     300.0, which the live services no longer do. Integers beyond 2^53
//     compare as their nearest float64. A number literal beyond the float64
//     range (1e400) matches only the same literal.
//   - A name repeated in an event object reads as its last occurrence, as
//     pipeline.Value.Get does (event-ruler sees every occurrence). A name
//     repeated in a pattern object merges: the last leaf for a path wins,
//     as in event-ruler, and the same holds for a path given both outside
//     and inside an $or branch.
//   - Fields are matched structurally: {"a": {"b": [1]}} does not match an
//     event field literally named "a.b". event-ruler joins names with dots
//     and so matches both, and documents that as not to be relied on.
//   - exists: false inside an array of objects: pipe checks that no element
//     consistent with all the positively matched fields has the field.
//     event-ruler checks only against the fields it matched before, in name
//     order, so its answer can depend on the field names.
//   - equals-ignore-case folds each character to its Java lower- and
//     upper-case forms, as event-ruler does ("ß" matches "SS"), but treats a
//     character outside the Basic Multilingual Plane as one character where
//     event-ruler splits it into UTF-16 halves that never match.
//   - anything-but with an empty list, or with {"prefix": []}, is an error;
//     event-ruler rejects the first and its behaviour on the second is
//     undocumented.
//   - IP addresses follow Go's parser: an IPv4 address with a leading zero
//     in an octet is not an address (Java's reading of those has changed
//     across versions).
//
// # Performance
//
// Matching walks the pattern's tree over the decoded view; it allocates
// nothing. Decoding happens once per record, in Record.View, however many
// patterns a Set holds.
//
// A Set also knows every path of the record its patterns read (Paths), and
// MatchSelected decides a record from those parts alone, decoded by a
// pipeline.Selector: the other members of the key and value are checked
// as strictly as the whole view's decoder checks them (a value that is not
// JSON anywhere is a string for every pattern) but not decoded, and the
// record's view is neither built nor kept. The decision is the same as
// MatchRecord's; it costs a fraction, and nothing is allocated. The filter
// stage decides this way when it has no expression and the record's view
// is not decoded already.
package pattern
