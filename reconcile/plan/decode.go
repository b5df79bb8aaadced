package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
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
func DecodeStrict(data []byte, v any, path string) error {
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return fmt.Errorf("%s: %v", orTop(path), err)
	}
	if err := checkShape(reflect.TypeOf(v).Elem(), generic, path); err != nil {
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
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkShape walks a decoded JSON document against the Go type it will be decoded
// into and reports the first unknown key or wrongly typed value, by its path
// ("pools[1].labelz"). encoding/json alone names neither.
func checkShape(t reflect.Type, v any, path string) error {
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
		return checkShape(t.Elem(), v, path)
	case reflect.Struct:
		return checkStruct(t, v, path)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a mapping", orTop(path))
		}
		for k, e := range m {
			if err := checkShape(t.Elem(), e, joinPath(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		return checkList(t, v, path)
	default:
		return checkScalar(t, v, path)
	}
	return nil
}

// checkList checks a list, or a base64 string for bytes.
func checkList(t reflect.Type, v any, path string) error {
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
		if err := checkShape(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
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

// checkStruct checks a mapping against a struct's fields: every key known, in order.
func checkStruct(t reflect.Type, v any, path string) error {
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
			return fmt.Errorf("%s: unknown key", joinPath(path, k))
		}
		if err := checkShape(ft, m[k], joinPath(path, k)); err != nil {
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
