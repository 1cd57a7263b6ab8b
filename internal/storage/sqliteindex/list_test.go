package sqliteindex

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
)

// TestListInstances_plan: a page of the walk is a search of the SOP
// Instance UID's unique index in its order, cut at the limit, the study
// and series found by primary key: no sort and no scan of a table, so
// that a walk of the whole index is linear in its size.
func TestListInstances_plan(t *testing.T) {
	x, err := Open(t.Context(), "file:"+filepath.Join(t.TempDir(), "index.db")+"?_pragma=synchronous(OFF)")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for i := range 200 {
		study := fmt.Sprintf("1.%d", i%7)
		series := fmt.Sprintf("%s.%d", study, i%3)
		inst := &storage.Instance{StudyInstanceUID: study, SeriesInstanceUID: series,
			SOPInstanceUID: fmt.Sprintf("%s.%d", series, i), BlobKey: fmt.Sprintf("instances/00/00/%d.dcm", i), SHA256: "00"}
		if _, err := x.PutInstance(t.Context(), inst, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := x.w.ExecContext(t.Context(), `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	rows, err := x.r.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+sqlListInstances, "1.3", 50)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", text)
	for _, bad := range []string{"TEMP B-TREE", "SCAN "} {
		if strings.Contains(text, bad) {
			t.Errorf("plan has %q:\n%s", bad, text)
		}
	}
	for _, want := range []string{
		"SEARCH i USING INDEX sqlite_autoindex_instances_1 (sop_instance_uid>?)",
		"SEARCH st USING INTEGER PRIMARY KEY (rowid=?)",
		"SEARCH se USING INTEGER PRIMARY KEY (rowid=?)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
}
