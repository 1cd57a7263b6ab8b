package storage

import (
	"regexp"
	"testing"
)

func TestNewInstanceKey(t *testing.T) {
	re := regexp.MustCompile(`^instances/([0-9a-f]{2})/([0-9a-f]{32})\.dcm$`)
	seen := map[string]bool{}
	for range 1000 {
		k := newInstanceKey()
		m := re.FindStringSubmatch(k)
		if m == nil || m[1] != m[2][:2] {
			t.Fatalf("key %q: want instances/<first 2 hex>/<32 hex>.dcm", k)
		}
		if err := CheckKey(k); err != nil {
			t.Fatal(err)
		}
		if seen[k] {
			t.Fatalf("key %q twice", k)
		}
		seen[k] = true
	}
}
