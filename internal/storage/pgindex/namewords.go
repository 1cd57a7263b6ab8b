package pgindex

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Migration 00005 (a Go migration: words and phonetic keys are computed
// in Go, as at write time): study_name_words holds one row per study and
// word of its PatientName (storage.NameWords: upper-cased, split on
// ^ = space and comma, distinct) with the word's PhoneticKey (empty when
// none) and the study's sort key. A fuzzy PatientName word ("starts a
// component, or has a component's phonetic key") is then two index
// ranges read in search order from the index alone:
//
//	study_name_words_word  word >= w AND word < PrefixEnd(w)
//	study_name_words_phon  phon = storage.PhoneticKey(w)
//
// Rows are inserted in the transaction that creates the study (study
// attributes never change after: the first instance's win; the creator
// holds the new row's lock) and go with the study row (ON DELETE
// CASCADE). It runs outside a transaction so that it can VACUUM the new
// table (index-only scans need its visibility map): the table and its
// rows are written in one transaction of their own, and every statement
// is idempotent, so an interrupted run is completed by the next.
const sqlNameWordsUp = `
CREATE TABLE IF NOT EXISTS study_name_words (
    study_pk   BIGINT NOT NULL REFERENCES studies (study_pk) ON DELETE CASCADE,
    word       TEXT   COLLATE "C" NOT NULL,
    phon       TEXT   COLLATE "C" NOT NULL,
    study_date TEXT   COLLATE "C" NOT NULL,
    study_time TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (study_pk, word)
);
CREATE INDEX IF NOT EXISTS study_name_words_word ON study_name_words (word, study_date DESC, study_time DESC, study_pk);
CREATE INDEX IF NOT EXISTS study_name_words_phon ON study_name_words (phon, study_date DESC, study_time DESC, study_pk) INCLUDE (word);
`

// sqlInsertNameWords inserts the words of studies: parallel arrays of
// study_pk, word, phon, study_date, study_time.
const sqlInsertNameWords = `INSERT INTO study_name_words (study_pk, word, phon, study_date, study_time)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
	ON CONFLICT DO NOTHING`

var nameWordsMigration = goose.NewGoMigration(5,
	&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, sqlNameWordsUp); err != nil {
			return err
		}
		if err := backfillNameWords(ctx, tx); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		return vacuumNameWords(ctx, db)
	}},
	&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS study_name_words`)
		return err
	}},
)

// vacuumNameWords sets the visibility map of the new table, which its
// index-only scans need. A VACUUM right after the backfill's commit may
// leave the pages not all-visible (seen with asynchronous commit, or
// while another transaction's snapshot predates the commit), and
// autovacuum would not come back before many new rows: so it is tried
// again a few times, then left to autovacuum (the searches are correct
// either way, only slower).
func vacuumNameWords(ctx context.Context, db *sql.DB) error {
	for range 8 {
		if _, err := db.ExecContext(ctx, `VACUUM (ANALYZE) study_name_words`); err != nil {
			return err
		}
		var done bool
		if err := db.QueryRowContext(ctx, `SELECT relallvisible >= relpages FROM pg_class
			WHERE oid = 'study_name_words'::regclass`).Scan(&done); err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// nameWordRows accumulates rows of study_name_words as parallel arrays.
type nameWordRows struct {
	pks                     []int64
	words, phons, dates, tm []string
}

func (r *nameWordRows) add(pk int64, name, date, tm string) {
	for _, w := range storage.NameWords(name) {
		r.pks = append(r.pks, pk)
		r.words = append(r.words, w)
		r.phons = append(r.phons, storage.PhoneticKey(w))
		r.dates = append(r.dates, date)
		r.tm = append(r.tm, tm)
	}
}

func (r *nameWordRows) args() []any { return []any{r.pks, r.words, r.phons, r.dates, r.tm} }

// backfillNameWords fills study_name_words for the studies indexed
// before migration 00005, in batches of studies.
func backfillNameWords(ctx context.Context, tx *sql.Tx) error {
	var last int64 = -1
	for {
		rows, err := tx.QueryContext(ctx, `SELECT study_pk, patient_name, study_date, study_time
			FROM studies WHERE study_pk > $1 ORDER BY study_pk LIMIT 5000`, last)
		if err != nil {
			return err
		}
		var (
			r nameWordRows
			n int
		)
		for rows.Next() {
			var (
				pk             int64
				name, date, tm string
			)
			if err := rows.Scan(&pk, &name, &date, &tm); err != nil {
				rows.Close()
				return err
			}
			r.add(pk, name, date, tm)
			last, n = pk, n+1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if len(r.pks) > 0 {
			if _, err := tx.ExecContext(ctx, sqlInsertNameWords, r.args()...); err != nil {
				return fmt.Errorf("study_name_words backfill: %w", err)
			}
		}
	}
}

// insertNameWords records the words of a new study's PatientName.
func insertNameWords(ctx context.Context, tx pgx.Tx, studyPK int64, s *storage.StudyAttrs) error {
	var r nameWordRows
	r.add(studyPK, s.PatientName, s.StudyDate, s.StudyTime)
	if len(r.pks) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, sqlInsertNameWords, r.args()...)
	return err
}
