package pgindex

import "testing"

func TestLikePattern(t *testing.T) {
	for in, want := range map[string]string{`DOE*`: `DOE%`, `J?HN`: `J_HN`, `50%_\`: `50\%\_\\`, `*[x]`: `%[x]`} {
		if got := likePattern(in); got != want {
			t.Errorf("likePattern(%q) = %q, want %q", in, got, want)
		}
	}
}
