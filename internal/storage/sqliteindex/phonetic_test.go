package sqliteindex

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Migration 00006 backfills the phonetic keys of studies indexed before
// it: a database at version 5, with studies written as that version did,
// answers phonetic fuzzy matches once opened (migrated to the latest).
func TestMigration00006_backfillsPhoneticKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(nameWordsMigration, phoneticMigration))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ uid, patient, referring, date string }{
		{"6.1", "Smith^John", "Meyer^Karl", "20200101"},
		{"6.2", "Doe^Jane", "", "20200102"},
		{"6.3", "Smythe^Al", "Doe^Jon", "20200103"},
	} {
		res, err := db.ExecContext(ctx, `INSERT INTO studies (study_uid, patient_name, patient_name_key,
			referring_physician_name, referring_physician_key, study_date, version, created)
			VALUES (?, ?, ?, ?, ?, ?, 1, 1)`, s.uid, s.patient, storage.NameKey(s.patient), s.referring, storage.NameKey(s.referring), s.date)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := res.LastInsertId()
		for _, w := range storage.NameWords(s.patient) {
			if _, err := db.ExecContext(ctx, sqlInsertNameWord5, pk, w, s.date, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()

	x, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, c := range []struct {
		keyword, query string
		want           []string
	}{
		{"PatientName", "smyth", []string{"6.3", "6.1"}},
		{"PatientName", "smith jo", []string{"6.1"}},
		{"ReferringPhysicianName", "maier", []string{"6.1"}},
		{"ReferringPhysicianName", "jon", []string{"6.3"}},
	} {
		tag := storage.TagPatientName
		if c.keyword == "ReferringPhysicianName" {
			tag = storage.TagReferringPhysicianName
		}
		res, err := x.Search(ctx, storage.Query{Level: storage.LevelStudy, FuzzyMatching: true, OmitMetadata: true,
			Matches: []storage.Match{{Tag: tag, Value: c.query}}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res {
			got = append(got, r.Study.StudyInstanceUID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("fuzzy %s %q after the migration = %v, want %v", c.keyword, c.query, got, c.want)
		}
	}
}
