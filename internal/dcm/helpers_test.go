package dcm

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const corpus = "../../testdata/dicom"

// manifestRow is one line of testdata/dicom/MANIFEST.tsv.
type manifestRow map[string]string

func readManifest(t testing.TB) []manifestRow {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cols []string
	var rows []manifestRow
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if cols == nil {
			cols = fields
			continue
		}
		r := manifestRow{}
		for i, c := range cols {
			if i < len(fields) {
				r[c] = fields[i]
			}
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("empty manifest")
	}
	return rows
}

func parseFile(t testing.TB, path string) *Header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return h
}

// needTool finds an external reference tool; without it the test skips,
// unless the run requires its tools, where a missing reference must fail
// loudly. The rule is testenv.Required's (PACS_TEST_REQUIRE_TOOLS=1, as
// make test sets, PACS_TEST_REQUIRE_SERVICES=1 or CI=true), written out
// here because testenv imports storage, which imports this package.
func needTool(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("PACS_TEST_REQUIRE_TOOLS") == "1" || os.Getenv("PACS_TEST_REQUIRE_SERVICES") == "1" || os.Getenv("CI") == "true" {
		t.Fatalf("%s missing (apt-get install -y python3-pydicom dcmtk)", what)
	}
	t.Skipf("%s missing (apt-get install -y python3-pydicom dcmtk)", what)
}

// pydicomResult is one line of testdata/pixels.py output.
type pydicomResult struct {
	Path   string   `json:"path"`
	PN     []string `json:"pn"`
	Frames []string `json:"frames"`
	Error  string   `json:"error"`
}

var (
	pydicomOnce sync.Once
	pydicomOut  map[string]pydicomResult
	pydicomErr  string
)

const python = "/usr/bin/python3"

func havePydicom() bool {
	return exec.Command(python, "-c", "import pydicom").Run() == nil
}

// pydicomInfo runs testdata/pixels.py once over every corpus file.
func pydicomInfo(t testing.TB) map[string]pydicomResult {
	t.Helper()
	needTool(t, havePydicom(), "/usr/bin/python3 with pydicom")
	pydicomOnce.Do(func() {
		files := corpusFiles(t, false)
		out, err := exec.Command(python, append([]string{"testdata/pixels.py"}, files...)...).Output()
		if err != nil {
			pydicomErr = err.Error()
			return
		}
		pydicomOut = map[string]pydicomResult{}
		for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
			var r pydicomResult
			if err := json.Unmarshal(line, &r); err != nil {
				pydicomErr = err.Error()
				return
			}
			pydicomOut[r.Path] = r
		}
	})
	if pydicomErr != "" {
		t.Fatalf("pixels.py: %s", pydicomErr)
	}
	return pydicomOut
}

// corpusFiles lists the .dcm files of testdata/dicom, with or without bad/.
func corpusFiles(t testing.TB, withBad bool) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(corpus, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "bad" && !withBad {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".dcm") || withBad && strings.Contains(p, "/bad/") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// frameBytes reads the bytes of frame i from the stored object.
func frameBytes(t testing.TB, data []byte, h *Header, i int) []byte {
	t.Helper()
	src := data
	if h.Deflated {
		inf, err := io.ReadAll(flate.NewReader(bytes.NewReader(data[h.DataSetOffset:])))
		if err != nil {
			t.Fatal(err)
		}
		src = append(make([]byte, h.DataSetOffset), inf...)
	}
	var out []byte
	for _, s := range h.Frames[i] {
		if s.Offset < 0 || s.Offset+s.Length > int64(len(src)) {
			t.Fatalf("frame %d span %+v outside object of %d bytes", i, s, len(src))
		}
		out = append(out, src[s.Offset:s.Offset+s.Length]...)
	}
	return out
}
