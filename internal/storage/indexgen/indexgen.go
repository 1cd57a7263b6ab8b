// Package indexgen fills a storage.Index with realistic synthetic
// metadata (no pixel data, no blobs) for benchmarks of the index
// backends: patients with skewed name frequencies and several studies
// each, study dates over ten years, a clinical modality mix and about 50
// instances per study. The output is a deterministic function of Config.
package indexgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// Config sizes a generated archive.
type Config struct {
	// Instances is the number of instances to generate (about; whole
	// studies are generated).
	Instances int
	// PerStudy is the mean number of instances per study (default 50).
	PerStudy int
	// Seed selects the data set (default 1).
	Seed uint64
}

func (c Config) withDefaults() Config {
	if c.PerStudy <= 0 {
		c.PerStudy = 50
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Studies is the number of studies Config generates.
func (c Config) Studies() int {
	c = c.withDefaults()
	return max(1, (c.Instances+c.PerStudy/2)/c.PerStudy)
}

// FamilyNames and GivenNames are drawn with a Zipf-like skew: the first
// names of each list are much more frequent than the last, as in a real
// population (a few very common family names, a long tail).
var FamilyNames = []string{
	"SMITH", "MÜLLER", "GARCIA", "JOHNSON", "SCHMIDT", "BROWN", "MARTIN", "ROSSI", "WILLIAMS", "NGUYEN",
	"JONES", "MEIER", "MILLER", "DAVIS", "LOPEZ", "WILSON", "ANDERSON", "TAYLOR", "THOMAS", "MOORE",
	"JACKSON", "WHITE", "HARRIS", "CLARK", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING",
	"WRIGHT", "SCOTT", "TORRES", "HILL", "GREEN", "ADAMS", "BAKER", "NELSON", "CARTER", "MITCHELL",
	"SMYTH", "MAYER", "SCHMITT", "FISCHER", "WEBER", "WAGNER", "BECKER", "HOFFMANN", "KOCH", "RICHTER",
}

var GivenNames = []string{
	"JOHN", "MARY", "JAMES", "ANNA", "ROBERT", "MARIA", "MICHAEL", "LINDA", "DAVID", "ELIZABETH",
	"WILLIAM", "SUSAN", "RICHARD", "JESSICA", "JOSEPH", "SARAH", "THOMAS", "KAREN", "PETER", "LISA",
	"JÜRGEN", "SOPHIE", "LUCA", "EMMA", "KARL", "JANE", "PAUL", "LAURA", "MARK", "JULIA",
}

// modality mix of the studies: (modality, weight %, series range, SOP class).
var modalities = []struct {
	modality  string
	weight    int
	minSeries int
	maxSeries int
	sopClass  string
	bodyParts []string
}{
	{"CT", 30, 3, 6, "1.2.840.10008.5.1.4.1.1.2", []string{"CHEST", "ABDOMEN", "HEAD", "PELVIS"}},
	{"MR", 20, 4, 8, "1.2.840.10008.5.1.4.1.1.4", []string{"HEAD", "KNEE", "SPINE", "BRAIN"}},
	{"CR", 20, 1, 2, "1.2.840.10008.5.1.4.1.1.1", []string{"CHEST", "HAND", "FOOT"}},
	{"DX", 15, 1, 2, "1.2.840.10008.5.1.4.1.1.1.1", []string{"CHEST", "KNEE", "SHOULDER"}},
	{"US", 10, 1, 3, "1.2.840.10008.5.1.4.1.1.6.1", []string{"ABDOMEN", "THYROID", "BREAST"}},
	{"PT", 5, 2, 3, "1.2.840.10008.5.1.4.1.1.128", []string{"WHOLEBODY"}},
}

// Sample holds query values that exist in the generated archive, spread
// over all of it.
type Sample struct {
	PatientIDs       []string
	AccessionNumbers []string
	Studies          []string    // StudyInstanceUID
	Series           [][2]string // StudyInstanceUID, SeriesInstanceUID
	FirstDate        string      // StudyDate range of the archive
	LastDate         string
	Instances        int
	StudyCount       int
}

const uidRoot = "1.2.826.0.1.3680043.10.1137"

// Generate calls emit for every instance of the archive, study by study,
// and returns a sample of existing values. Instances passed to emit are
// not reused.
func Generate(cfg Config, emit func(*storage.Instance) error) (*Sample, error) {
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	nStudies := cfg.Studies()
	nPatients := max(1, nStudies*2/5) // 2.5 studies per patient on average
	familyZipf := rand.NewZipf(rng, 1.1, 2, uint64(len(FamilyNames)-1))
	givenZipf := rand.NewZipf(rng, 1.05, 2, uint64(len(GivenNames)-1))
	type patient struct{ name, id, birth, sex string }
	patients := make([]patient, nPatients)
	for i := range patients {
		sex := "F"
		if rng.IntN(2) == 0 {
			sex = "M"
		}
		patients[i] = patient{
			name:  FamilyNames[familyZipf.Uint64()] + "^" + GivenNames[givenZipf.Uint64()],
			id:    fmt.Sprintf("PID%07d", i+1),
			birth: time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(90*365)).Format("20060102"),
			sex:   sex,
		}
	}
	first := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	days := int(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Sub(first).Hours() / 24)
	sampleEvery := max(1, nStudies/1000)
	s := &Sample{FirstDate: first.Format("20060102"), LastDate: first.AddDate(0, 0, days-1).Format("20060102"), StudyCount: nStudies}
	created := time.Unix(1_700_000_000, 0).UTC()
	for st := range nStudies {
		p := patients[rng.IntN(nPatients)]
		w := rng.IntN(100)
		m := modalities[0]
		for _, mm := range modalities {
			if w < mm.weight {
				m = mm
				break
			}
			w -= mm.weight
		}
		studyUID := uidRoot + "." + strconv.Itoa(st+1)
		date := first.AddDate(0, 0, rng.IntN(days))
		attrs := storage.StudyAttrs{
			PatientName: p.name, PatientID: p.id, IssuerOfPatientID: "HOSP", PatientBirthDate: p.birth, PatientSex: p.sex,
			StudyDate: date.Format("20060102"), StudyTime: fmt.Sprintf("%02d%02d%02d", 7+rng.IntN(12), rng.IntN(60), rng.IntN(60)),
			AccessionNumber:        fmt.Sprintf("ACC%08d", st+1),
			StudyID:                strconv.Itoa(st + 1),
			ReferringPhysicianName: FamilyNames[rng.IntN(len(FamilyNames))] + "^" + GivenNames[rng.IntN(len(GivenNames))],
			StudyDescription:       m.modality + " " + m.bodyParts[rng.IntN(len(m.bodyParts))],
			SpecificCharacterSet:   "ISO_IR 192",
		}
		nSeries := m.minSeries + rng.IntN(m.maxSeries-m.minSeries+1)
		nInst := max(nSeries, cfg.PerStudy/2+rng.IntN(cfg.PerStudy+1))
		if st%sampleEvery == 0 {
			s.PatientIDs = append(s.PatientIDs, p.id)
			s.AccessionNumbers = append(s.AccessionNumbers, attrs.AccessionNumber)
			s.Studies = append(s.Studies, studyUID)
		}
		for se := range nSeries {
			seriesUID := studyUID + "." + strconv.Itoa(se+1)
			mod, sopClass := m.modality, m.sopClass
			if m.modality == "PT" && se == 0 { // PET-CT: a CT series for attenuation
				mod, sopClass = "CT", modalities[0].sopClass
			}
			series := storage.SeriesAttrs{
				Modality: mod, SeriesNumber: strconv.Itoa(se + 1), SeriesDescription: mod + " series " + strconv.Itoa(se+1),
				SeriesDate: attrs.StudyDate, SeriesTime: attrs.StudyTime, BodyPartExamined: m.bodyParts[0],
				InstitutionName: "General Hospital", StationName: mod + "01", Manufacturer: "ACME",
			}
			if st%sampleEvery == 0 {
				s.Series = append(s.Series, [2]string{studyUID, seriesUID})
			}
			count := nInst / nSeries
			if se < nInst%nSeries {
				count++
			}
			for in := range count {
				sop := seriesUID + "." + strconv.Itoa(in+1)
				inst := &storage.Instance{
					StudyInstanceUID: studyUID, SeriesInstanceUID: seriesUID, SOPInstanceUID: sop,
					SOPClassUID: sopClass, TransferSyntaxUID: "1.2.840.10008.1.2.1",
					BlobKey: fmt.Sprintf("instances/%02x/%02x/%d-%d-%d.dcm", st%256, se%256, st, se, in),
					Size:    512*512*2 + 2000, SHA256: fmt.Sprintf("%064x", uint64(st)<<24|uint64(se)<<16|uint64(in)),
					Created:       created.Add(time.Duration(st) * time.Second),
					Frames:        []dcm.Frame{{{Offset: 2000, Length: 512 * 512 * 2}}},
					DataSetOffset: 132,
					Study:         attrs, Series: series,
					Instance: storage.InstanceAttrs{InstanceNumber: strconv.Itoa(in + 1), Rows: 512, Columns: 512,
						BitsAllocated: 16, NumberOfFrames: 1, ContentDate: attrs.StudyDate, ContentTime: attrs.StudyTime},
				}
				inst.Metadata = metadata(inst)
				if err := emit(inst); err != nil {
					return nil, err
				}
				s.Instances++
			}
		}
	}
	return s, nil
}

// metadata is a small DICOM JSON object like the one ingest records
// (about 1 KB; real ones are a few KB).
func metadata(i *storage.Instance) []byte {
	return fmt.Appendf(nil, `{"00080016":{"vr":"UI","Value":[%q]},"00080018":{"vr":"UI","Value":[%q]},`+
		`"00080020":{"vr":"DA","Value":[%q]},"00080030":{"vr":"TM","Value":[%q]},"00080050":{"vr":"SH","Value":[%q]},`+
		`"00080060":{"vr":"CS","Value":[%q]},"00080070":{"vr":"LO","Value":[%q]},"00080080":{"vr":"LO","Value":[%q]},`+
		`"00081030":{"vr":"LO","Value":[%q]},"0008103E":{"vr":"LO","Value":[%q]},`+
		`"00100010":{"vr":"PN","Value":[{"Alphabetic":%q}]},"00100020":{"vr":"LO","Value":[%q]},`+
		`"00100030":{"vr":"DA","Value":[%q]},"00100040":{"vr":"CS","Value":[%q]},`+
		`"0020000D":{"vr":"UI","Value":[%q]},"0020000E":{"vr":"UI","Value":[%q]},"00200011":{"vr":"IS","Value":[%s]},`+
		`"00200013":{"vr":"IS","Value":[%s]},"00280010":{"vr":"US","Value":[512]},"00280011":{"vr":"US","Value":[512]},`+
		`"00280100":{"vr":"US","Value":[16]},"7FE00010":{"vr":"OW","BulkDataURI":"\u0001/bulk/7FE00010"}}`,
		i.SOPClassUID, i.SOPInstanceUID, i.Study.StudyDate, i.Study.StudyTime, i.Study.AccessionNumber,
		i.Series.Modality, i.Series.Manufacturer, i.Series.InstitutionName, i.Study.StudyDescription, i.Series.SeriesDescription,
		i.Study.PatientName, i.Study.PatientID, i.Study.PatientBirthDate, i.Study.PatientSex,
		i.StudyInstanceUID, i.SeriesInstanceUID, i.Series.SeriesNumber, i.Instance.InstanceNumber)
}

// Fill generates the archive of cfg into x with workers concurrent
// PutInstance calls (1 for SQLite, whose writes are serialised anyway;
// a few for PostgreSQL). progress, when not nil, is called every 10,000
// instances.
func Fill(ctx context.Context, x storage.Index, cfg Config, workers int, progress func(done int)) (*Sample, error) {
	workers = max(1, workers)
	ch := make(chan *storage.Instance, workers*64)
	var (
		wg           sync.WaitGroup
		errOnce      sync.Once
		firstEr      error
		cctx, cancel = context.WithCancel(ctx)
	)
	defer cancel()
	for range workers {
		wg.Go(func() {
			for inst := range ch {
				if _, err := x.PutInstance(cctx, inst, false); err != nil {
					errOnce.Do(func() { firstEr = err; cancel() })
				}
			}
		})
	}
	n := 0
	s, err := Generate(cfg, func(inst *storage.Instance) error {
		select {
		case ch <- inst:
		case <-cctx.Done():
			return cctx.Err()
		}
		if n++; progress != nil && n%10000 == 0 {
			progress(n)
		}
		return nil
	})
	close(ch)
	wg.Wait()
	if firstEr != nil {
		return nil, fmt.Errorf("indexgen: fill: %w", firstEr)
	}
	if err != nil {
		return nil, fmt.Errorf("indexgen: fill: %w", err)
	}
	return s, nil
}
