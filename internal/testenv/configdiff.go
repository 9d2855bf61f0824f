package testenv

import (
	"fmt"
	"reflect"

	"github.com/pipe-run/pipe/pipeline"
)

// ConfigDiff returns where two configs differ, "" when they are equal:
// every field, exported or not (compiled patterns and expressions too),
// compared by value, but for what depends on where the config was read
// from (file name, positions, fingerprint, the kept source text). Funcs
// are compared by being set or not.
func ConfigDiff(a, b *pipeline.Config) string {
	skip := map[reflect.Type]map[string]bool{
		reflect.TypeFor[pipeline.Config]():     {"File": true, "src": true},
		reflect.TypeFor[pipeline.PipeConfig](): {"Line": true, "Column": true, "fingerprint": true},
	}
	seen := map[[2]uintptr]bool{}
	var diff func(a, b reflect.Value, path string) string
	diff = func(a, b reflect.Value, path string) string {
		if a.IsValid() != b.IsValid() || a.IsValid() && a.Type() != b.Type() {
			return path + ": different types"
		}
		if !a.IsValid() {
			return ""
		}
		differ := func() string { return fmt.Sprintf("%s: %v != %v", path, a, b) }
		switch a.Kind() {
		case reflect.Bool:
			if a.Bool() != b.Bool() {
				return differ()
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if a.Int() != b.Int() {
				return differ()
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			if a.Uint() != b.Uint() {
				return differ()
			}
		case reflect.Float32, reflect.Float64:
			if a.Float() != b.Float() {
				return differ()
			}
		case reflect.String:
			if a.String() != b.String() {
				return fmt.Sprintf("%s: %q != %q", path, a.String(), b.String())
			}
		case reflect.Func, reflect.Chan, reflect.UnsafePointer:
			if a.IsNil() != b.IsNil() {
				return path + ": set on one side only"
			}
		case reflect.Pointer:
			if a.IsNil() || b.IsNil() {
				if a.IsNil() != b.IsNil() {
					return path + ": nil on one side only"
				}
				return ""
			}
			key := [2]uintptr{a.Pointer(), b.Pointer()}
			if key[0] == key[1] || seen[key] {
				return ""
			}
			seen[key] = true
			return diff(a.Elem(), b.Elem(), path)
		case reflect.Interface:
			if a.IsNil() || b.IsNil() {
				if a.IsNil() != b.IsNil() {
					return path + ": nil on one side only"
				}
				return ""
			}
			return diff(a.Elem(), b.Elem(), path)
		case reflect.Slice, reflect.Array:
			if a.Kind() == reflect.Slice && a.IsNil() != b.IsNil() {
				return path + ": nil on one side only"
			}
			if a.Len() != b.Len() {
				return fmt.Sprintf("%s: %d entries != %d", path, a.Len(), b.Len())
			}
			for i := 0; i < a.Len(); i++ {
				if d := diff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
					return d
				}
			}
		case reflect.Map:
			if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
				return fmt.Sprintf("%s: %d entries != %d", path, a.Len(), b.Len())
			}
			iter := a.MapRange()
			for iter.Next() {
				bv := b.MapIndex(iter.Key())
				if !bv.IsValid() {
					return fmt.Sprintf("%s: key %v on one side only", path, iter.Key())
				}
				if d := diff(iter.Value(), bv, fmt.Sprintf("%s[%v]", path, iter.Key())); d != "" {
					return d
				}
			}
		case reflect.Struct:
			for i := 0; i < a.NumField(); i++ {
				name := a.Type().Field(i).Name
				if skip[a.Type()][name] {
					continue
				}
				if d := diff(a.Field(i), b.Field(i), path+"."+name); d != "" {
					return d
				}
			}
		default:
			return path + ": cannot compare " + a.Kind().String()
		}
		return ""
	}
	return diff(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), "config")
}
