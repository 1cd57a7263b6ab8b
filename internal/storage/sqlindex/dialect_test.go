package sqlindex

import "testing"

type numbered struct{ Dialect }

func (numbered) Numbered() bool { return true }

func TestBind(t *testing.T) {
	for in, want := range map[string]string{
		"a = ? AND b IN (?, ?)":         "a = $1 AND b IN ($2, $3)",
		"x GLOB '?' AND y = ?":          "x GLOB '?' AND y = $1",
		"(' ' || x) = ? OR z = '''?'''": "(' ' || x) = $1 OR z = '''?'''",
		"no placeholders":               "no placeholders",
	} {
		if got := Bind(numbered{}, in); got != want {
			t.Errorf("Bind(%q) = %q, want %q", in, got, want)
		}
	}
}
