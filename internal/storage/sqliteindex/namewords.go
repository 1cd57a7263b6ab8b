package sqliteindex

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Migration 00005 (a Go migration: the words are split in Go, with
// storage.NameWords, as at write time): study_name_words holds one row
// per study and word of its PatientName (storage.NameWords: upper-cased,
// split on ^ = space and comma, distinct), with the study's sort key, so
// that a fuzzy PatientName word ("every query word starts a component")
// is the index range word >= w AND word < PrefixEnd(w), read in the
// search order from the index alone. Rows are inserted in the
// transaction that creates the study (study attributes never change
// after: the first instance's win) and go with the study row (ON DELETE
// CASCADE; foreign_keys is on).
const sqlNameWordsUp = `
CREATE TABLE IF NOT EXISTS study_name_words (
    study_pk   INTEGER NOT NULL REFERENCES studies (study_pk) ON DELETE CASCADE,
    word       TEXT    NOT NULL,
    study_date TEXT    NOT NULL,
    study_time TEXT    NOT NULL,
    PRIMARY KEY (study_pk, word)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS study_name_words_word ON study_name_words (word, study_date DESC, study_time DESC, study_pk);
`

const sqlInsertNameWord = `INSERT OR IGNORE INTO study_name_words (study_pk, word, study_date, study_time) VALUES (?, ?, ?, ?)`

var nameWordsMigration = goose.NewGoMigration(5,
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, sqlNameWordsUp); err != nil {
			return err
		}
		return backfillNameWords(ctx, tx)
	}},
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DROP TABLE study_name_words`)
		return err
	}},
)

// backfillNameWords fills study_name_words for the studies indexed
// before migration 00005, in batches of studies.
func backfillNameWords(ctx context.Context, tx *sql.Tx) error {
	ins, err := tx.PrepareContext(ctx, sqlInsertNameWord)
	if err != nil {
		return err
	}
	defer ins.Close()
	type study struct {
		pk               int64
		name, date, time string
	}
	var last int64 = -1 << 62
	for {
		rows, err := tx.QueryContext(ctx, `SELECT study_pk, patient_name, study_date, study_time
			FROM studies WHERE study_pk > ? ORDER BY study_pk LIMIT 5000`, last)
		if err != nil {
			return err
		}
		var batch []study
		for rows.Next() {
			var s study
			if err := rows.Scan(&s.pk, &s.name, &s.date, &s.time); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, s := range batch {
			for _, w := range storage.NameWords(s.name) {
				if _, err := ins.ExecContext(ctx, s.pk, w, s.date, s.time); err != nil {
					return fmt.Errorf("study_name_words backfill: %w", err)
				}
			}
		}
		last = batch[len(batch)-1].pk
	}
}

// insertNameWords records the words of a new study's PatientName.
func (x *Index) insertNameWords(ctx context.Context, tx *sql.Tx, studyPK int64, s *storage.StudyAttrs) error {
	for _, w := range storage.NameWords(s.PatientName) {
		if _, err := x.stmt(ctx, tx, sqlInsertNameWord).ExecContext(ctx, studyPK, w, s.StudyDate, s.StudyTime); err != nil {
			return err
		}
	}
	return nil
}

// fuzzyWordSQL is "the column word (of table alias w) starts with the
// query word": a range an index serves, or, for a word without a range
// end (PrefixEnd ""), a GLOB after the lower bound.
func fuzzyWordSQL(w, word string) (string, []any) {
	if end := storage.PrefixEnd(word); end != "" {
		return fmt.Sprintf("(%[1]s.word >= ? AND %[1]s.word < ?)", w), []any{word, end}
	}
	return fmt.Sprintf("(%[1]s.word >= ? AND %[1]s.word GLOB ?)", w), []any{word, globEscape(word) + "*"}
}

// fuzzyNameSQL is a fuzzy PatientName condition on the study whose
// study_pk is pkCol: every word is the prefix of a word of the name.
// skip: the index of a word the caller matches itself (or -1).
func fuzzyNameSQL(pkCol string, words []string, skip int) (string, []any) {
	var (
		parts []string
		args  []any
	)
	for i, w := range words {
		if i == skip {
			continue
		}
		e, a := fuzzyWordSQL("w"+fmt.Sprint(i), w)
		parts = append(parts, fmt.Sprintf("EXISTS (SELECT 1 FROM study_name_words w%d WHERE w%d.study_pk = %s AND %s)", i, i, pkCol, e))
		args = append(args, a...)
	}
	if len(parts) == 0 {
		return "1", nil
	}
	return strings.Join(parts, " AND "), args
}

// driverWord picks the word of a fuzzy condition whose range drives a
// study search: the longest (the fewest names start with it).
func driverWord(words []string) int {
	best := 0
	for i, w := range words {
		if len(w) > len(words[best]) {
			best = i
		}
	}
	return best
}
