package tidings_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings"
)

// TestIsIdentifier checks the hand-written test of logins and modules
// against the regular expression it stands for, on every byte at every
// place that matters and at the length limits.
func TestIsIdentifier(t *testing.T) {
	want := regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)
	cases := []string{"", "a", "bob", "a.b_c-d", strings.Repeat("x", 64), strings.Repeat("x", 65), "Bob", "b o", "bé", "b\x00"}
	for c := 0; c < 256; c++ {
		for _, s := range []string{string(rune(c)), "a" + string([]byte{byte(c)}), string([]byte{byte(c)}) + "z"} {
			cases = append(cases, s)
		}
	}
	for _, s := range cases {
		if got := tidings.IsIdentifier(s); got != want.MatchString(s) {
			t.Errorf("IsIdentifier(%q) = %v, the pattern says %v", s, got, !got)
		}
	}
	if err := tidings.ValidateLogin("Bob"); err == nil || !strings.Contains(err.Error(), `"Bob"`) {
		t.Errorf("ValidateLogin(Bob) = %v, want an error naming the login", err)
	}
}

func BenchmarkIsIdentifier(b *testing.B) {
	for b.Loop() {
		tidings.IsIdentifier("carol.smith-2")
	}
}

func BenchmarkLoginPattern(b *testing.B) {
	p := regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)
	for b.Loop() {
		p.MatchString("carol.smith-2")
	}
}
