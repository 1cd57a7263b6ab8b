package dcm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// jsonOf renders h and resolves the bulk placeholder so that the result
// is plain JSON.
func jsonOf(t testing.TB, h *Header) []byte {
	t.Helper()
	out := AppendJSON(nil, h)
	out = bytes.ReplaceAll(out, []byte(BulkPlaceholder), []byte("https://pacs.example/instances/x"))
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	return out
}

func TestAppendJSON_validForCorpus(t *testing.T) {
	for _, path := range corpusFiles(t, false) {
		h := parseFile(t, path)
		out := jsonOf(t, h)
		var m map[string]map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for k, v := range m {
			if len(k) != 8 || strings.ToUpper(k) != k || strings.HasPrefix(k, "0002") || strings.HasSuffix(k, "0000") {
				t.Errorf("%s: bad key %q", path, k)
			}
			if _, ok := v["vr"]; !ok {
				t.Errorf("%s: %s without vr", path, k)
			}
		}
		if h.Dataset.find(tagPixelData) != nil {
			pd := m["7FE00010"]
			if pd["BulkDataURI"] != "https://pacs.example/instances/x/bulk/7FE00010" {
				t.Errorf("%s: PixelData = %v", path, pd)
			}
		}
	}
}

func TestAppendJSON_keysSorted(t *testing.T) {
	h := parseFile(t, filepath.Join(corpus, "study/s02_ct/ct_0001.dcm"))
	out := jsonOf(t, h)
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.Token() // {
	prev := ""
	for dec.More() {
		k, _ := dec.Token()
		key := k.(string)
		if key <= prev {
			t.Fatalf("key %s after %s", key, prev)
		}
		prev = key
		var skip json.RawMessage
		dec.Decode(&skip)
	}
}

func TestAppendJSON_values(t *testing.T) {
	ds := &Dataset{Elements: []*Element{
		{Tag: 0x00080060, VR: "CS", Value: []byte("CT")},
		{Tag: 0x00100010, VR: "PN", Value: []byte("Yamada^Tarou==ヤマダ^タロウ ")},
		{Tag: 0x00100020, VR: "LO", Value: []byte("a\"b\\\x01\n")},
		{Tag: 0x00181050, VR: "DS", Value: []byte(" 1.0e-3\\+2\\abc\\\\.5 ")},
		{Tag: 0x00200013, VR: "IS", Value: []byte(" 007\\x")},
		{Tag: 0x00201041, VR: "DS", Value: nil},
		{Tag: 0x00280010, VR: "US", Value: []byte{0, 2, 1, 0}},
		{Tag: 0x00280106, VR: "SS", Value: []byte{0xFF, 0xFF}},
		{Tag: 0x00209165, VR: "AT", Value: []byte{0x20, 0x00, 0x32, 0x00}},
		{Tag: 0x00189087, VR: "FD", Value: []byte{0, 0, 0, 0, 0, 0, 0xF8, 0x7F}},
		{Tag: 0x00420011, VR: "OB", Bulk: &Span{10, 20}},
		{Tag: 0x00091010, VR: "UN", Value: []byte{1, 2, 3}},
		{Tag: 0x00081140, VR: "SQ", Items: []*Dataset{{Elements: []*Element{
			{Tag: 0x00081150, VR: "UI", Value: []byte("1.2.3\x00")},
			{Tag: 0x00181072, VR: "OW", Bulk: &Span{1, 2}},
		}}}},
		{Tag: 0x00082112, VR: "SQ"},
	}}
	got := string(AppendJSON(nil, &Header{Dataset: ds}))
	want := `{"00080060":{"vr":"CS","Value":["CT"]},` +
		`"00081140":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2.3"]},"00181072":{"vr":"OW","BulkDataURI":"` + BulkPlaceholder + `/bulk/00081140/0/00181072"}}]},` +
		`"00082112":{"vr":"SQ"},` +
		`"00091010":{"vr":"UN","InlineBinary":"AQID"},` +
		`"00100010":{"vr":"PN","Value":[{"Alphabetic":"Yamada^Tarou","Phonetic":"ヤマダ^タロウ"}]},` +
		`"00100020":{"vr":"LO","Value":["a\"b","\u0001\n"]},` +
		`"00181050":{"vr":"DS","Value":[1.0e-3,2,null,null,0.5]},` +
		`"00189087":{"vr":"FD","Value":[null]},` +
		`"00200013":{"vr":"IS","Value":[7,null]},` +
		`"00201041":{"vr":"DS"},` +
		`"00209165":{"vr":"AT","Value":["00200032"]},` +
		`"00280010":{"vr":"US","Value":[512,1]},` +
		`"00280106":{"vr":"SS","Value":[-1]},` +
		`"00420011":{"vr":"OB","BulkDataURI":"` + BulkPlaceholder + `/bulk/00420011"}}`
	if got != want {
		t.Errorf("AppendJSON\n got %s\nwant %s", got, want)
	}
}

// TestAppendJSON_charsetPN compares decoded PatientName components with
// pydicom's for the character set samples.
func TestAppendJSON_charsetPN(t *testing.T) {
	ref := pydicomInfo(t)
	files, _ := filepath.Glob(filepath.Join(corpus, "charset/*.dcm"))
	if len(files) != 4 {
		t.Fatalf("%d charset files", len(files))
	}
	for _, path := range files {
		h := parseFile(t, path)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(jsonOf(t, h), &m); err != nil {
			t.Fatal(err)
		}
		var pnElem struct{ Value []map[string]string }
		if err := json.Unmarshal(m["00100010"], &pnElem); err != nil {
			t.Fatal(err)
		}
		pn := pnElem.Value
		if len(pn) != 1 {
			t.Fatalf("%s: PatientName %v", path, pn)
		}
		want := ref[path].PN
		got := []string{pn[0]["Alphabetic"], pn[0]["Ideographic"], pn[0]["Phonetic"]}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: PatientName %q, pydicom %q", path, got, want)
		}
		if txt := h.Text(0x00100010); strings.TrimRight(txt, "=") != strings.TrimRight(strings.Join(want, "="), "=") {
			t.Errorf("%s: Text(PatientName) = %q", path, txt)
		}
	}
}

// TestAppendJSON_matchesDcm2json compares with dcmtk's dcm2json wherever
// both produce a value: keys, VRs, strings, numbers, PN.
func TestAppendJSON_matchesDcm2json(t *testing.T) {
	_, err := exec.LookPath("dcm2json")
	needTool(t, err == nil, "dcm2json (dcmtk)")
	files := []string{"study/s02_ct/ct_0001.dcm", "study/s03_pt/pt_0001.dcm", "study/s100_sr/sr_0001.dcm",
		"charset/latin1_iso_ir100_french.dcm", "charset/utf8_iso_ir192_chinese.dcm", "charset/korean_iso2022_ir149.dcm",
		"ts/mr_implicit_le.dcm", "ts/mr_explicit_be.dcm", "ts/mr_deflated.dcm", "images/ct_enhanced_perfusion_2f_native.dcm",
		"reports/sr_comprehensive_dcmtk_real.dcm"}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			path := filepath.Join(corpus, f)
			ref, err := exec.Command("dcm2json", path).Output()
			if err != nil {
				// The reference failed on a file of the corpus (say, an
				// iconv without the file's character set): that is a
				// broken reference, not a reason to compare nothing.
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("dcm2json %s: %v\n%s", f, err, stderr)
			}
			var want, got map[string]any
			if err := json.Unmarshal(ref, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(jsonOf(t, parseFile(t, path)), &got); err != nil {
				t.Fatal(err)
			}
			n := compareJSON(t, "", got, want)
			if n < 20 {
				t.Errorf("only %d values compared", n)
			}
		})
	}
}

// compareJSON compares two DICOM JSON data sets; it returns the number
// of values compared.
func compareJSON(t *testing.T, path string, got, want map[string]any) int {
	n := 0
	for k, wv := range want {
		if strings.HasPrefix(k, "0002") || k == "00080005" { // dcm2json re-encodes to ISO_IR 192
			continue
		}
		w := wv.(map[string]any)
		gv, ok := got[k]
		if !ok {
			t.Errorf("%s%s missing (dcm2json: %v)", path, k, w)
			continue
		}
		g := gv.(map[string]any)
		if g["vr"] != w["vr"] {
			t.Errorf("%s%s vr %v, dcm2json %v", path, k, g["vr"], w["vr"])
			continue
		}
		if _, bin := w["InlineBinary"]; bin {
			continue
		}
		if _, bin := w["BulkDataURI"]; bin {
			continue
		}
		wvals, _ := w["Value"].([]any)
		gvals, _ := g["Value"].([]any)
		if len(wvals) != len(gvals) {
			t.Errorf("%s%s Value %v, dcm2json %v", path, k, gvals, wvals)
			continue
		}
		for i := range wvals {
			if wi, ok := wvals[i].(map[string]any); ok && w["vr"] == "SQ" {
				gi, _ := gvals[i].(map[string]any)
				n += compareJSON(t, fmt.Sprintf("%s%s/%d/", path, k, i), gi, wi)
				continue
			}
			if gf, ok := gvals[i].(float64); ok && w["vr"] == "FL" {
				if wf, ok := wvals[i].(float64); ok && float32(gf) == float32(wf) {
					n++
					continue // same float32, we print the shortest form
				}
			}
			if !reflect.DeepEqual(gvals[i], wvals[i]) {
				t.Errorf("%s%s[%d] = %#v, dcm2json %#v", path, k, i, gvals[i], wvals[i])
			}
			n++
		}
	}
	return n
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain": `"plain"`, "é\u2028": `"é\u2028"`, "\x00\x1f": `"\u0000\u001F"`, "\xff": `"\ufffd"`,
	} {
		got := string(appendJSONString(nil, in))
		if got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("invalid: %s", got)
		}
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
