package fieldcheck

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tt := range []struct {
		s    string
		max  int
		want string
	}{
		{"abc", 3, `"abc"`},
		{"abcd", 3, `"abc"...`},
		{"aé", 2, `"a"...`}, // é is two bytes: cut before it, not inside
	} {
		if got := Quote(tt.s, tt.max); got != tt.want {
			t.Errorf("Quote(%q, %d) = %s, want %s", tt.s, tt.max, got, tt.want)
		}
	}
}

func TestMessage(t *testing.T) {
	got := Message("p: ", "f.json", 2, 3, "a.b", "bad\nvalue\u2028")
	if want := "p: f.json: line 2, column 3: a.b: bad value "; got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
	if got := Message("p: ", "", 0, 0, "", "r"); got != "p: r" {
		t.Errorf("Message = %q", got)
	}
}

func TestPrefixesHint(t *testing.T) {
	for _, tt := range []struct {
		dotted bool
		want   string
	}{
		{false, `such as "::ffff:10.0.0.1/128"`},
		{true, `such as "::ffff:10.0.0.1/32"`},
	} {
		_, f, err := Style{QuoteLen: 64, DottedBits: tt.dotted}.Prefixes("x", []string{"::ffff:10.0.0.1"}, 4)
		if f != "x[0]" || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DottedBits %v: %s: %v, want %s", tt.dotted, f, err, tt.want)
		}
	}
	if _, f, err := (Style{}).Prefixes("x", []string{"10.0.0.0/8", "10.0.0.0/8"}, 4); f != "x[1]" || err == nil || err.Error() != "duplicate of x[0]" {
		t.Errorf("duplicate: %s: %v", f, err)
	}
}
