package profileimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// obj reads one JSON object of a .sswan file with typed getters that name
// the field path in their errors, and remembers which keys were read so
// that the rest can be reported.
type obj struct {
	path string
	m    map[string]json.RawMessage
	used map[string]bool
}

func newObj(path string, raw json.RawMessage) (*obj, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, typeErr(path, "a JSON object", raw)
	}
	return &obj{path: path, m: m, used: map[string]bool{}}, nil
}

func (o *obj) field(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// get returns the raw value of key; null counts as absent.
func (o *obj) get(key string) (json.RawMessage, bool) {
	o.used[key] = true
	raw, ok := o.m[key]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

func (o *obj) str(key string) (string, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return "", false, nil
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false, typeErr(o.field(key), "a string", raw)
	}
	return s, true, nil
}

func (o *obj) boolean(key string) (bool, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return false, false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) != nil {
		return false, false, typeErr(o.field(key), "true or false", raw)
	}
	return b, true, nil
}

func (o *obj) integer(key string) (int, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return 0, false, nil
	}
	var f float64
	if raw[0] == '"' || json.Unmarshal(raw, &f) != nil {
		return 0, false, typeErr(o.field(key), "a number", raw)
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, false, fmt.Errorf("sswan: %s: want a whole number, got %s", o.field(key), short(string(raw)))
	}
	return int(f), true, nil
}

func (o *obj) sub(key string) (*obj, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return nil, false, nil
	}
	s, err := newObj(o.field(key), raw)
	return s, err == nil, err
}

// list reads an array of strings, or one string of space-separated items
// (both forms appear in the wild for subnets and DNS servers).
func (o *obj) list(key string) ([]string, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return nil, false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, typeErr(o.field(key), "a string or an array of strings", raw)
		}
		return strings.Fields(s), true, nil
	}
	var l []string
	if raw[0] != '[' || json.Unmarshal(raw, &l) != nil {
		return nil, false, typeErr(o.field(key), "a string or an array of strings", raw)
	}
	return l, true, nil
}

// unused lists the keys nobody read, with their paths, sorted.
func (o *obj) unused() []string {
	var out []string
	for k := range o.m {
		if !o.used[k] {
			out = append(out, o.field(k))
		}
	}
	sort.Strings(out)
	return out
}

// typeErr says which JSON type a field wants; it names the type it got,
// never its value (which may be a secret).
func typeErr(field, want string, raw json.RawMessage) error {
	got := "value"
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0:
	case t[0] == '"':
		got = "string"
	case t[0] == '{':
		got = "object"
	case t[0] == '[':
		got = "array"
	case t[0] == 't' || t[0] == 'f':
		got = "boolean"
	default:
		got = "number"
	}
	if field == "" {
		return fmt.Errorf("sswan: want %s, got a JSON %s", want, got)
	}
	return fmt.Errorf("sswan: %s: want %s, got a JSON %s", field, want, got)
}

// checkDuplicates reports the first object key that appears twice, with
// its path: encoding/json would silently keep the last.
func checkDuplicates(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				p := k
				if path != "" {
					p = path + "." + k
				}
				if seen[k] {
					return fmt.Errorf("sswan: %s: appears twice", p)
				}
				seen[k] = true
				if err := walk(p); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	if err := walk(""); err != nil {
		if strings.HasPrefix(err.Error(), "sswan: ") {
			return err
		}
		return errors.New("sswan: invalid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("sswan: data after the JSON object")
	}
	return nil
}

// short quotes s for an error, cut to 40 bytes.
func short(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}
