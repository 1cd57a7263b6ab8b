package dicomweb

import (
	"net/url"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
)

const (
	ctSeries = "2.25.28303200511232364795636824614043687605"
	ptSeries = "2.25.74008761095456477709858478756448764366"
)

// corpusServer is a server holding the study/ folder and the images/
// and ts/ files.
func corpusServer(t *testing.T) *testServer {
	s := newTestServer(t, nil)
	var files []string
	for _, d := range []string{"study/s02_ct", "study/s03_pt", "study/s100_sr", "images", "ts", "reports", "charset"} {
		files = append(files, corpusFiles(t, d)...)
	}
	s.store(t, files...)
	return s
}

func TestQIDO(t *testing.T) {
	s := corpusServer(t)
	type tc struct {
		url   string
		hdr   map[string]string
		want  int // status
		count int // results, -1: don't check
		check func(t *testing.T, res []map[string]any)
		// warn: words every response must carry in a Warning header;
		// none when empty (then the response has no Warning at all).
		warn []string
	}
	firstIs := func(tag string, want any) func(*testing.T, []map[string]any) {
		return func(t *testing.T, res []map[string]any) {
			if got := value(res[0], tag); got != want {
				t.Errorf("%s = %v (%T), want %v", tag, got, got, want)
			}
		}
	}
	hasStudy := func(t *testing.T, res []map[string]any) {
		for _, r := range res {
			if value(r, "0020000D") == studyUID {
				return
			}
		}
		t.Errorf("study %s not among %d results", studyUID, len(res))
	}
	studies := len(jsonArray(t, s.do(t, "GET", "/dicom-web/studies", nil, nil).body))
	cases := []tc{
		{url: "/studies", want: 200, count: -1},
		{url: "/studies?StudyInstanceUID=" + studyUID, want: 200, count: 1, check: func(t *testing.T, res []map[string]any) {
			r := res[0]
			if value(r, "00201206") != float64(3) || value(r, "00201208") != float64(20) {
				t.Errorf("NumberOfStudyRelatedSeries/Instances = %v/%v, want 3/20", value(r, "00201206"), value(r, "00201208"))
			}
			mods := values(r, "00080061")
			if len(mods) != 3 {
				t.Errorf("ModalitiesInStudy %v", mods)
			}
			if pn, _ := value(r, "00100010").(map[string]any); pn["Alphabetic"] != "DOE^JANE" {
				t.Errorf("PatientName %v", value(r, "00100010"))
			}
			if value(r, "00080056") != "ONLINE" || value(r, "00081190") != s.URL+"/dicom-web/studies/"+studyUID {
				t.Errorf("InstanceAvailability/RetrieveURL %v %v", value(r, "00080056"), value(r, "00081190"))
			}
			if len(values(r, "00080062")) == 0 {
				t.Error("SOPClassesInStudy missing")
			}
		}},
		{url: "/studies?PatientName=doe*", want: 200, count: -1, check: hasStudy},
		{url: "/studies?00100010=DOE%5EJANE", want: 200, count: -1, check: hasStudy},
		{url: "/studies?PatientID=PACSTEST0001&StudyDate=20240101-20241231", want: 200, count: -1, check: hasStudy},
		{url: "/studies?StudyDate=19000101-19000102", want: 200, count: 0},
		{url: "/studies?PatientName=DOE^JANE&AccessionNumber=ACC20240315001", want: 200, count: 1, check: hasStudy},
		{url: "/studies?PatientName=nobody", want: 200, count: 0},
		{url: "/studies?ModalitiesInStudy=PT", want: 200, count: -1, check: hasStudy},
		{url: "/studies?StudyInstanceUID=" + studyUID + ",1.2.3", want: 200, count: 1},
		{url: "/studies?PatientID=PACSTEST000?", want: 200, count: -1, check: hasStudy},
		{url: "/studies?limit=2", want: 200, count: 2},
		{url: "/studies?limit=2&offset=1000", want: 200, count: 0},
		{url: "/studies?StudyInstanceUID=" + studyUID + "&includefield=StudyDescription,00100030&includefield=PatientAge", want: 200, count: 1,
			check: firstIs("00081030", "PET-CT WHOLE BODY FDG")},
		{url: "/studies?StudyInstanceUID=" + studyUID + "&includefield=all", want: 200, count: 1},
		{url: "/studies/" + studyUID + "/series", want: 200, count: 3},
		{url: "/studies/" + studyUID + "/series?Modality=CT", want: 200, count: 1, check: func(t *testing.T, res []map[string]any) {
			if value(res[0], "0020000E") != ctSeries || value(res[0], "00201209") != float64(11) {
				t.Errorf("series %v with %v instances", value(res[0], "0020000E"), value(res[0], "00201209"))
			}
			if value(res[0], "00200011") != float64(2) {
				t.Errorf("SeriesNumber %v (%T), want number 2", value(res[0], "00200011"), value(res[0], "00200011"))
			}
		}},
		{url: "/series?Modality=PT", want: 200, count: -1, check: func(t *testing.T, res []map[string]any) {
			for _, r := range res {
				if value(r, "00080060") != "PT" {
					t.Errorf("Modality %v", value(r, "00080060"))
				}
				if value(r, "0020000D") == nil || value(r, "00100020") == nil {
					t.Error("a /series result lacks study attributes")
				}
			}
		}},
		{url: "/studies/" + studyUID + "/series/" + ctSeries + "/instances", want: 200, count: 11, check: func(t *testing.T, res []map[string]any) {
			r := res[0]
			if value(r, "00280010") == nil || value(r, "00080016") == nil || value(r, "00081190") == nil {
				t.Errorf("instance result lacks Rows/SOPClassUID/RetrieveURL: %v", r)
			}
		}},
		{url: "/studies/" + studyUID + "/series/" + ctSeries + "/instances?InstanceNumber=3", want: 200, count: 1, check: firstIs("00200013", float64(3))},
		{url: "/studies/" + studyUID + "/instances", want: 200, count: 20},
		{url: "/studies/" + studyUID + "/instances?limit=5&offset=18", want: 200, count: 2},
		{url: "/instances?SOPInstanceUID=" + row(t, "ts/mr_rle.dcm").SOP + "&includefield=00280004", want: 200, count: 1,
			check: firstIs("00280004", "MONOCHROME2")},
		{url: "/instances?Modality=PT", want: 200, count: -1},
		{url: "/studies?PatientName=" + url.QueryEscape("Wang^XiaoDong*"), want: 200, count: 1},
		{url: "/studies?fuzzymatching=true&PatientName=doe", want: 200, count: -1},
		// What the server does not support is ignored, with a Warning
		// (PS3.18 8.3): viewers and proxies add parameters of their own.
		{url: "/studies?_=1700000000", want: 200, count: studies, warn: []string{`not supported and were ignored: \"_\"`}},
		{url: "/studies?NoSuchAttribute=1&PatientName=" + url.QueryEscape("Wang^XiaoDong*"), want: 200, count: 1,
			warn: []string{`\"NoSuchAttribute\"`}},
		{url: "/studies?includefield=Bogus,StudyDescription", want: 200, count: studies, warn: []string{`\"includefield=Bogus\"`}},
		{url: "/studies?00081110.00081150=1", want: 200, count: studies, warn: []string{`\"00081110.00081150\"`}},
		{url: "/studies?SOPClassUID=1.2.3&Modality=XX", want: 200, count: studies, warn: []string{`\"Modality\", \"SOPClassUID\"`}},
		{url: "/series?Modality=PT&ImageType=ORIGINAL", want: 200, count: -1, warn: []string{`\"ImageType\"`},
			check: func(t *testing.T, res []map[string]any) {
				for _, r := range res {
					if value(r, "00080060") != "PT" {
						t.Errorf("Modality %v in a Modality=PT search", value(r, "00080060"))
					}
				}
			}},
		// Universal matching of any attribute asks for it as a return key;
		// a value to match on where the index cannot is ignored.
		{url: "/instances?PhotometricInterpretation=&SOPInstanceUID=" + row(t, "ts/mr_rle.dcm").SOP, want: 200, count: 1,
			check: firstIs("00280004", "MONOCHROME2")},
		{url: "/instances?PhotometricInterpretation=RGB&SOPInstanceUID=" + row(t, "ts/mr_rle.dcm").SOP, want: 200, count: 1,
			warn: []string{`\"PhotometricInterpretation\"`}},
		{url: "/studies?emptyvaluematching=true&multiplevaluematching=false", want: 200, count: studies,
			warn: []string{"The emptyvaluematching parameter is not supported. Empty Value Matching has not been performed."}},
		{url: "/studies?multiplevaluematching=true", want: 200, count: studies,
			warn: []string{"The multiplevaluematching parameter is not supported. Multiple Value Matching has not been performed."}},
		{url: "/studies?emptyvaluematching=false", want: 200, count: studies},
		// errors: malformed values of supported parameters
		{url: "/studies?limit=-1", want: 400},
		{url: "/studies?limit=x", want: 400},
		{url: "/studies?offset=1&offset=2", want: 400},
		{url: "/studies?fuzzymatching=maybe", want: 400},
		{url: "/studies?StudyDate=2024-bad", want: 400},
		{url: "/studies?StudyInstanceUID=not-a-uid", want: 400},
		{url: "/studies?PatientID=1&PatientID=2", want: 400},
		{url: "/studies", hdr: map[string]string{"Accept": "application/dicom+xml"}, want: 406},
		{url: "/studies", hdr: map[string]string{"Accept": "application/json"}, want: 200, count: -1},
		{url: "/studies/1.2.3/series", want: 404},
		{url: "/studies/" + studyUID + "/series/1.2.3/instances", want: 404},
		{url: "/studies/bad-uid/series", want: 400},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			r := s.do(t, "GET", "/dicom-web"+c.url, c.hdr, nil)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			warnings := strings.Join(r.header.Values("Warning"), "\n")
			if len(c.warn) == 0 && warnings != "" && c.want == 200 && !strings.Contains(c.url, "limit=") {
				t.Errorf("unexpected Warning %q", warnings)
			}
			for _, w := range c.warn {
				if !strings.Contains(warnings, w) {
					t.Errorf("Warning %q lacks %q", warnings, w)
				}
			}
			if c.want != 200 {
				return
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/dicom+json") {
				t.Errorf("Content-Type %q", ct)
			}
			res := jsonArray(t, r.body)
			if c.count >= 0 && len(res) != c.count {
				t.Fatalf("%d results, want %d: %.500s", len(res), c.count, r.body)
			}
			if c.check != nil && len(res) > 0 {
				c.check(t, res)
			}
		})
	}
}

func TestQIDO_stableOrderPaging(t *testing.T) {
	s := corpusServer(t)
	all := jsonArray(t, s.do(t, "GET", "/dicom-web/instances", nil, nil).body)
	var paged []map[string]any
	for off := 0; off < len(all); off += 7 {
		paged = append(paged, jsonArray(t, s.do(t, "GET", "/dicom-web/instances?limit=7&offset="+itoa(off), nil, nil).body)...)
	}
	if len(paged) != len(all) {
		t.Fatalf("paged %d, all %d", len(paged), len(all))
	}
	for i := range all {
		if value(all[i], "00080018") != value(paged[i], "00080018") {
			t.Fatalf("order differs at %d", i)
		}
	}
}

func TestQIDONeedsMetadata(t *testing.T) {
	for _, c := range []struct {
		query         string
		level         storage.Level
		study, series string
		want          bool
	}{
		{"", storage.LevelStudy, "", "", false},
		{"PatientName=DOE*&StudyDate=", storage.LevelStudy, "", "", false},
		{"includefield=ModalitiesInStudy,NumberOfStudyRelatedInstances", storage.LevelStudy, "", "", false},
		{"includefield=all", storage.LevelStudy, "", "", true},
		{"includefield=IssuerOfPatientID", storage.LevelStudy, "", "", true}, // a column, but only sent when set
		{"includefield=00081032", storage.LevelStudy, "", "", true},          // ProcedureCodeSequence: no column
		{"includefield=00081030", storage.LevelStudy, "", "", false},         // StudyDescription
		{"includefield=PatientName", storage.LevelSeries, "", "", false},
		{"includefield=PatientName", storage.LevelSeries, "1.2", "", true}, // study attributes left out under /studies/{s}
		{"includefield=SeriesDescription", storage.LevelInstance, "1.2", "", false},
		{"includefield=SeriesDescription", storage.LevelInstance, "1.2", "1.2.3", true},
		{"includefield=Rows", storage.LevelInstance, "", "", true},
	} {
		v, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		q, err := parseQIDOQuery(v, c.level)
		if err != nil {
			t.Fatalf("%q: %v", c.query, err)
		}
		if got := q.needsMetadata(c.level, c.study, c.series); got != c.want {
			t.Errorf("%q at %s (%q %q): needsMetadata = %v; want %v", c.query, c.level, c.study, c.series, got, c.want)
		}
	}
}
