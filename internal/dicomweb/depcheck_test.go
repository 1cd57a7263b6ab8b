package dicomweb

import (
	"os/exec"
	"strings"
	"testing"
)

// The handlers depend on storage's interfaces, never on a backend or
// the backends' SQL core.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"/fsblob", "/s3blob", "/sqliteindex", "/pgindex", "/sqlindex", "/memblob"} {
			if strings.HasSuffix(pkg, banned) {
				t.Errorf("internal/dicomweb depends on %s", pkg)
			}
		}
	}
}
