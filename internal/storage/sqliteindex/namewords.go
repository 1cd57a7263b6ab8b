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

// sqlInsertNameWord5 is the insert of migration 00005's backfill, which
// runs before study_name_words has the phon column (00006).
const sqlInsertNameWord5 = `INSERT OR IGNORE INTO study_name_words (study_pk, word, study_date, study_time) VALUES (?, ?, ?, ?)`

// sqlInsertNameWord records one word of a new study's PatientName with
// its phonetic key.
const sqlInsertNameWord = `INSERT OR IGNORE INTO study_name_words (study_pk, word, phon, study_date, study_time) VALUES (?, ?, ?, ?, ?)`

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
	ins, err := tx.PrepareContext(ctx, sqlInsertNameWord5)
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
		if _, err := x.stmt(ctx, tx, sqlInsertNameWord).ExecContext(ctx, studyPK, w, storage.PhoneticKey(w), s.StudyDate, s.StudyTime); err != nil {
			return err
		}
	}
	return nil
}

// Migration 00006 (Go: the keys are computed with storage.PhoneticKey,
// as at write time): the phonetic keys of fuzzy person-name matching
// (storage/phonetic.go: the same rule as pgindex, so that both backends
// answer alike):
//
//	study_name_words.phon   the word's key ('' when none), with the index
//	                        study_name_words_phon (phon, study_date DESC,
//	                        study_time DESC, study_pk), which carries the
//	                        primary key (study_pk, word) too, so a key is
//	                        an index range in search order, like a word
//	studies.referring_physician_phon
//	                        ' ' + the distinct keys of the components of
//	                        ReferringPhysicianName + ' ' ('' when none),
//	                        tested with instr(…, ' KEY ')
//
// Rows indexed before are backfilled in batches; the index is built
// after the backfill.
const sqlPhoneticUp = `
ALTER TABLE study_name_words ADD COLUMN phon TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN referring_physician_phon TEXT NOT NULL DEFAULT '';
`

var phoneticMigration = goose.NewGoMigration(6,
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, sqlPhoneticUp); err != nil {
			return err
		}
		if err := backfillPhonetic(ctx, tx); err != nil {
			return fmt.Errorf("phonetic keys backfill: %w", err)
		}
		_, err := tx.ExecContext(ctx, `CREATE INDEX study_name_words_phon ON study_name_words (phon, study_date DESC, study_time DESC, study_pk)`)
		return err
	}},
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DROP INDEX study_name_words_phon;
			ALTER TABLE study_name_words DROP COLUMN phon;
			ALTER TABLE studies DROP COLUMN referring_physician_phon`)
		return err
	}},
)

// backfillPhonetic fills the columns of migration 00006 for the rows
// indexed before it: one UPDATE per distinct name word with a key, one
// per study with a referring physician.
func backfillPhonetic(ctx context.Context, tx *sql.Tx) error {
	const batch = 5000
	upWord, err := tx.PrepareContext(ctx, `UPDATE study_name_words SET phon = ? WHERE word = ?`)
	if err != nil {
		return err
	}
	defer upWord.Close()
	for last := ""; ; {
		words, err := queryStrings(ctx, tx, `SELECT DISTINCT word FROM study_name_words WHERE word > ? ORDER BY word LIMIT ?`, last, batch)
		if err != nil || len(words) == 0 {
			return backfillReferring(ctx, tx, err)
		}
		for _, w := range words {
			if k := storage.PhoneticKey(w); k != "" {
				if _, err := upWord.ExecContext(ctx, k, w); err != nil {
					return err
				}
			}
		}
		last = words[len(words)-1]
	}
}

func backfillReferring(ctx context.Context, tx *sql.Tx, err error) error {
	if err != nil {
		return err
	}
	up, err := tx.PrepareContext(ctx, `UPDATE studies SET referring_physician_phon = ? WHERE study_pk = ?`)
	if err != nil {
		return err
	}
	defer up.Close()
	type study struct {
		pk   int64
		name string
	}
	for last := int64(-1 << 62); ; {
		rows, err := tx.QueryContext(ctx, `SELECT study_pk, referring_physician_name FROM studies
			WHERE study_pk > ? ORDER BY study_pk LIMIT 5000`, last)
		if err != nil {
			return err
		}
		var b []study
		for rows.Next() {
			var s study
			if err := rows.Scan(&s.pk, &s.name); err != nil {
				rows.Close()
				return err
			}
			b = append(b, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(b) == 0 {
			return err
		}
		for _, s := range b {
			if k := phoneticColumn(s.name); k != "" {
				if _, err := up.ExecContext(ctx, k, s.pk); err != nil {
					return err
				}
			}
		}
		last = b[len(b)-1].pk
	}
}

func queryStrings(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// phoneticColumn is studies.referring_physician_phon of a name: its
// phonetic keys between spaces (" SMIT ANA "), or "" when it has none.
func phoneticColumn(name string) string {
	keys := storage.PhoneticKeys(name)
	if len(keys) == 0 {
		return ""
	}
	return " " + strings.Join(keys, " ") + " "
}
