package strictjson

import (
	"reflect"
	"strings"
	"testing"
)

type inner struct {
	Secret string `json:"secret"`
	On     *bool  `json:"on,omitempty"`
}

type doc struct {
	Name    string            `json:"name"`
	Count   int               `json:"count"`
	Rate    float64           `json:"rate"`
	Flag    bool              `json:"flag"`
	Life    string            `json:"life" want:"a duration such as \"1h\""`
	Tags    []string          `json:"tags"`
	Inner   inner             `json:"inner"`
	Ptr     *inner            `json:"ptr,omitempty"`
	List    []inner           `json:"list"`
	Keys    map[string]string `json:"keys"`
	Skipped string            `json:"-"`
	//lint:ignore U1000 an unexported field the checker must skip
	private string
	Bad     complex128 `json:"bad"`
}

func check(data string, opts Options) Error {
	e := Check([]byte(data), reflect.TypeFor[doc](), opts)
	if e == nil {
		return Error{}
	}
	return *e
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Error
	}{
		{`{}`, Error{}},
		{` {"name":"a","count":1,"rate":1.5,"flag":true,"life":"1h","tags":["x"],"inner":{"secret":"s","on":false},
		  "ptr":{"on":true},"list":[{"secret":"t"}],"keys":{"a":"b","B":"c"}} `, Error{}},
		{`{"name":null,"count":null,"tags":[null],"ptr":null,"keys":{"a":null}}`, Error{}},
		{`[]`, Error{Reason: "want a JSON object, got an array"}},
		{`"x"`, Error{Reason: "want a JSON object, got a string"}},
		{`null`, Error{Reason: "want a JSON object, got null"}},
		{`{"nmae":"a"}`, Error{Reason: `unknown field "nmae" (did you mean "name"?)`}},
		{`{"Name":"a"}`, Error{Reason: `unknown field "Name" (did you mean "name"?)`}},
		{`{"zzzzzz":1}`, Error{Reason: `unknown field "zzzzzz"`}},
		{`{"-":"a"}`, Error{Reason: `unknown field "-" (did you mean "-"?)`}}, // sic: suggest does not skip "-"
		{`{"private":"a"}`, Error{Reason: `unknown field "private"`}},
		{`{"inner":{"secrte":"a"}}`, Error{Field: "inner", Reason: `unknown field "secrte" (did you mean "secret"?)`}},
		{`{"name":"a","name":"b"}`, Error{Reason: `duplicate field "name"`}},
		{`{"keys":{"a":"1","a":"2"}}`, Error{Field: "keys", Reason: `duplicate field "a"`}},
		{`{"keys":{"a":1}}`, Error{Field: `keys["a"]`, Reason: "want a string, got a number"}},
		{`{"name":1}`, Error{Field: "name", Reason: "want a string, got a number"}},
		{`{"flag":"yes"}`, Error{Field: "flag", Reason: "want true or false, got a string"}},
		{`{"ptr":{"on":1}}`, Error{Field: "ptr.on", Reason: "want true or false, got a number"}},
		{`{"count":true}`, Error{Field: "count", Reason: "want an integer, got a boolean"}},
		{`{"count":1.5}`, Error{Field: "count", Reason: `want an integer, got "1.5"`}},
		{`{"rate":1e400}`, Error{Field: "rate", Reason: `number "1e400" is out of range`}},
		{`{"rate":{}}`, Error{Field: "rate", Reason: "want a number, got an object"}},
		{`{"life":5}`, Error{Field: "life", Reason: `want a duration such as "1h", got a number`}},
		{`{"tags":"x"}`, Error{Field: "tags", Reason: "want an array of strings, got a string"}},
		{`{"tags":["x",2]}`, Error{Field: "tags[1]", Reason: "want a string, got a number"}},
		{`{"list":[{},{"secret":[]}]}`, Error{Field: "list[1].secret", Reason: "want a string, got an array"}},
		{`{"inner":[]}`, Error{Field: "inner", Reason: "want an object, got an array"}},
		{`{"keys":[]}`, Error{Field: "keys", Reason: "want an object, got an array"}},
		{`{"bad":1}`, Error{Field: "bad", Reason: "unsupported field type"}},
		{``, Error{Line: 1, Column: 1, Reason: "invalid JSON: unexpected end of input"}},
		{"{\n\"name\":", Error{Line: 2, Column: 8, Reason: "invalid JSON: unexpected end of input"}},
		{"{\n  \"count\": x\n}", Error{Line: 2, Column: 12, Reason: "invalid JSON: unexpected character looking for beginning of value"}},
		{`{"inner":{"secret":"ab\qcd"}}`, Error{Line: 1, Column: 24, Reason: "invalid JSON: unexpected character in string escape code"}},
		{"{} \n {}", Error{Line: 2, Column: 2, Reason: "invalid JSON: unexpected character after top-level value"}},
	} {
		if got := check(tc.in, Options{}); got != tc.want {
			t.Errorf("Check(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestOptions(t *testing.T) {
	upper := func(s string) string { return "<" + strings.ToUpper(s) + ">" }
	for _, tc := range []struct {
		in   string
		opts Options
		want Error
	}{
		{`{"Nmae":1}`, Options{Quote: upper}, Error{Reason: `unknown field <NMAE> (did you mean "name"?)`}},
		{`{"keys":{"k":1}}`, Options{Quote: upper}, Error{Field: "keys[<K>]", Reason: "want a string, got a number"}},
		{`{"count":2.5}`, Options{Quote: upper}, Error{Field: "count", Reason: "want an integer, got <2.5>"}},
		{`{"count":2.5}`, Options{Quote: upper, PlainNumbers: true}, Error{Field: "count", Reason: "want an integer, got 2.5"}},
		{`{"rate":-1e999}`, Options{PlainNumbers: true}, Error{Field: "rate", Reason: "number -1e999 is out of range"}},
		{`{"inner":{"secret":"ab\qcd"}}`, Options{ShowSyntaxChar: true}, Error{Line: 1, Column: 24, Reason: `invalid JSON: invalid character 'q' in string escape code`}},
		{"{\"name\":\"a\x01\"}", Options{ShowSyntaxChar: true}, Error{Line: 1, Column: 11, Reason: `invalid JSON: invalid character '\x01' in string literal`}},
		{"{\"name\":\"a\x01\"}", Options{}, Error{Line: 1, Column: 11, Reason: `invalid JSON: unexpected character in string literal`}},
		{strings.Repeat("[", 100000), Options{}, Error{Line: 1, Column: 10001, Reason: "invalid JSON: unexpected character exceeded max depth"}}, // sic,
	} {
		if got := check(tc.in, tc.opts); got != tc.want {
			t.Errorf("Check(%.40q, %+v)\n got %+v\nwant %+v", tc.in, tc.opts, got, tc.want)
		}
	}
}

func TestTrailingData(t *testing.T) {
	// Valid JSON followed by more data fails the syntax check already;
	// what is left for the walker is whitespace, which is allowed.
	if got := check("{}\n\t ", Options{}); got != (Error{}) {
		t.Errorf("trailing whitespace: %+v", got)
	}
	if got := check(`{} x`, Options{}); got.Line != 1 || got.Column != 4 {
		t.Errorf("trailing data: %+v", got)
	}
}

func TestSecretNotInSyntaxError(t *testing.T) {
	const secret = "hunter2\x01"
	e := Check([]byte(`{"inner":{"secret":"`+secret+`"}}`), reflect.TypeFor[doc](), Options{})
	if e == nil || strings.ContainsAny(e.Reason, "\x01") || strings.Contains(e.Reason, "hunter") {
		t.Errorf("got %+v", e)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"psk", "pks", 2},
		{strings.Repeat("a", 65), "a", 65},
	} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}
