package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/google/go-cmp/cmp"
)

const (
	ctImage = "1.2.840.10008.5.1.4.1.1.2"
	mrImage = "1.2.840.10008.5.1.4.1.1.4"
	basicSR = "1.2.840.10008.5.1.4.1.1.88.11"
	ptImage = "1.2.840.10008.5.1.4.1.1.128"
)

// NewTestInstance returns a synthetic instance with a unique blob key,
// a SHA-256 derived from the UIDs and small DICOM JSON metadata.
func NewTestInstance(study, series, sop string) *storage.Instance {
	return &storage.Instance{
		StudyInstanceUID:  study,
		SeriesInstanceUID: series,
		SOPInstanceUID:    sop,
		SOPClassUID:       ctImage,
		TransferSyntaxUID: "1.2.840.10008.1.2.1",
		BlobKey:           "instances/00/00/" + sop + ".dcm",
		Size:              1234,
		SHA256:            fmt.Sprintf("%064x", len(sop)) + "-" + sop,
		Created:           time.Unix(1_700_000_000, 123).UTC(),
		Frames:            []dcm.Frame{{{Offset: 1000, Length: 234}}},
		DataSetOffset:     132 + 60,
		Bulk:              []dcm.BulkRef{{Path: "7FE00010", VR: "OW", Span: dcm.Span{Offset: 1000, Length: 234}}},
		Study:             storage.StudyAttrs{PatientName: "Test^Patient", PatientID: "T1", StudyDate: "20240101"},
		Series:            storage.SeriesAttrs{Modality: "CT", SeriesNumber: "1"},
		Instance:          storage.InstanceAttrs{InstanceNumber: "1", Rows: 16, Columns: 16, BitsAllocated: 16, NumberOfFrames: 1},
		Metadata:          []byte(`{"00080018":{"vr":"UI","Value":["` + sop + `"]}}`),
	}
}

// fixture is a small archive that exercises every matching form.
func fixture() []*storage.Instance {
	var out []*storage.Instance
	add := func(study, series, sop string, edit func(*storage.Instance)) {
		inst := NewTestInstance(study, series, sop)
		edit(inst)
		out = append(out, inst)
	}
	studyA := storage.StudyAttrs{PatientName: "Doe^John", PatientID: "P1", IssuerOfPatientID: "HOSP", PatientBirthDate: "19700101",
		PatientSex: "M", StudyDate: "20200115", StudyTime: "083000", AccessionNumber: "ACC1", StudyID: "S1",
		ReferringPhysicianName: "Smith^Anna", StudyDescription: "CT Chest [contrast]"}
	studyB := storage.StudyAttrs{PatientName: "DOE^JANE", PatientID: "P2", PatientSex: "F", StudyDate: "20201231",
		StudyTime: "120030", AccessionNumber: "ACC2", StudyDescription: "MR Brain"}
	studyC := storage.StudyAttrs{PatientName: "Müller^Jürgen Karl", PatientID: "p1", PatientSex: "M", StudyDate: "20210601",
		StudyTime: "0800", AccessionNumber: "acc1", StudyDescription: "ct chest"}
	studyD := storage.StudyAttrs{PatientName: "Doeman^Jo", PatientID: "P3"}
	for sop, n := range map[string]string{"1.1.1.1": "10", "1.1.1.2": "2", "1.1.1.3": "1"} {
		add("1.1", "1.1.1", sop, func(i *storage.Instance) {
			i.Study = studyA
			i.Series = storage.SeriesAttrs{Modality: "CT", SeriesNumber: "2", SeriesDescription: "Axial", BodyPartExamined: "CHEST"}
			i.Instance.InstanceNumber = n
		})
	}
	add("1.1", "1.1.2", "1.1.2.1", func(i *storage.Instance) {
		i.Study = studyA
		i.Series = storage.SeriesAttrs{Modality: "SR", SeriesNumber: "10"}
		i.SOPClassUID = basicSR
		i.Frames = nil
	})
	add("1.2", "1.2.1", "1.2.1.1", func(i *storage.Instance) {
		i.Study = studyB
		i.Series = storage.SeriesAttrs{Modality: "MR", SeriesNumber: "1"}
		i.SOPClassUID = mrImage
		i.Instance.InstanceNumber = "1"
	})
	add("1.3", "1.3.1", "1.3.1.1", func(i *storage.Instance) {
		i.Study = studyC
		i.Series = storage.SeriesAttrs{Modality: "CT", SeriesNumber: "1"}
		i.Instance.InstanceNumber = "5"
	})
	add("1.3", "1.3.2", "1.3.2.1", func(i *storage.Instance) {
		i.Study = studyC
		i.Series = storage.SeriesAttrs{Modality: "PT", SeriesNumber: "2"}
		i.SOPClassUID = ptImage
		i.Instance.InstanceNumber = "6"
	})
	add("1.4", "1.4.1", "1.4.1.1", func(i *storage.Instance) {
		i.Study = studyD
		i.Series = storage.SeriesAttrs{Modality: "OT"}
		i.Instance.InstanceNumber = ""
	})
	// Map iteration gave a random order within study A; keep A's first
	// put deterministic for Representative checks.
	for i, inst := range out {
		if inst.SOPInstanceUID == "1.1.1.1" {
			out[0], out[i] = out[i], out[0]
		}
	}
	return out
}

func putAll(t *testing.T, x storage.Index, insts []*storage.Instance) {
	t.Helper()
	for _, inst := range insts {
		if _, err := x.PutInstance(t.Context(), inst, false); err != nil {
			t.Fatalf("PutInstance(%s): %v", inst.SOPInstanceUID, err)
		}
	}
}

// TestIndex runs the Index conformance suite. newIndex returns a fresh,
// empty index; clean-up goes through t.Cleanup.
func TestIndex(t *testing.T, newIndex func(t *testing.T) storage.Index) {
	t.Run("PutGet", func(t *testing.T) {
		x := newIndex(t)
		inst := NewTestInstance("1.9", "1.9.1", "1.9.1.1")
		inst.Frames = []dcm.Frame{{{Offset: 5000, Length: 10}, {Offset: 5020, Length: 7}}, {{Offset: 6000, Length: 1 << 40}}}
		inst.Encapsulated, inst.BigEndian = true, true
		inst.Bulk = []dcm.BulkRef{
			{Path: "00880200/0/7FE00010", VR: "OW", Span: dcm.Span{Offset: 900, Length: 4096}},
			{Path: "7FE00010", VR: "OB", Span: dcm.Span{Offset: 4996, Length: 1<<40 + 1004}},
		}
		res, err := x.PutInstance(t.Context(), inst, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate || res.ReplacedBlobKey != "" {
			t.Fatalf("PutInstance(new) = %+v", res)
		}
		for _, path := range [][2]string{{"", ""}, {"1.9", ""}, {"1.9", "1.9.1"}, {"", "1.9.1"}} {
			got, err := x.Instance(t.Context(), path[0], path[1], "1.9.1.1")
			if err != nil {
				t.Fatalf("Instance(%q, %q): %v", path[0], path[1], err)
			}
			if diff := cmp.Diff(inst, got); diff != "" {
				t.Fatalf("Instance mismatch (-put +got):\n%s", diff)
			}
		}
		for _, path := range [][3]string{{"1.8", "", "1.9.1.1"}, {"1.9", "1.9.2", "1.9.1.1"}, {"", "", "1.9.1.2"}} {
			if _, err := x.Instance(t.Context(), path[0], path[1], path[2]); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Instance(%v) error = %v, want ErrNotFound", path, err)
			}
		}
		if ok, err := x.HasBlob(t.Context(), inst.BlobKey); err != nil || !ok {
			t.Errorf("HasBlob(put key) = %v, %v", ok, err)
		}
		if ok, err := x.HasBlob(t.Context(), "instances/ff/ff/none.dcm"); err != nil || ok {
			t.Errorf("HasBlob(other key) = %v, %v", ok, err)
		}
		if err := x.Ping(t.Context()); err != nil {
			t.Error(err)
		}
	})

	t.Run("BulkNilOrEmpty", func(t *testing.T) {
		// nil Bulk (not recorded) and empty Bulk (no bulk values) stay apart.
		x := newIndex(t)
		for sop, bulk := range map[string][]dcm.BulkRef{"1.9.1.5": nil, "1.9.1.6": {}} {
			inst := NewTestInstance("1.9", "1.9.1", sop)
			inst.Bulk = bulk
			if _, err := x.PutInstance(t.Context(), inst, false); err != nil {
				t.Fatal(err)
			}
			got, err := x.Instance(t.Context(), "", "", sop)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Bulk == nil) != (bulk == nil) || len(got.Bulk) != 0 {
				t.Errorf("Bulk put %#v, got %#v", bulk, got.Bulk)
			}
		}
	})
	t.Run("DuplicateSameSHA", func(t *testing.T) {
		x := newIndex(t)
		inst := NewTestInstance("1.9", "1.9.1", "1.9.1.1")
		putAll(t, x, []*storage.Instance{inst})
		v0, _ := x.StudyVersion(t.Context(), "1.9")
		again := NewTestInstance("1.9", "1.9.1", "1.9.1.1")
		again.BlobKey = "instances/11/11/other.dcm"
		res, err := x.PutInstance(t.Context(), again, false)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Duplicate || res.Stored.BlobKey != inst.BlobKey {
			t.Fatalf("PutInstance(duplicate) = Duplicate %v, key %q; want true, %q", res.Duplicate, res.Stored.BlobKey, inst.BlobKey)
		}
		if v1, _ := x.StudyVersion(t.Context(), "1.9"); v1 != v0 {
			t.Errorf("duplicate changed the study version %d -> %d", v0, v1)
		}
		if ok, _ := x.HasBlob(t.Context(), again.BlobKey); ok {
			t.Error("duplicate's blob key got indexed")
		}
	})

	t.Run("DifferentSHAExists", func(t *testing.T) {
		x := newIndex(t)
		inst := NewTestInstance("1.9", "1.9.1", "1.9.1.1")
		putAll(t, x, []*storage.Instance{inst})
		other := NewTestInstance("1.9", "1.9.1", "1.9.1.1")
		other.SHA256, other.BlobKey = "ff", "instances/11/11/other.dcm"
		if _, err := x.PutInstance(t.Context(), other, false); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("PutInstance(different SHA) error = %v, want ErrExists", err)
		}
		got, err := x.Instance(t.Context(), "", "", "1.9.1.1")
		if err != nil || got.BlobKey != inst.BlobKey {
			t.Fatalf("row changed after ErrExists: %v %v", got, err)
		}
	})

	t.Run("Replace", func(t *testing.T) {
		x := newIndex(t)
		inst := NewTestInstance("1.9", "1.9.1", "1.9.1.1")
		putAll(t, x, []*storage.Instance{inst})
		v0, _ := x.StudyVersion(t.Context(), "1.9")
		other := NewTestInstance("1.9", "1.9.1", "1.9.1.1")
		other.SHA256, other.BlobKey, other.Size = "ff", "instances/11/11/other.dcm", 99
		other.Metadata = []byte(`{"replaced":true}`)
		res, err := x.PutInstance(t.Context(), other, true)
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate || res.ReplacedBlobKey != inst.BlobKey || res.ReplacedSHA256 != inst.SHA256 {
			t.Fatalf("PutInstance(replace) = %+v, want ReplacedBlobKey %q, ReplacedSHA256 %q", res, inst.BlobKey, inst.SHA256)
		}
		got, err := x.Instance(t.Context(), "", "", "1.9.1.1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(other, got); diff != "" {
			t.Fatalf("replaced row mismatch (-want +got):\n%s", diff)
		}
		if v1, _ := x.StudyVersion(t.Context(), "1.9"); v1 == v0 {
			t.Error("replace did not change the study version")
		}
		if insts, _ := x.Instances(t.Context(), "1.9", ""); len(insts) != 1 {
			t.Errorf("replace left %d rows, want 1", len(insts))
		}
	})

	t.Run("Conflict", func(t *testing.T) {
		x := newIndex(t)
		putAll(t, x, []*storage.Instance{NewTestInstance("1.9", "1.9.1", "1.9.1.1")})
		for _, inst := range []*storage.Instance{
			NewTestInstance("1.8", "1.9.1", "1.9.1.1"), // same SOP, other study
			NewTestInstance("1.9", "1.9.2", "1.9.1.1"), // same SOP, other series
			NewTestInstance("1.8", "1.9.1", "1.8.1.1"), // series already under another study
		} {
			for _, replace := range []bool{false, true} {
				if _, err := x.PutInstance(t.Context(), inst, replace); !errors.Is(err, storage.ErrConflict) {
					t.Errorf("PutInstance(%s/%s/%s, replace=%v) error = %v, want ErrConflict",
						inst.StudyInstanceUID, inst.SeriesInstanceUID, inst.SOPInstanceUID, replace, err)
				}
			}
		}
		// Nothing of the failed puts is left behind.
		if _, err := x.StudyVersion(t.Context(), "1.8"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("StudyVersion(1.8) error = %v, want ErrNotFound (rolled back)", err)
		}
	})

	t.Run("InstancesOrdering", func(t *testing.T) {
		x := newIndex(t)
		putAll(t, x, fixture())
		got, err := x.Instances(t.Context(), "1.1", "")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"1.1.1.3", "1.1.1.2", "1.1.1.1", "1.1.2.1"}
		if diff := cmp.Diff(want, sopUIDs(got)); diff != "" {
			t.Errorf("Instances(1.1) order (-want +got):\n%s", diff)
		}
		got, err = x.Instances(t.Context(), "1.1", "1.1.2")
		if err != nil || len(got) != 1 || got[0].SOPInstanceUID != "1.1.2.1" {
			t.Errorf("Instances(1.1, 1.1.2) = %v, %v", sopUIDs(got), err)
		}
		for _, p := range [][2]string{{"9.9", ""}, {"1.1", "9.9"}, {"1.2", "1.1.1"}} {
			if _, err := x.Instances(t.Context(), p[0], p[1]); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Instances(%q, %q) error = %v, want ErrNotFound", p[0], p[1], err)
			}
		}
	})

	t.Run("EachMetadata", func(t *testing.T) {
		x := newIndex(t)
		ml, ok := x.(storage.MetadataLister)
		if !ok {
			t.Skip("optional storage.MetadataLister not implemented")
		}
		putAll(t, x, fixture())
		for _, p := range [][2]string{{"1.1", ""}, {"1.1", "1.1.1"}, {"1.3", ""}} {
			insts, err := x.Instances(t.Context(), p[0], p[1])
			if err != nil {
				t.Fatal(err)
			}
			var want, got []string
			for _, in := range insts {
				want = append(want, in.SeriesInstanceUID+" "+in.SOPInstanceUID+" "+string(in.Metadata))
			}
			err = ml.EachMetadata(t.Context(), p[0], p[1], func(series, sop string, md []byte) error {
				got = append(got, series+" "+sop+" "+string(md))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("EachMetadata(%q, %q) differs from Instances (-want +got):\n%s", p[0], p[1], diff)
			}
		}
		for _, p := range [][2]string{{"9.9", ""}, {"1.1", "9.9"}} {
			err := ml.EachMetadata(t.Context(), p[0], p[1], func(string, string, []byte) error { return nil })
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("EachMetadata(%q, %q) error = %v, want ErrNotFound", p[0], p[1], err)
			}
		}
	})

	t.Run("Search", func(t *testing.T) { testSearch(t, newIndex(t)) })
	t.Run("SearchEdges", func(t *testing.T) { testSearchEdges(t, newIndex(t)) })

	t.Run("SearchComputed", func(t *testing.T) {
		x := newIndex(t)
		insts := fixture()
		putAll(t, x, insts)
		res, err := x.Search(t.Context(), storage.Query{Level: storage.LevelStudy, Matches: []storage.Match{{Tag: storage.TagStudyInstanceUID, Value: "1.1"}}})
		if err != nil || len(res) != 1 {
			t.Fatalf("Search(1.1) = %v, %v", res, err)
		}
		s := res[0].Study
		want := storage.StudyResult{
			StudyInstanceUID:  "1.1",
			Attrs:             insts[0].Study,
			ModalitiesInStudy: []string{"CT", "SR"},
			SOPClassesInStudy: []string{ctImage, basicSR},
			NumberOfSeries:    2,
			NumberOfInstances: 4,
			Representative:    insts[0].Metadata,
		}
		if diff := cmp.Diff(want, s); diff != "" {
			t.Errorf("study result (-want +got):\n%s", diff)
		}
		res, err = x.Search(t.Context(), storage.Query{Level: storage.LevelSeries, StudyInstanceUID: "1.1"})
		if err != nil || len(res) != 2 {
			t.Fatalf("Search(series of 1.1) = %v, %v", res, err)
		}
		se := res[0]
		if se.Series.SeriesInstanceUID != "1.1.1" || se.Series.NumberOfInstances != 3 || se.Series.Attrs != insts[0].Series ||
			string(se.Series.Representative) != string(insts[0].Metadata) || se.Study.StudyInstanceUID != "1.1" || se.Study.Attrs != insts[0].Study {
			t.Errorf("series result = %+v", se)
		}
		res, err = x.Search(t.Context(), storage.Query{Level: storage.LevelInstance, StudyInstanceUID: "1.2", SeriesInstanceUID: "1.2.1"})
		if err != nil || len(res) != 1 {
			t.Fatalf("Search(instances of 1.2/1.2.1) = %v, %v", res, err)
		}
		var b *storage.Instance
		for _, inst := range insts {
			if inst.SOPInstanceUID == "1.2.1.1" {
				b = inst
			}
		}
		if diff := cmp.Diff(b, &res[0].Instance); diff != "" {
			t.Errorf("instance result (-want +got):\n%s", diff)
		}
		if res[0].Study.Attrs != b.Study || res[0].Series.Attrs != b.Series {
			t.Errorf("instance result study/series attrs = %+v %+v", res[0].Study, res[0].Series)
		}
	})

	t.Run("ComputedMaintained", func(t *testing.T) { testComputedMaintained(t, newIndex(t)) })
	t.Run("FuzzyName", func(t *testing.T) { testFuzzyName(t, newIndex(t)) })
	t.Run("FuzzyNameMaintained", func(t *testing.T) { testFuzzyNameMaintained(t, newIndex(t)) })
	t.Run("FuzzyPhonetic", func(t *testing.T) { testFuzzyPhonetic(t, newIndex(t)) })

	t.Run("OmitMetadata", func(t *testing.T) {
		x := newIndex(t)
		insts := fixture()
		putAll(t, x, insts)
		for _, level := range []storage.Level{storage.LevelStudy, storage.LevelSeries, storage.LevelInstance} {
			full, err := x.Search(t.Context(), storage.Query{Level: level})
			if err != nil {
				t.Fatal(err)
			}
			light, err := x.Search(t.Context(), storage.Query{Level: level, OmitMetadata: true})
			if err != nil {
				t.Fatal(err)
			}
			// Backends may still fill the documents; everything else is the same.
			for i := range light {
				if i >= len(full) {
					break
				}
				l := light[i]
				if l.Study.Representative == nil {
					l.Study.Representative = full[i].Study.Representative
				}
				if l.Series.Representative == nil {
					l.Series.Representative = full[i].Series.Representative
				}
				if l.Instance.Metadata == nil {
					l.Instance.Metadata = full[i].Instance.Metadata
				}
				if l.Instance.Bulk == nil {
					l.Instance.Bulk = full[i].Instance.Bulk
				}
				light[i] = l
			}
			if diff := cmp.Diff(full, light); diff != "" {
				t.Errorf("%s level: OmitMetadata results differ (-full +omit):\n%s", level, diff)
			}
		}
	})

	t.Run("LocateInstance", func(t *testing.T) {
		x := newIndex(t)
		insts := fixture()
		putAll(t, x, insts)
		ctx := t.Context()
		want := *insts[0]
		for _, withBulk := range []bool{false, true} {
			got, err := storage.LocateInstance(ctx, x, want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID, withBulk)
			if err != nil {
				t.Fatal(err)
			}
			w := want
			if _, ok := x.(storage.InstanceLocator); ok {
				w.Metadata = nil
				if !withBulk {
					w.Bulk = nil
				}
			}
			if diff := cmp.Diff(&w, got); diff != "" {
				t.Errorf("LocateInstance(withBulk=%v) (-want +got):\n%s", withBulk, diff)
			}
		}
		if _, err := storage.LocateInstance(ctx, x, "9.9", "", want.SOPInstanceUID, false); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LocateInstance(wrong study) = %v; want ErrNotFound", err)
		}
		if _, err := storage.LocateInstance(ctx, x, "", "", "9.9.9", false); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LocateInstance(unknown) = %v; want ErrNotFound", err)
		}
		full, err := x.Instances(ctx, "1.1", "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := storage.LocateInstances(ctx, x, "1.1", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := x.(storage.InstanceLocator); ok {
			for i := range full {
				c := *full[i]
				c.Metadata, c.Bulk = nil, nil
				full[i] = &c
			}
		}
		if diff := cmp.Diff(full, got); diff != "" {
			t.Errorf("LocateInstances (-want +got):\n%s", diff)
		}
		if _, err := storage.LocateInstances(ctx, x, "9.9", ""); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LocateInstances(unknown) = %v; want ErrNotFound", err)
		}
	})

	t.Run("SearchPaging", func(t *testing.T) {
		x := newIndex(t)
		// Ten studies with the same date and time: ties broken stably.
		var insts []*storage.Instance
		for i := range 10 {
			insts = append(insts, NewTestInstance(fmt.Sprintf("2.%d", i), fmt.Sprintf("2.%d.1", i), fmt.Sprintf("2.%d.1.1", i)))
		}
		putAll(t, x, insts)
		all, err := x.Search(t.Context(), storage.Query{Level: storage.LevelStudy})
		if err != nil || len(all) != 10 {
			t.Fatalf("Search(all) = %d results, %v", len(all), err)
		}
		var paged []string
		for off := 0; off < 12; off += 3 {
			res, err := x.Search(t.Context(), storage.Query{Level: storage.LevelStudy, Limit: 3, Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) > 3 {
				t.Fatalf("Limit 3 returned %d", len(res))
			}
			paged = append(paged, studyUIDs(res)...)
		}
		if diff := cmp.Diff(studyUIDs(all), paged); diff != "" {
			t.Errorf("pages differ from the full list (-all +paged):\n%s", diff)
		}
	})

	t.Run("ListInstances", func(t *testing.T) { testListInstances(t, newIndex(t)) })
	t.Run("ListInstancesWhileDeleting", func(t *testing.T) { testListInstancesWhileDeleting(t, newIndex(t)) })

	t.Run("DeleteCascade", func(t *testing.T) {
		x := newIndex(t)
		putAll(t, x, fixture())
		v0, _ := x.StudyVersion(t.Context(), "1.1")
		keys, err := x.Delete(t.Context(), "1.1", "1.1.2", "1.1.2.1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"instances/00/00/1.1.2.1.dcm"}, keys); diff != "" {
			t.Errorf("Delete(instance) keys (-want +got):\n%s", diff)
		}
		if v1, err := x.StudyVersion(t.Context(), "1.1"); err != nil || v1 == v0 {
			t.Errorf("StudyVersion after instance delete = %d, %v (was %d)", v1, err, v0)
		}
		res, _ := x.Search(t.Context(), storage.Query{Level: storage.LevelSeries, StudyInstanceUID: "1.1"})
		if len(res) != 1 || res[0].Series.SeriesInstanceUID != "1.1.1" {
			t.Errorf("series of 1.1 after deleting 1.1.2's only instance: %+v", res)
		}
		if ok, _ := x.HasBlob(t.Context(), "instances/00/00/1.1.2.1.dcm"); ok {
			t.Error("HasBlob(deleted) = true")
		}
		keys, err = x.Delete(t.Context(), "1.1", "1.1.1", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 3 {
			t.Errorf("Delete(series) keys = %v, want 3", keys)
		}
		if _, err := x.StudyVersion(t.Context(), "1.1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("StudyVersion(emptied study) error = %v, want ErrNotFound", err)
		}
		if _, err := x.Delete(t.Context(), "1.1", "", ""); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Delete(gone study) error = %v, want ErrNotFound", err)
		}
		if _, err := x.Delete(t.Context(), "1.2", "", "1.3.1.1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Delete(instance under the wrong study) error = %v, want ErrNotFound", err)
		}
		keys, err = x.Delete(t.Context(), "1.3", "", "")
		if err != nil || len(keys) != 2 {
			t.Errorf("Delete(study 1.3) = %v, %v; want 2 keys", keys, err)
		}
		res, _ = x.Search(t.Context(), storage.Query{Level: storage.LevelStudy})
		if diff := cmp.Diff([]string{"1.2", "1.4"}, studyUIDs(res)); diff != "" {
			t.Errorf("studies left (-want +got):\n%s", diff)
		}
	})

	t.Run("StudyVersion", func(t *testing.T) {
		x := newIndex(t)
		if _, err := x.StudyVersion(t.Context(), "1.9"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("StudyVersion(unknown) error = %v, want ErrNotFound", err)
		}
		putAll(t, x, []*storage.Instance{NewTestInstance("1.9", "1.9.1", "1.9.1.1")})
		v0, err := x.StudyVersion(t.Context(), "1.9")
		if err != nil {
			t.Fatal(err)
		}
		putAll(t, x, []*storage.Instance{NewTestInstance("1.9", "1.9.1", "1.9.1.2")})
		v1, _ := x.StudyVersion(t.Context(), "1.9")
		if v1 == v0 {
			t.Fatal("put did not change the version")
		}
		if _, err := x.Delete(t.Context(), "1.9", "", "1.9.1.2"); err != nil {
			t.Fatal(err)
		}
		if v2, _ := x.StudyVersion(t.Context(), "1.9"); v2 == v1 || v2 == v0 {
			t.Fatalf("delete: version %d -> %d (first %d)", v1, v2, v0)
		}
	})

	t.Run("CachedMetadata", func(t *testing.T) {
		x := newIndex(t)
		ctx := t.Context()
		putAll(t, x, []*storage.Instance{NewTestInstance("1.9", "1.9.1", "1.9.1.1")})
		v0, _ := x.StudyVersion(ctx, "1.9")
		if _, err := x.CachedMetadata(ctx, "1.9", "study", v0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("CachedMetadata(empty) error = %v, want ErrNotFound", err)
		}
		doc := []byte(`[{"00080018":{"vr":"UI","Value":["1.9.1.1"]}}]`)
		if err := x.PutCachedMetadata(ctx, "1.9", "study", v0, doc); err != nil {
			t.Fatal(err)
		}
		got, err := x.CachedMetadata(ctx, "1.9", "study", v0)
		if err != nil || string(got) != string(doc) {
			t.Fatalf("CachedMetadata = %q, %v", got, err)
		}
		if _, err := x.CachedMetadata(ctx, "1.9", "series/1.9.1", v0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CachedMetadata(other key) error = %v, want ErrNotFound", err)
		}
		putAll(t, x, []*storage.Instance{NewTestInstance("1.9", "1.9.1", "1.9.1.2")})
		v1, _ := x.StudyVersion(ctx, "1.9")
		for _, v := range []int64{v0, v1} {
			if _, err := x.CachedMetadata(ctx, "1.9", "study", v); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("CachedMetadata(v%d) after a put error = %v, want ErrNotFound", v, err)
			}
		}
		// A document built from the old version is not kept.
		if err := x.PutCachedMetadata(ctx, "1.9", "study", v0, doc); err != nil {
			t.Fatal(err)
		}
		if _, err := x.CachedMetadata(ctx, "1.9", "study", v0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("stale document served: %v", err)
		}
		doc2 := []byte(`[1,2]`)
		if err := x.PutCachedMetadata(ctx, "1.9", "study", v1, doc2); err != nil {
			t.Fatal(err)
		}
		if got, err := x.CachedMetadata(ctx, "1.9", "study", v1); err != nil || string(got) != string(doc2) {
			t.Errorf("CachedMetadata(v1) = %q, %v", got, err)
		}
	})

	t.Run("ConcurrentSameStudy", func(t *testing.T) {
		x := newIndex(t)
		const workers, each = 8, 4
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					inst := NewTestInstance("3.1", fmt.Sprintf("3.1.%d", w%2), fmt.Sprintf("3.1.%d.%d.%d", w%2, w, i))
					if _, err := x.PutInstance(t.Context(), inst, false); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		res, err := x.Search(t.Context(), storage.Query{Level: storage.LevelStudy})
		if err != nil || len(res) != 1 {
			t.Fatalf("Search = %d studies, %v; want 1", len(res), err)
		}
		if s := res[0].Study; s.NumberOfSeries != 2 || s.NumberOfInstances != workers*each {
			t.Errorf("counts = %d series, %d instances; want 2, %d", s.NumberOfSeries, s.NumberOfInstances, workers*each)
		}
	})

	t.Run("ConcurrentSameInstance", func(t *testing.T) {
		x := newIndex(t)
		const workers = 8
		var (
			wg         sync.WaitGroup
			mu         sync.Mutex
			stored     int
			duplicates int
			errs       []error
		)
		for range workers {
			wg.Go(func() {
				res, err := x.PutInstance(t.Context(), NewTestInstance("4.1", "4.1.1", "4.1.1.1"), false)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case res.Duplicate:
					duplicates++
				default:
					stored++
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 || stored != 1 || duplicates != workers-1 {
			t.Fatalf("stored %d, duplicates %d, errors %v; want 1, %d, none", stored, duplicates, errs, workers-1)
		}
		insts, err := x.Instances(t.Context(), "4.1", "")
		if err != nil || len(insts) != 1 {
			t.Fatalf("Instances = %d, %v; want 1", len(insts), err)
		}
	})
}

// testComputedMaintained checks the computed attributes (counts,
// ModalitiesInStudy, SOPClassesInStudy) through duplicate puts, replaces
// that change the SOP class, and deletes of instances, series and
// studies.
func testComputedMaintained(t *testing.T, x storage.Index) {
	ctx := t.Context()
	type counts struct {
		Series, Instances int
		Modalities        []string
		Classes           []string
		SeriesInstances   map[string]int
	}
	check := func(step string, study string, want *counts) {
		t.Helper()
		res, err := x.Search(ctx, storage.Query{Level: storage.LevelStudy, Matches: []storage.Match{{Tag: storage.TagStudyInstanceUID, Value: study}}})
		if err != nil {
			t.Fatalf("%s: Search: %v", step, err)
		}
		if want == nil {
			if len(res) != 0 {
				t.Errorf("%s: study %s still found", step, study)
			}
			return
		}
		if len(res) != 1 {
			t.Fatalf("%s: Search(%s) = %d results", step, study, len(res))
		}
		s := res[0].Study
		got := counts{Series: s.NumberOfSeries, Instances: s.NumberOfInstances, Modalities: s.ModalitiesInStudy,
			Classes: s.SOPClassesInStudy, SeriesInstances: map[string]int{}}
		series, err := x.Search(ctx, storage.Query{Level: storage.LevelSeries, StudyInstanceUID: study, OmitMetadata: true})
		if err != nil {
			t.Fatalf("%s: Search series: %v", step, err)
		}
		for _, r := range series {
			got.SeriesInstances[r.Series.SeriesInstanceUID] = r.Series.NumberOfInstances
		}
		if diff := cmp.Diff(*want, got); diff != "" {
			t.Errorf("%s: computed attributes (-want +got):\n%s", step, diff)
		}
	}
	put := func(inst *storage.Instance, replace bool) storage.PutResult {
		t.Helper()
		r, err := x.PutInstance(ctx, inst, replace)
		if err != nil {
			t.Fatalf("PutInstance(%s): %v", inst.SOPInstanceUID, err)
		}
		return r
	}
	mk := func(series, sop, modality, class string) *storage.Instance {
		inst := NewTestInstance("5.1", series, sop)
		inst.Series.Modality = modality
		inst.SOPClassUID = class
		return inst
	}
	put(mk("5.1.1", "5.1.1.1", "CT", ctImage), false)
	put(mk("5.1.1", "5.1.1.2", "CT", ctImage), false)
	put(mk("5.1.2", "5.1.2.1", "SR", basicSR), false)
	put(mk("5.1.3", "5.1.3.1", "", mrImage), false) // no modality
	put(NewTestInstance("5.2", "5.2.1", "5.2.1.1"), false)
	check("put", "5.1", &counts{3, 4, []string{"CT", "SR"}, []string{ctImage, mrImage, basicSR},
		map[string]int{"5.1.1": 2, "5.1.2": 1, "5.1.3": 1}})

	if r := put(mk("5.1.1", "5.1.1.2", "CT", ctImage), false); !r.Duplicate {
		t.Fatalf("second put not a duplicate: %+v", r)
	}
	check("duplicate", "5.1", &counts{3, 4, []string{"CT", "SR"}, []string{ctImage, mrImage, basicSR},
		map[string]int{"5.1.1": 2, "5.1.2": 1, "5.1.3": 1}})

	// Replace the only MR-class instance with a PT-class one.
	rep := mk("5.1.3", "5.1.3.1", "", ptImage)
	rep.SHA256 = strings.Repeat("e", 64)
	rep.BlobKey = "instances/00/00/5.1.3.1-v2.dcm"
	put(rep, true)
	check("replace", "5.1", &counts{3, 4, []string{"CT", "SR"}, []string{ptImage, ctImage, basicSR},
		map[string]int{"5.1.1": 2, "5.1.2": 1, "5.1.3": 1}})

	if _, err := x.Delete(ctx, "5.1", "5.1.1", "5.1.1.1"); err != nil {
		t.Fatal(err)
	}
	check("delete instance", "5.1", &counts{3, 3, []string{"CT", "SR"}, []string{ptImage, ctImage, basicSR},
		map[string]int{"5.1.1": 1, "5.1.2": 1, "5.1.3": 1}})

	if _, err := x.Delete(ctx, "5.1", "5.1.2", ""); err != nil {
		t.Fatal(err)
	}
	check("delete series", "5.1", &counts{2, 2, []string{"CT"}, []string{ptImage, ctImage},
		map[string]int{"5.1.1": 1, "5.1.3": 1}})

	if _, err := x.Delete(ctx, "5.1", "5.1.1", "5.1.1.2"); err != nil { // the series' last instance
		t.Fatal(err)
	}
	check("delete last instance of a series", "5.1", &counts{1, 1, nil, []string{ptImage},
		map[string]int{"5.1.3": 1}})

	// A new series and instance after deletes count from there.
	put(mk("5.1.1", "5.1.1.3", "MR", mrImage), false)
	check("put after delete", "5.1", &counts{2, 2, []string{"MR"}, []string{ptImage, mrImage},
		map[string]int{"5.1.1": 1, "5.1.3": 1}})

	if _, err := x.Delete(ctx, "5.1", "", ""); err != nil {
		t.Fatal(err)
	}
	check("delete study", "5.1", nil)
	check("other study untouched", "5.2", &counts{1, 1, []string{"CT"}, []string{ctImage}, map[string]int{"5.2.1": 1}})
}

func sopUIDs(insts []*storage.Instance) []string {
	var out []string
	for _, i := range insts {
		out = append(out, i.SOPInstanceUID)
	}
	return out
}

func studyUIDs(res []storage.Result) []string {
	var out []string
	for _, r := range res {
		out = append(out, r.Study.StudyInstanceUID)
	}
	return out
}

// resultUIDs returns the UIDs of the results at the query's level.
func resultUIDs(level storage.Level, res []storage.Result) []string {
	out := []string{}
	for _, r := range res {
		switch level {
		case storage.LevelStudy:
			out = append(out, r.Study.StudyInstanceUID)
		case storage.LevelSeries:
			out = append(out, r.Series.SeriesInstanceUID)
		default:
			out = append(out, r.Instance.SOPInstanceUID)
		}
	}
	return out
}

func testSearch(t *testing.T, x storage.Index) {
	putAll(t, x, fixture())
	m := func(tag dcm.Tag, v string) storage.Match { return storage.Match{Tag: tag, Value: v} }
	type tc struct {
		name    string
		q       storage.Query
		want    []string
		wantErr error
	}
	study := func(name string, fuzzy bool, want []string, ms ...storage.Match) tc {
		return tc{name: name, q: storage.Query{Level: storage.LevelStudy, Matches: ms, FuzzyMatching: fuzzy}, want: want}
	}
	bad := func(name string, level storage.Level, err error, ms ...storage.Match) tc {
		return tc{name: name, q: storage.Query{Level: level, Matches: ms}, wantErr: err}
	}
	for _, c := range []tc{
		study("all", false, []string{"1.3", "1.2", "1.1", "1.4"}),
		study("universal", false, []string{"1.3", "1.2", "1.1", "1.4"}, m(storage.TagPatientName, ""), m(storage.TagStudyDate, "")),
		study("lone star", false, []string{"1.3", "1.2", "1.1", "1.4"}, m(storage.TagAccessionNumber, "*")),
		// PN: case-insensitive.
		study("PN single", false, []string{"1.1"}, m(storage.TagPatientName, "Doe^John")),
		study("PN case", false, []string{"1.1"}, m(storage.TagPatientName, "doe^JOHN")),
		study("PN single is not a prefix", false, []string{}, m(storage.TagPatientName, "Doe")),
		study("PN star", false, []string{"1.2", "1.1", "1.4"}, m(storage.TagPatientName, "doe*")),
		study("PN question mark", false, []string{"1.1"}, m(storage.TagPatientName, "DOE^J?HN")),
		study("PN unicode case", false, []string{"1.3"}, m(storage.TagPatientName, "müller^jürgen karl")),
		study("PN unicode star", false, []string{"1.3"}, m(storage.TagPatientName, "MÜLL*")),
		study("referring PN", false, []string{"1.1"}, m(storage.TagReferringPhysicianName, "smith^anna")),
		// Fuzzy: each word starts a name component.
		study("fuzzy given", true, []string{"1.1", "1.4"}, m(storage.TagPatientName, "jo")),
		study("fuzzy family", true, []string{"1.2", "1.1", "1.4"}, m(storage.TagPatientName, "doe")),
		study("fuzzy middle", true, []string{"1.3"}, m(storage.TagPatientName, "karl")),
		study("fuzzy two words", true, []string{"1.1"}, m(storage.TagPatientName, "john doe")),
		study("fuzzy not a prefix", true, []string{}, m(storage.TagPatientName, "ohn")),
		study("fuzzy unicode", true, []string{"1.3"}, m(storage.TagPatientName, "jür")),
		// Other strings: case-sensitive.
		study("LO single", false, []string{"1.1"}, m(storage.TagPatientID, "P1")),
		study("LO star", false, []string{"1.3"}, m(storage.TagPatientID, "p*")),
		study("LO question", false, []string{"1.2", "1.1", "1.4"}, m(storage.TagPatientID, "P?")),
		study("SH single", false, []string{"1.1"}, m(storage.TagAccessionNumber, "ACC1")),
		study("description star", false, []string{"1.1"}, m(storage.TagStudyDescription, "CT*")),
		study("bracket literal", false, []string{"1.1"}, m(storage.TagStudyDescription, "*[contrast]")),
		study("percent literal", false, []string{}, m(storage.TagStudyDescription, "%")),
		study("underscore literal", false, []string{}, m(storage.TagStudyDescription, "MR_Brain")),
		study("CS", false, []string{"1.2"}, m(storage.TagPatientSex, "F")),
		study("several keys", false, []string{"1.1"}, m(storage.TagPatientSex, "M"), m(storage.TagPatientID, "P1")),
		study("issuer", false, []string{"1.1"}, m(storage.TagIssuerOfPatientID, "HOSP")),
		study("birth date", false, []string{"1.1"}, m(storage.TagPatientBirthDate, "19700101")),
		study("study id", false, []string{"1.1"}, m(storage.TagStudyID, "S1")),
		// UIDs: single and lists in both forms.
		study("UID", false, []string{"1.2"}, m(storage.TagStudyInstanceUID, "1.2")),
		study("UID list comma", false, []string{"1.3", "1.1"}, m(storage.TagStudyInstanceUID, "1.1,1.3")),
		study("UID list backslash", false, []string{"1.2", "1.1"}, m(storage.TagStudyInstanceUID, `1.1\1.2`)),
		// Dates and times.
		study("DA single", false, []string{"1.1"}, m(storage.TagStudyDate, "20200115")),
		study("DA range", false, []string{"1.2", "1.1"}, m(storage.TagStudyDate, "20200101-20201231")),
		study("DA open start", false, []string{"1.2", "1.1"}, m(storage.TagStudyDate, "-20201231")),
		study("DA open end", false, []string{"1.3", "1.2"}, m(storage.TagStudyDate, "20201231-")),
		study("TM range partial", false, []string{"1.3", "1.1"}, m(storage.TagStudyTime, "0800-1159")),
		study("TM upper bound includes its minute", false, []string{"1.3", "1.2", "1.1"}, m(storage.TagStudyTime, "0800-1200")),
		study("TM open end", false, []string{"1.2"}, m(storage.TagStudyTime, "1200-")),
		study("TM single partial", false, []string{"1.1"}, m(storage.TagStudyTime, "0830")),
		study("date and time independent", false, []string{"1.1"}, m(storage.TagStudyDate, "20200101-20201231"), m(storage.TagStudyTime, "-1000")),
		// ModalitiesInStudy: any series.
		study("modalities single", false, []string{"1.3", "1.1"}, m(storage.TagModalitiesInStudy, "CT")),
		study("modalities PT", false, []string{"1.3"}, m(storage.TagModalitiesInStudy, "PT")),
		study("modalities list comma", false, []string{"1.2", "1.1"}, m(storage.TagModalitiesInStudy, "MR,SR")),
		study("modalities list backslash", false, []string{"1.1", "1.4"}, m(storage.TagModalitiesInStudy, `SR\OT`)),
		// Limits and scope.
		{name: "limit", q: storage.Query{Level: storage.LevelStudy, Limit: 2}, want: []string{"1.3", "1.2"}},
		{name: "offset", q: storage.Query{Level: storage.LevelStudy, Limit: 2, Offset: 2}, want: []string{"1.1", "1.4"}},
		{name: "offset past end", q: storage.Query{Level: storage.LevelStudy, Offset: 10}, want: []string{}},
		{name: "study path", q: storage.Query{Level: storage.LevelStudy, StudyInstanceUID: "1.2"}, want: []string{"1.2"}},

		// Series level.
		{name: "series all, numeric order", q: storage.Query{Level: storage.LevelSeries, StudyInstanceUID: "1.1"}, want: []string{"1.1.1", "1.1.2"}},
		{name: "series modality across studies", q: storage.Query{Level: storage.LevelSeries, Matches: []storage.Match{m(storage.TagModality, "CT")}}, want: []string{"1.3.1", "1.1.1"}},
		{name: "series modality in study", q: storage.Query{Level: storage.LevelSeries, StudyInstanceUID: "1.1", Matches: []storage.Match{m(storage.TagModality, "SR")}}, want: []string{"1.1.2"}},
		{name: "series by patient", q: storage.Query{Level: storage.LevelSeries, Matches: []storage.Match{m(storage.TagPatientName, "doe^jane")}}, want: []string{"1.2.1"}},
		{name: "series number", q: storage.Query{Level: storage.LevelSeries, Matches: []storage.Match{m(storage.TagSeriesNumber, "10")}}, want: []string{"1.1.2"}},
		{name: "series UID list", q: storage.Query{Level: storage.LevelSeries, Matches: []storage.Match{m(storage.TagSeriesInstanceUID, "1.2.1,1.4.1")}}, want: []string{"1.2.1", "1.4.1"}},
		{name: "series description", q: storage.Query{Level: storage.LevelSeries, Matches: []storage.Match{m(storage.TagSeriesDescription, "Ax*")}}, want: []string{"1.1.1"}},
		{name: "series body part", q: storage.Query{Level: storage.LevelSeries, Matches: []storage.Match{m(storage.TagBodyPartExamined, "CHEST")}}, want: []string{"1.1.1"}},
		{name: "series path other study", q: storage.Query{Level: storage.LevelSeries, StudyInstanceUID: "1.2", SeriesInstanceUID: "1.1.1"}, want: []string{}},

		// Instance level.
		{name: "instances of series, numeric order", q: storage.Query{Level: storage.LevelInstance, StudyInstanceUID: "1.1", SeriesInstanceUID: "1.1.1"}, want: []string{"1.1.1.3", "1.1.1.2", "1.1.1.1"}},
		{name: "instance SOP class", q: storage.Query{Level: storage.LevelInstance, Matches: []storage.Match{m(storage.TagSOPClassUID, basicSR)}}, want: []string{"1.1.2.1"}},
		{name: "instance number", q: storage.Query{Level: storage.LevelInstance, StudyInstanceUID: "1.1", Matches: []storage.Match{m(storage.TagInstanceNumber, "2")}}, want: []string{"1.1.1.2"}},
		{name: "instance SOP list", q: storage.Query{Level: storage.LevelInstance, Matches: []storage.Match{m(storage.TagSOPInstanceUID, "1.1.1.1,1.2.1.1")}}, want: []string{"1.2.1.1", "1.1.1.1"}},
		{name: "instance by patient", q: storage.Query{Level: storage.LevelInstance, Matches: []storage.Match{m(storage.TagPatientID, "P2")}}, want: []string{"1.2.1.1"}},
		{name: "instance by series attr", q: storage.Query{Level: storage.LevelInstance, Matches: []storage.Match{m(storage.TagModality, "PT")}}, want: []string{"1.3.2.1"}},

		// Errors.
		bad("instance key at study level", storage.LevelStudy, storage.ErrUnsupportedMatch, m(storage.TagSOPClassUID, ctImage)),
		bad("series key at study level", storage.LevelStudy, storage.ErrUnsupportedMatch, m(storage.TagModality, "CT")),
		bad("unknown key", storage.LevelInstance, storage.ErrUnsupportedMatch, m(dcm.Tag(0x00091001), "x")),
		bad("bad date", storage.LevelStudy, storage.ErrBadQuery, m(storage.TagStudyDate, "2020-01")),
		bad("reversed range", storage.LevelStudy, storage.ErrBadQuery, m(storage.TagStudyDate, "20210101-20200101")),
		bad("empty range", storage.LevelStudy, storage.ErrBadQuery, m(storage.TagStudyDate, "-")),
		bad("bad time", storage.LevelStudy, storage.ErrBadQuery, m(storage.TagStudyTime, "8am-9am")),
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := x.Search(t.Context(), c.q)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Search error = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, resultUIDs(c.q.Level, res)); diff != "" {
				t.Errorf("Search mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// fuzzySearch runs a fuzzy PatientName search at level (and extra
// matching keys) and returns the result UIDs.
func fuzzySearch(t *testing.T, x storage.Index, q storage.Query, name string) []string {
	t.Helper()
	q.FuzzyMatching = true
	q.Matches = append([]storage.Match{{Tag: storage.TagPatientName, Value: name}}, q.Matches...)
	res, err := x.Search(t.Context(), q)
	if err != nil {
		t.Fatalf("Search(fuzzy %q): %v", name, err)
	}
	return resultUIDs(q.Level, res)
}

// testFuzzyName covers fuzzy PatientName edge cases: several words,
// words matching the same or several components of one name, accents
// and case, separators, paging, other keys beside it, and the series
// and instance levels. The cases are chosen so that the phonetic keys
// (testFuzzyPhonetic) change nothing.
func testFuzzyName(t *testing.T, x storage.Index) {
	study := func(uid, name, date string) *storage.Instance {
		inst := NewTestInstance(uid, uid+".1", uid+".1.1")
		inst.Study.PatientName, inst.Study.StudyDate, inst.Study.StudyTime = name, date, "120000"
		inst.Study.PatientSex = "F"
		if strings.HasSuffix(uid, "1") {
			inst.Study.PatientSex = "M"
		}
		return inst
	}
	putAll(t, x, []*storage.Instance{
		study("2.1", "Smith^Smithers", "20200101"),    // two components start with SMI
		study("2.2", "SMITH^JANE^^DR", "20200102"),    // empty component
		study("2.3", "Östlund^Åsa Maria", "20200103"), // accents, space inside a component
		study("2.4", "Jones, Bob", "20200104"),        // comma between components
		study("2.5", "Smithson^John=スミス^ジョン", "20200105"),
		study("2.6", "", "20200106"),
	})
	for _, c := range []struct {
		name  string
		query string
		q     storage.Query
		want  []string
	}{
		{"one study once for two matching components", "smi", storage.Query{}, []string{"2.5", "2.2", "2.1"}},
		{"whole word", "smithers", storage.Query{}, []string{"2.1"}},
		{"two words, same component", "smi smith", storage.Query{}, []string{"2.5", "2.2", "2.1"}},
		{"two words, two components", "smith jane", storage.Query{}, []string{"2.2"}},
		{"word order does not matter", "jane smith", storage.Query{}, []string{"2.2"}},
		{"repeated word", "jane jane", storage.Query{}, []string{"2.2"}},
		{"one word matches nothing", "smith nobody", storage.Query{}, []string{}},
		{"separators in the query", "SMITH^J", storage.Query{}, []string{"2.5", "2.2"}},
		{"suffix component", "dr", storage.Query{}, []string{"2.2"}},
		{"not inside a component", "mith", storage.Query{}, []string{}},
		{"accented, lower case", "östl", storage.Query{}, []string{"2.3"}},
		{"accented, upper case", "ÅSA", storage.Query{}, []string{"2.3"}},
		{"space inside a component", "maria åsa", storage.Query{}, []string{"2.3"}},
		{"accents are not folded", "ost", storage.Query{}, []string{}},
		{"comma separates components", "bob", storage.Query{}, []string{"2.4"}},
		{"comma, family name", "jones", storage.Query{}, []string{"2.4"}},
		{"ideographic representation", "スミ", storage.Query{}, []string{"2.5"}},
		{"with another key", "smi", storage.Query{Matches: []storage.Match{{Tag: storage.TagPatientSex, Value: "M"}}}, []string{"2.1"}},
		{"with a date range", "smi", storage.Query{Matches: []storage.Match{{Tag: storage.TagStudyDate, Value: "20200102-20200104"}}}, []string{"2.2"}},
		{"with the study path", "smith", storage.Query{StudyInstanceUID: "2.2"}, []string{"2.2"}},
		{"limit", "smi", storage.Query{Limit: 2}, []string{"2.5", "2.2"}},
		{"offset", "smi", storage.Query{Limit: 2, Offset: 1}, []string{"2.2", "2.1"}},
		{"offset past the matches", "smi", storage.Query{Offset: 3}, []string{}},
		{"series level", "smi", storage.Query{Level: storage.LevelSeries}, []string{"2.1.1", "2.2.1", "2.5.1"}},
		{"instance level, two words", "smith jane", storage.Query{Level: storage.LevelInstance}, []string{"2.2.1.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			if q.Level == 0 {
				q.Level = storage.LevelStudy
			}
			got := fuzzySearch(t, x, q, c.query)
			if q.Level == storage.LevelSeries {
				slices.Sort(got) // series order: by number, then insertion
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("fuzzy %q mismatch (-want +got):\n%s", c.query, diff)
			}
		})
	}
}

// testFuzzyNameMaintained checks that fuzzy PatientName matching follows
// puts, replaces and deletes: a study's name is its first instance's, a
// deleted study is not found, and a study created again under the same
// UID is found by its new name only.
func testFuzzyNameMaintained(t *testing.T, x storage.Index) {
	ctx := t.Context()
	find := func(name string, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		if diff := cmp.Diff(want, fuzzySearch(t, x, storage.Query{Level: storage.LevelStudy}, name)); diff != "" {
			t.Errorf("fuzzy %q mismatch (-want +got):\n%s", name, diff)
		}
	}
	a := NewTestInstance("3.1", "3.1.1", "3.1.1.1")
	a.Study.PatientName = "Walker^Anne"
	b := NewTestInstance("3.1", "3.1.2", "3.1.2.1")
	b.Study.PatientName = "Other^Name" // not the first instance: the study keeps its name
	putAll(t, x, []*storage.Instance{a, b})
	find("walk ann", "3.1")
	find("other")

	// Replacing an instance (even the first) keeps the study's name.
	r := NewTestInstance("3.1", "3.1.1", "3.1.1.1")
	r.Study.PatientName = "Replaced^Person"
	r.SHA256, r.BlobKey = strings.Repeat("e", 64), "blob-replaced"
	if _, err := x.PutInstance(ctx, r, true); err != nil {
		t.Fatal(err)
	}
	find("walker", "3.1")
	find("replaced")

	// Deleting one instance keeps the study and its name.
	if _, err := x.Delete(ctx, "3.1", "3.1.2", "3.1.2.1"); err != nil {
		t.Fatal(err)
	}
	find("anne", "3.1")

	// Deleting the last instance deletes the study and its words: an
	// older study of the same name fills a page of one.
	older := NewTestInstance("3.2", "3.2.1", "3.2.1.1")
	older.Study.PatientName, older.Study.StudyDate = "Walker^Older", "20100101"
	putAll(t, x, []*storage.Instance{older})
	if _, err := x.Delete(ctx, "3.1", "", ""); err != nil {
		t.Fatal(err)
	}
	find("anne")
	if diff := cmp.Diff([]string{"3.2"}, fuzzySearch(t, x, storage.Query{Level: storage.LevelStudy, Limit: 1}, "walker")); diff != "" {
		t.Errorf("fuzzy walker, limit 1, after delete (-want +got):\n%s", diff)
	}
	if _, err := x.Delete(ctx, "3.2", "", ""); err != nil {
		t.Fatal(err)
	}
	find("walker")

	// The same study UID stored again, under another name.
	c := NewTestInstance("3.1", "3.1.3", "3.1.3.1")
	c.Study.PatientName = "Newman^Walt"
	putAll(t, x, []*storage.Instance{c})
	find("walker")
	find("walt", "3.1")
	find("newman walt", "3.1")
}

// listAll walks x with ListInstances in pages of limit and returns the
// SOP Instance UIDs in the order visited; between pages it calls
// between with the UIDs seen so far.
func listAll(t *testing.T, x storage.Index, limit int, between func(seen []string)) []string {
	t.Helper()
	var seen []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("ListInstances: no end after %d pages (after %q)", pages, after)
		}
		page, err := x.ListInstances(t.Context(), after, limit)
		if err != nil {
			t.Fatalf("ListInstances(%q, %d): %v", after, limit, err)
		}
		if len(page) > max(limit, 0) && limit > 0 {
			t.Fatalf("ListInstances(%q, %d) = %d instances", after, limit, len(page))
		}
		if len(page) == 0 {
			return seen
		}
		for _, in := range page {
			seen = append(seen, in.SOPInstanceUID)
		}
		after = page[len(page)-1].SOPInstanceUID
		if between != nil {
			between(seen)
		}
	}
}

// testListInstances: the walk visits every instance once, in byte order
// of the SOP Instance UID ("1.10" before "1.9"), across studies and
// series, with the fields Verify needs.
func testListInstances(t *testing.T, x storage.Index) {
	if got := listAll(t, x, 3, nil); len(got) != 0 {
		t.Fatalf("walk of an empty index = %v", got)
	}
	var want []string
	var insts []*storage.Instance
	for i := range 23 {
		study := fmt.Sprintf("8.%d", i%3)
		series := fmt.Sprintf("%s.%d", study, i%2)
		inst := NewTestInstance(study, series, fmt.Sprintf("%s.%d", series, 100-3*i)) // UIDs not in put order
		insts = append(insts, inst)
		want = append(want, inst.SOPInstanceUID)
	}
	putAll(t, x, insts)
	slices.Sort(want) // byte order
	for _, limit := range []int{1, 4, 23, 100, 0} {
		if diff := cmp.Diff(want, listAll(t, x, limit, nil)); diff != "" {
			t.Errorf("walk in pages of %d (-want +got):\n%s", limit, diff)
		}
	}
	page, err := x.ListInstances(t.Context(), "", 0)
	if err != nil || len(page) != len(insts) {
		t.Fatalf("ListInstances(\"\", 0) = %d instances, %v", len(page), err)
	}
	byUID := map[string]*storage.Instance{}
	for _, in := range insts {
		byUID[in.SOPInstanceUID] = in
	}
	for _, got := range page {
		w := byUID[got.SOPInstanceUID]
		if got.StudyInstanceUID != w.StudyInstanceUID || got.SeriesInstanceUID != w.SeriesInstanceUID ||
			got.SOPClassUID != w.SOPClassUID || got.TransferSyntaxUID != w.TransferSyntaxUID ||
			got.BlobKey != w.BlobKey || got.Size != w.Size || got.SHA256 != w.SHA256 || !got.Created.Equal(w.Created) {
			t.Errorf("ListInstances row %+v\ndoes not match the put %+v", got, w)
		}
	}
	if page, err := x.ListInstances(t.Context(), want[len(want)-1], 10); err != nil || len(page) != 0 {
		t.Errorf("ListInstances(after the last) = %d instances, %v; want none", len(page), err)
	}
}

// testListInstancesWhileDeleting: instances deleted during a walk, the
// ones already visited (which shift an OFFSET walk forward by one and
// make it skip an instance) and the ones not visited yet, never make the
// walk skip or repeat another instance; an instance stored meanwhile
// after the walk's position is visited.
func testListInstancesWhileDeleting(t *testing.T, x storage.Index) {
	ctx := t.Context()
	var insts []*storage.Instance
	for i := range 30 {
		insts = append(insts, NewTestInstance("9.1", fmt.Sprintf("9.1.%d", i%3), fmt.Sprintf("9.1.%d.%02d", i%3, i)))
	}
	putAll(t, x, insts)
	all := make([]string, len(insts))
	for i, in := range insts {
		all[i] = in.SOPInstanceUID
	}
	slices.Sort(all)
	deleted := map[string]bool{}
	del := func(sop string) {
		for _, in := range insts {
			if in.SOPInstanceUID == sop {
				if _, err := x.Delete(ctx, "", "", sop); err != nil {
					t.Fatalf("Delete(%s): %v", sop, err)
				}
				deleted[sop] = true
				return
			}
		}
	}
	added := NewTestInstance("9.1", "9.1.0", "9.1.9.99") // sorts last
	got := listAll(t, x, 4, func(seen []string) {
		switch len(seen) {
		case 4: // two visited ones (an OFFSET walk would now skip two)
			del(seen[0])
			del(seen[2])
		case 8: // one visited, the next unvisited, one far ahead
			del(seen[7])
			del(all[8])
			del(all[20])
		case 12:
			putAll(t, x, []*storage.Instance{added})
		}
	})
	var want []string
	for _, sop := range all {
		if !deleted[sop] || slices.Index(all, sop) < 8 {
			want = append(want, sop) // visited before its delete, or never deleted
		}
	}
	want = append(want, added.SOPInstanceUID)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walk while deleting (-want +got):\n%s", diff)
	}
}

// testFuzzyPhonetic: a fuzzy query word also matches a name component
// with the same storage.PhoneticKey, on every backend alike (the rule is
// storage/phonetic.go's): for PatientName at the study level (alone and
// with other keys), the series and instance levels, with paging, and for
// ReferringPhysicianName. A study whose components match both by prefix
// and by key is found once.
func testFuzzyPhonetic(t *testing.T, x storage.Index) {
	ctx := t.Context()
	names := []struct{ uid, name, referring, date string }{
		{"5.1", "Smith^John", "Meyer^Karl", "20200101"},
		{"5.2", "SMITH^JANE", "", "20200102"},
		{"5.3", "SMYTH^J", "Schmitt^Anna", "20200103"},
		{"5.4", "Smithers^Al", "", "20200104"},
		{"5.5", "Meier^Karl", "Smythe^Jon", "20200105"},
		{"5.6", "Doe^Jon", "", "20200106"},
		{"5.7", "Smith^Smyth", "", "20200107"}, // SMITH: prefix and key on two components
		{"5.8", "Philipp^Müller", "", "20200108"},
	}
	for _, n := range names {
		inst := NewTestInstance(n.uid, n.uid+".1", n.uid+".1.1")
		inst.Study.PatientName, inst.Study.ReferringPhysicianName, inst.Study.StudyDate = n.name, n.referring, n.date
		inst.Study.PatientSex = "F"
		if n.uid == "5.3" || n.uid == "5.5" {
			inst.Study.PatientSex = "M"
		}
		if _, err := x.PutInstance(ctx, inst, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, query string
		q           storage.Query
		want        []string
	}{
		{"prefix and key", "smith", storage.Query{}, []string{"5.7", "5.4", "5.3", "5.2", "5.1"}},
		{"key finds the other spelling", "smyth", storage.Query{}, []string{"5.7", "5.3", "5.2", "5.1"}},
		{"key of a query word with a final E", "smythe john", storage.Query{}, []string{"5.1"}},
		{"ei/ai/ey", "mayer", storage.Query{}, []string{"5.5"}},
		{"c/k", "carl", storage.Query{}, []string{"5.5"}},
		{"ph/f, double letters", "filip", storage.Query{}, []string{"5.8"}},
		{"JOHN is not JON", "john", storage.Query{}, []string{"5.1"}},
		{"prefix only for a short word", "jo", storage.Query{}, []string{"5.6", "5.1"}},
		{"not inside a component", "mith", storage.Query{}, []string{}},
		{"with another key", "smyth", storage.Query{Matches: []storage.Match{{Tag: storage.TagPatientSex, Value: "F"}}}, []string{"5.7", "5.2", "5.1"}},
		{"limit", "smyth", storage.Query{Limit: 2}, []string{"5.7", "5.3"}},
		{"offset", "smyth", storage.Query{Limit: 2, Offset: 2}, []string{"5.2", "5.1"}},
		{"series level", "smyth", storage.Query{Level: storage.LevelSeries}, []string{"5.1.1", "5.2.1", "5.3.1", "5.7.1"}},
		{"instance level", "mayer karl", storage.Query{Level: storage.LevelInstance}, []string{"5.5.1.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			if q.Level == 0 {
				q.Level = storage.LevelStudy
			}
			got := fuzzySearch(t, x, q, c.query)
			if q.Level != storage.LevelStudy {
				slices.Sort(got)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("fuzzy %q mismatch (-want +got):\n%s", c.query, diff)
			}
		})
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"maier", []string{"5.1"}},       // MEYER
		{"schmidt ann", []string{"5.3"}}, // SCHMITT, prefix of ANNA
		{"smith", []string{"5.5"}},       // SMYTHE
		{"jon", []string{"5.5"}},
		{"john", []string{}},
	} {
		res, err := x.Search(ctx, storage.Query{Level: storage.LevelStudy, FuzzyMatching: true,
			Matches: []storage.Match{{Tag: storage.TagReferringPhysicianName, Value: c.query}}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.want, resultUIDs(storage.LevelStudy, res)); diff != "" {
			t.Errorf("fuzzy ReferringPhysicianName %q mismatch (-want +got):\n%s", c.query, diff)
		}
	}
}

// testSearchEdges covers what the SQL dialects spell differently: IS
// attributes compared as integers (a CAST of the text or an integer
// column), LIKE's and GLOB's special characters as literals in values,
// the order of equal sort keys (insertion order) and pages over them.
func testSearchEdges(t *testing.T, x storage.Index) {
	var insts []*storage.Instance
	add := func(study, series, sop string, edit func(*storage.Instance)) {
		inst := NewTestInstance(study, series, sop)
		edit(inst)
		insts = append(insts, inst)
	}
	// Study 3.1: series numbered "007", "10", "2", "" (and instance
	// numbers alike); studies 3.2 to 3.6: IDs and names with _ % [ in
	// them, all on one date and time (equal sort keys).
	for i, n := range []string{"007", "10", "2", ""} {
		series := fmt.Sprintf("3.1.%d", i+1)
		add("3.1", series, series+".1", func(inst *storage.Instance) {
			inst.Study = storage.StudyAttrs{PatientName: "Num^Bers", PatientID: "N1", StudyDate: "20230101", StudyTime: "100000"}
			inst.Series = storage.SeriesAttrs{Modality: "CT", SeriesNumber: n}
			inst.Instance.InstanceNumber = n
		})
	}
	for i, st := range []struct{ id, name, ref string }{
		{"A_1", "O_Neil^Pat", "O_Neil^Pat"},
		{"AB1", "OXNeil^Pat", "OXNeil^Pat"},
		{"A%1", "Le%Roy^Al", ""},
		{"A[B]1", "Lex^Al", ""},
		{"AC1", "Lo^Al", ""},
	} {
		study := fmt.Sprintf("3.%d", i+2)
		add(study, study+".1", study+".1.1", func(inst *storage.Instance) {
			inst.Study = storage.StudyAttrs{PatientName: st.name, PatientID: st.id, ReferringPhysicianName: st.ref,
				StudyDate: "20220101", StudyTime: "090000"}
			inst.Series = storage.SeriesAttrs{Modality: "MR", SeriesNumber: "1"}
			inst.Instance.InstanceNumber = "1"
		})
	}
	putAll(t, x, insts)

	m := func(tag dcm.Tag, v string) []storage.Match { return []storage.Match{{Tag: tag, Value: v}} }
	for _, c := range []struct {
		name string
		q    storage.Query
		want []string
	}{
		// IS: integers, so "7" finds "007"; the empty number is no 0 and
		// sorts last.
		{"IS leading zeros", storage.Query{Level: storage.LevelSeries, Matches: m(storage.TagSeriesNumber, "7")}, []string{"3.1.1"}},
		{"IS list", storage.Query{Level: storage.LevelSeries, Matches: m(storage.TagSeriesNumber, "2,7")}, []string{"3.1.3", "3.1.1"}},
		{"IS zero is not empty", storage.Query{Level: storage.LevelSeries, Matches: m(storage.TagSeriesNumber, "0")}, []string{}},
		{"IS order", storage.Query{Level: storage.LevelSeries, StudyInstanceUID: "3.1"}, []string{"3.1.3", "3.1.1", "3.1.2", "3.1.4"}},
		{"IS instance number", storage.Query{Level: storage.LevelInstance, Matches: m(storage.TagInstanceNumber, "007")}, []string{"3.1.1.1"}},
		{"IS instance list", storage.Query{Level: storage.LevelInstance, StudyInstanceUID: "3.1", Matches: m(storage.TagInstanceNumber, `10\2`)}, []string{"3.1.3.1", "3.1.2.1"}},
		{"IS instance order", storage.Query{Level: storage.LevelInstance, StudyInstanceUID: "3.1"}, []string{"3.1.3.1", "3.1.1.1", "3.1.2.1", "3.1.4.1"}},
		// Special characters of LIKE and GLOB are literals in values and
		// in the literal parts of patterns.
		{"underscore single", storage.Query{Level: storage.LevelStudy, Matches: m(storage.TagPatientID, "A_1")}, []string{"3.2"}},
		{"underscore pattern", storage.Query{Level: storage.LevelStudy, Matches: m(storage.TagPatientID, "A_*")}, []string{"3.2"}},
		{"percent pattern", storage.Query{Level: storage.LevelStudy, Matches: m(storage.TagPatientID, "*%*")}, []string{"3.4"}},
		{"bracket pattern", storage.Query{Level: storage.LevelStudy, Matches: m(storage.TagPatientID, "A[*")}, []string{"3.5"}},
		{"question mark is one character", storage.Query{Level: storage.LevelStudy, Matches: m(storage.TagPatientID, "A?1")}, []string{"3.2", "3.3", "3.4", "3.6"}},
		{"PN underscore pattern", storage.Query{Level: storage.LevelStudy, Matches: m(storage.TagPatientName, "o_n*")}, []string{"3.2"}},
		{"fuzzy underscore", storage.Query{Level: storage.LevelStudy, FuzzyMatching: true, Matches: m(storage.TagPatientName, "o_n")}, []string{"3.2"}},
		{"fuzzy percent", storage.Query{Level: storage.LevelStudy, FuzzyMatching: true, Matches: m(storage.TagPatientName, "le%")}, []string{"3.4"}},
		{"fuzzy referring underscore", storage.Query{Level: storage.LevelStudy, FuzzyMatching: true, Matches: m(storage.TagReferringPhysicianName, "o_n")}, []string{"3.2"}},
		{"fuzzy at series level", storage.Query{Level: storage.LevelSeries, FuzzyMatching: true, Matches: m(storage.TagPatientName, "o_n")}, []string{"3.2.1"}},
		// Equal sort keys: insertion order, at every level.
		{"equal study keys", storage.Query{Level: storage.LevelStudy, Matches: m(storage.TagStudyDate, "20220101")}, []string{"3.2", "3.3", "3.4", "3.5", "3.6"}},
		{"equal series keys", storage.Query{Level: storage.LevelSeries, Matches: m(storage.TagModality, "MR")}, []string{"3.2.1", "3.3.1", "3.4.1", "3.5.1", "3.6.1"}},
		{"equal instance keys", storage.Query{Level: storage.LevelInstance, Matches: m(storage.TagModality, "MR")}, []string{"3.2.1.1", "3.3.1.1", "3.4.1.1", "3.5.1.1", "3.6.1.1"}},
		// Pages: a negative offset is none, a limit cuts at every level.
		{"negative offset", storage.Query{Level: storage.LevelStudy, Offset: -5, Limit: 2}, []string{"3.1", "3.2"}},
		{"series page", storage.Query{Level: storage.LevelSeries, Matches: m(storage.TagModality, "MR"), Limit: 2, Offset: 2}, []string{"3.4.1", "3.5.1"}},
		{"instance page", storage.Query{Level: storage.LevelInstance, StudyInstanceUID: "3.1", Limit: 2, Offset: 3}, []string{"3.1.4.1"}},
		{"fuzzy page", storage.Query{Level: storage.LevelStudy, FuzzyMatching: true, Matches: m(storage.TagPatientName, "pat"), Limit: 1, Offset: 1}, []string{"3.3"}},
		{"limit above the cap", storage.Query{Level: storage.LevelStudy, Limit: 1 << 30}, []string{"3.1", "3.2", "3.3", "3.4", "3.5", "3.6"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := x.Search(t.Context(), c.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, resultUIDs(c.q.Level, res)); diff != "" {
				t.Errorf("Search mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
