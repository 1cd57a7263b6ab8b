package pgindex

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/sqlindex"
)

// core is the SQL shared with sqliteindex, written in PostgreSQL's
// dialect.
var core = sqlindex.New(dialect{})

// dialect is how PostgreSQL spells what sqlindex builds: $n
// placeholders, arrays (= ANY, @>, &&), LIKE patterns, IS attributes in
// *_int columns (NULL when empty), the study's modalities as a text[]
// column and the person names' words and phonetic keys in columns of
// their own. The text columns use the "C" collation: byte order, which
// the core's prefix ranges need.
type dialect struct{}

func (dialect) Numbered() bool    { return true }
func (dialect) True() string      { return "true" }
func (dialect) NullBytes() string { return "NULL::bytea" }

func (dialect) Int(col string) sqlindex.IntColumn {
	return sqlindex.IntColumn{Value: col + "_int", Missing: col + "_int IS NULL"}
}

func (dialect) InText(col string, vals []string, a *sqlindex.Args) string {
	return col + " = ANY(" + a.Add(vals) + "::text[])"
}

func (dialect) InInt(expr string, vals []int64, a *sqlindex.Args) string {
	return expr + " = ANY(" + a.Add(vals) + ")"
}

func (dialect) Wildcard(col, p string, a *sqlindex.Args) string {
	return col + " LIKE " + a.Add(likePattern(p))
}

func (dialect) StartsWith(col, p string, a *sqlindex.Args) string {
	return col + " LIKE " + a.Add(likeEscape(p)+"%")
}

// HasModality is array containment or overlap on studies.modalities
// (00003): the GIN index, or evaluated from the studies_study_date
// index alone.
func (dialect) HasModality(vals []string, a *sqlindex.Args) string {
	if len(vals) == 1 {
		return "st.modalities @> ARRAY[" + a.Add(vals[0]) + "::text]"
	}
	return "st.modalities && " + a.Add(vals) + "::text[]"
}

func (dialect) EachModality(cond string) string {
	return "EXISTS (SELECT 1 FROM unnest(st.modalities) m(modality) WHERE " + cond + ")"
}

// fuzzyColumns are the (words, phonetic keys) columns of the person names.
var fuzzyColumns = map[string][2]string{
	"PatientName":            {"st.patient_name_words", "st.patient_name_phon"},
	"ReferringPhysicianName": {"st.referring_physician_words", "st.referring_physician_phon"},
}

// FuzzyWord: the word starts a component of the *_words column (" " +
// the components joined by " "), or its key is in the *_phon array.
func (dialect) FuzzyWord(keyword, word, key string, a *sqlindex.Args) (string, bool) {
	fc, ok := fuzzyColumns[keyword]
	if !ok {
		return "", false
	}
	e := fc[0] + " LIKE " + a.Add("% "+likeEscape(word)+"%")
	if key != "" {
		e = "(" + e + " OR " + fc[1] + " @> ARRAY[" + a.Add(key) + "::text])"
	}
	return e, true
}

func (dialect) SeriesPageFirst() bool { return true }

// StringList: the array columns are kept sorted.
func (dialect) StringList(dst *[]string) any { return dst }

// Search answers a QIDO query (sqlindex builds it). See the package
// documentation for the matching rules.
func (x *Index) Search(ctx context.Context, q storage.Query) ([]storage.Result, error) {
	res, err := core.Search(ctx, q, x.runSearch)
	if err != nil {
		return nil, fmt.Errorf("pgindex: search: %w", err)
	}
	return res, nil
}

func (x *Index) runSearch(ctx context.Context, st sqlindex.Statement) (sqlindex.Rows, error) {
	args := st.Args
	if st.Level == storage.LevelStudy && customPlan(st.Conds) {
		args = append([]any{pgx.QueryExecModeDescribeExec}, args...)
	}
	rows, err := x.pool.Query(ctx, st.SQL, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

// pgRows is pgx's rows with database/sql's Close.
type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error {
	r.Rows.Close()
	return r.Rows.Err()
}

// customPlan reports whether a study search with these conditions is
// planned with its values (an unnamed statement) rather than as a cached
// prepared statement's generic plan: how many studies a fuzzy name or a
// modality matches decides between the date walk (common values) and
// the GIN index plus a sort (rare ones), and a generic plan takes the
// walk for every value, reading the whole index for a rare one. A fuzzy
// PatientName needs no such choice: its keys always come from the
// ranges of study_name_words.
func customPlan(conds []storage.Cond) bool {
	for _, c := range conds {
		if (c.Kind == storage.MatchFuzzy && c.Attr.Keyword != "PatientName") || c.Attr.Keyword == "ModalitiesInStudy" {
			return true
		}
	}
	return false
}

// Explain returns PostgreSQL's EXPLAIN (ANALYZE, BUFFERS) output for the
// statement Search runs for q (benchmarks and docs).
func (x *Index) Explain(ctx context.Context, q storage.Query) (string, error) {
	st, err := core.BuildSearch(q)
	if err != nil {
		return "", err
	}
	rows, err := x.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+st.SQL, st.Args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}
