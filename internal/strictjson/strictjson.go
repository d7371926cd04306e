// Package strictjson checks a JSON document against the Go type it is to be
// decoded into, more strictly than encoding/json does: it rejects unknown
// keys, keys that differ from a field's JSON name only in case, duplicate
// keys, values of the wrong JSON type and data after the document, and it
// names the JSON path of the offending value ("auth.psk", "gateways[1]",
// `psks["id"]`). Syntax errors and trailing data carry a line and column.
//
// Check only reports; it does not decode. Its callers run it before
// json.Unmarshal and turn an *Error into their own error type, so that each
// keeps its own message format.
//
// The supported Go types are string, bool, int, float64, pointers to
// those, slices of them, structs (matched by the exact name in the "json"
// tag) and maps with string keys. A struct field's "want" tag, if set,
// replaces the type's description in a wrong-type reason ("want a duration
// such as \"1h\", got a number").
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// Error describes the first problem Check found. It is not an error value:
// each caller wraps it in its own error type.
type Error struct {
	// Field is the JSON path of the offending value, or empty for the
	// document itself (and for syntax errors).
	Field string
	// Line and Column (1-based; columns count bytes) are set for syntax
	// errors and trailing data, and zero otherwise.
	Line, Column int
	// Reason is a lower-case phrase without the path, such as
	// `unknown field "pks" (did you mean "psk"?)`.
	Reason string
}

// Options tunes the wording of reasons.
type Options struct {
	// Quote quotes a key or number copied from the input into a reason.
	// Nil means strconv.Quote; pass a function that shortens long values
	// if the input may be large.
	Quote func(string) string
	// PlainNumbers puts an offending number into a reason as it is
	// ("got 1.5") instead of through Quote ("got \"1.5\"").
	PlainNumbers bool
	// ShowSyntaxChar keeps the offending character in a syntax error
	// ("invalid character 'x' in string literal"). By default it is
	// dropped ("unexpected character in string literal"): the character
	// may sit inside a secret.
	ShowSyntaxChar bool
}

// Check walks data token by token against root (a struct type) and reports
// the first syntax error, unknown or miscased key, duplicate key, wrong JSON
// type, or trailing data; nil if there is none. A null value is accepted
// anywhere, as encoding/json leaves the field as if absent.
func Check(data []byte, root reflect.Type, opts Options) *Error {
	if opts.Quote == nil {
		opts.Quote = strconv.Quote
	}
	// Unmarshal checks the whole document's syntax first and, unlike
	// Decoder, reports offsets from the start of the input.
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			return &Error{Reason: "invalid JSON"}
		}
		off := se.Offset - 1 // Offset counts the offending byte
		reason := "invalid JSON: " + opts.syntaxReason(se.Error())
		if se.Error() == "unexpected end of JSON input" {
			off, reason = int64(len(data)), "invalid JSON: unexpected end of input"
		}
		line, col := lineCol(data, off)
		return &Error{Line: line, Column: col, Reason: reason}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := walker{dec: dec, data: data, opts: opts}
	tok, err := w.token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fieldErr("", "want a JSON object, got %s", jsonKind(tok))
	}
	if err := w.object(root, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		off := dec.InputOffset()
		off += int64(len(data[off:]) - len(bytes.TrimLeft(data[off:], " \t\r\n")))
		line, col := lineCol(data, off)
		return &Error{Line: line, Column: col, Reason: "unexpected data after the JSON object"}
	}
	return nil
}

// syntaxReason strips encoding/json's prefix from a syntax error and,
// unless ShowSyntaxChar is set, drops the offending character from it.
func (o Options) syntaxReason(msg string) string {
	msg = strings.TrimPrefix(msg, "json: ")
	if o.ShowSyntaxChar {
		return msg
	}
	if rest, ok := strings.CutPrefix(msg, "invalid character "); ok {
		if i := strings.LastIndex(rest, "' "); i >= 0 {
			return "unexpected character " + rest[i+2:]
		}
		return "unexpected character"
	}
	return msg
}

// number formats an offending number for a reason.
func (o Options) number(n json.Number) string {
	if o.PlainNumbers {
		return string(n)
	}
	return o.Quote(string(n))
}

func fieldErr(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

type walker struct {
	dec  *json.Decoder
	data []byte
	opts Options
}

// token returns the next token. Check has checked the syntax already, so an
// error here is unexpected; it is reported at the decoder's offset.
func (w *walker) token() (json.Token, *Error) {
	tok, err := w.dec.Token()
	if err != nil {
		line, col := lineCol(w.data, w.dec.InputOffset())
		return nil, &Error{Line: line, Column: col, Reason: "invalid JSON"}
	}
	return tok, nil
}

// lineCol turns the 0-based offset of the offending byte into a 1-based
// line and column (columns count bytes).
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	return 1 + bytes.Count(before, []byte{'\n'}), int(off) - bytes.LastIndexByte(before, '\n')
}

// object checks an object's members after its '{' has been read: struct
// fields by exact JSON name, or map entries.
func (w *walker) object(t reflect.Type, path string) *Error {
	quote := w.opts.Quote
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		// A repeated struct key was known the first time, so checking
		// for duplicates before unknown keys changes no message.
		if seen[key] {
			return fieldErr(path, "duplicate field %s", quote(key))
		}
		seen[key] = true
		if t.Kind() == reflect.Map {
			if err := w.value(t.Elem(), path+"["+quote(key)+"]", ""); err != nil {
				return err
			}
			continue
		}
		f, ok := fieldByJSONName(t, key)
		if !ok {
			return fieldErr(path, "unknown field %s%s", quote(key), suggest(t, key))
		}
		if err := w.value(f.Type, joinPath(path, key), f.Tag.Get("want")); err != nil {
			return err
		}
	}
	_, err := w.token() // '}'
	return err
}

// value checks one value of Go type t; want overrides the type's description.
func (w *walker) value(t reflect.Type, path, want string) *Error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	if tok == nil { // null leaves the field as if absent
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if want == "" {
		want = describe(t)
	}
	wrong := func() *Error { return fieldErr(path, "want %s, got %s", want, jsonKind(tok)) }
	switch t.Kind() {
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return wrong()
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return wrong()
		}
	case reflect.Int:
		n, ok := tok.(json.Number)
		if !ok {
			return wrong()
		}
		if _, err := strconv.ParseInt(string(n), 10, strconv.IntSize); err != nil {
			return fieldErr(path, "want an integer, got %s", w.opts.number(n))
		}
	case reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return wrong()
		}
		if _, err := strconv.ParseFloat(string(n), 64); err != nil {
			return fieldErr(path, "number %s is out of range", w.opts.number(n))
		}
	case reflect.Slice:
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return wrong()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i), ""); err != nil {
				return err
			}
		}
		_, err := w.token() // ']'
		return err
	case reflect.Struct, reflect.Map:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return wrong()
		}
		return w.object(t, path)
	default:
		return fieldErr(path, "unsupported field type") // a bug in the Go type, not in the input
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describe(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "something else"
}

// fieldByJSONName finds the exported field whose JSON name is exactly key.
func fieldByJSONName(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && name == key && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest proposes the closest known key to a misspelt one.
func suggest(t reflect.Type, key string) string {
	best, bestD := "", 3
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if d := editDistance(strings.ToLower(key), name); d < bestD && d < len(name) {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 {
		return len(a) // not worth comparing
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
