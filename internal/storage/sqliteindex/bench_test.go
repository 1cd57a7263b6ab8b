package sqliteindex_test

import (
	"fmt"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

// BenchmarkSearchStudies: 10,000 instances in 1,000 studies of 2 series.
func BenchmarkSearchStudies(b *testing.B) {
	x := newIndex(b)
	for s := range 1000 {
		for i := range 10 {
			inst := storagetest.NewTestInstance(fmt.Sprintf("9.%d", s), fmt.Sprintf("9.%d.%d", s, i%2), fmt.Sprintf("9.%d.%d.%d", s, i%2, i))
			inst.Study.PatientName = fmt.Sprintf("Name%03d^Given", s%500)
			inst.Study.PatientID = fmt.Sprintf("P%04d", s)
			inst.Study.StudyDate = fmt.Sprintf("2020%02d%02d", s%12+1, s%28+1)
			if i%2 == 1 {
				inst.Series.Modality = "MR"
			}
			if _, err := x.PutInstance(b.Context(), inst, false); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, bc := range []struct {
		name string
		q    storage.Query
	}{
		{"all_limit100", storage.Query{Level: storage.LevelStudy, Limit: 100}},
		{"patientID", storage.Query{Level: storage.LevelStudy, Matches: []storage.Match{{Tag: storage.TagPatientID, Value: "P0420"}}}},
		{"nameWildcard", storage.Query{Level: storage.LevelStudy, Matches: []storage.Match{{Tag: storage.TagPatientName, Value: "name04*"}}}},
		{"dateRange_modality", storage.Query{Level: storage.LevelStudy, Limit: 100, Matches: []storage.Match{
			{Tag: storage.TagStudyDate, Value: "20200301-20200630"}, {Tag: storage.TagModalitiesInStudy, Value: "MR"}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := x.Search(b.Context(), bc.q)
				if err != nil || len(res) == 0 {
					b.Fatalf("Search = %d, %v", len(res), err)
				}
			}
		})
	}
}
