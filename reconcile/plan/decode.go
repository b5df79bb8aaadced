package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Strict decoding: every key known, every value of its type, and an error that names
// the key at fault by its path. The configuration and the backends' sections use it.

var (
	durationType    = reflect.TypeFor[Duration]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// DecodeStrict decodes a JSON document (YAML already converted) into v, refusing
// unknown keys and wrongly typed values with an error that names them by their path
// below path ("pools[1].labelz: unknown key"). Backends use it for their sections.
// Unknown keys are reported all at once, with the nearest known key of each
// (*UnknownKeysError), and v is decoded all the same; a wrongly typed value is
// reported alone.
func DecodeStrict(data []byte, v any, path string) error {
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return fmt.Errorf("%s: %v", orTop(path), err)
	}
	var unknown UnknownKeysError
	if err := checkShape(reflect.TypeOf(v).Elem(), generic, path, &unknown); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		// checkShape vetted every key and JSON type; what is left is a value a
		// field's own decoder refused (a malformed quantity, say).
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return fmt.Errorf("%s: %v", joinPath(path, ute.Field), err)
		}
		return fmt.Errorf("%s: %v", orTop(path), err)
	}
	if len(unknown.Keys) > 0 {
		return &unknown // v holds the rest: the caller may look for more
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkShape walks a decoded JSON document against the Go type it will be decoded
// into: it notes every unknown key in u and reports the first wrongly typed value, by
// its path ("pools[1].labelz"). encoding/json alone names neither.
func checkShape(t reflect.Type, v any, path string, u *UnknownKeysError) error {
	if v == nil {
		return nil
	}
	if t == rawMessageType {
		return nil // a backend section: its backend checks it
	}
	if t == durationType {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a duration such as \"10m\"", path)
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("%s: %q is not a duration such as \"10m\"", path, s)
		}
		return nil
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return nil // decodes itself (a duration, a quantity): its decoder judges it
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkShape(t.Elem(), v, path, u)
	case reflect.Struct:
		return checkStruct(t, v, path, u)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a mapping", orTop(path))
		}
		for k, e := range m {
			if err := checkShape(t.Elem(), e, joinPath(path, k), u); err != nil {
				return err
			}
		}
	case reflect.Slice:
		return checkList(t, v, path, u)
	default:
		return checkScalar(t, v, path)
	}
	return nil
}

// checkList checks a list, or a base64 string for bytes.
func checkList(t reflect.Type, v any, path string, u *UnknownKeysError) error {
	if t.Elem().Kind() == reflect.Uint8 {
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: want a base64 string", path)
		}
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%s: want a list", path)
	}
	for i, e := range a {
		if err := checkShape(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i), u); err != nil {
			return err
		}
	}
	return nil
}

// checkScalar checks a string, a number or a boolean.
func checkScalar(t reflect.Type, v any, path string) error {
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: want a string", path)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) || f > 1e15 || f < -1e15 {
			return fmt.Errorf("%s: want a whole number", path)
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s: want a number", path)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want true or false", path)
		}
	}
	return nil
}

// checkStruct checks a mapping against a struct's fields, in order: an unknown key
// is noted, with the nearest known one.
func checkStruct(t reflect.Type, v any, path string, u *UnknownKeysError) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want a mapping", orTop(path))
	}
	fields := map[string]reflect.Type{}
	collectFields(t, fields)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			u.Keys = append(u.Keys, UnknownKey{Path: joinPath(path, k), Suggest: Nearest(k, slices.Collect(maps.Keys(fields)))})
			continue
		}
		if err := checkShape(ft, m[k], joinPath(path, k), u); err != nil {
			return err
		}
	}
	return nil
}

// collectFields maps the JSON names of a struct's fields to their types, with the
// fields of embedded structs (Kubernetes' inline ObjectMeta and TypeMeta) in place.
func collectFields(t reflect.Type, fields map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && (name == "" || opts == "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, fields)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
}

func orTop(path string) string {
	if path == "" {
		return "config"
	}
	return path
}

// UnknownKey is a key the configuration does not have, with the nearest one it has
// ("" when none is near).
type UnknownKey struct{ Path, Suggest string }

// UnknownKeysError is every unknown key of a configuration, in File when set.
type UnknownKeysError struct {
	File string
	Keys []UnknownKey
}

func (e *UnknownKeysError) Error() string {
	parts := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		parts[i] = k.Path + ": unknown key"
		if strings.ContainsAny(k.Path, "\n\r\t\v\f") {
			parts[i] = strconv.Quote(k.Path) + ": unknown key"
		}
		if k.Suggest != "" {
			parts[i] += fmt.Sprintf(" (did you mean %s?)", k.Suggest)
		}
		if e.File != "" {
			parts[i] = e.File + ": " + parts[i]
		}
	}
	return strings.Join(parts, "; ")
}

// Nearest returns the candidate nearest to word, or "" when none is near enough to
// be what was meant: within an edit distance of 2, or of a third of the word.
func Nearest(word string, candidates []string) string {
	best, bestD := "", max(2, len(word)/3)+1
	slices.Sort(candidates)
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, a swap of two neighbours
// counting one (Damerau's restricted form: "imgae" is one from "image").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
