package sqliteindex

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/sqlindex"
)

// core is the SQL shared with pgindex, written in SQLite's dialect.
var core = sqlindex.New(dialect{})

// dialect is how SQLite spells what sqlindex builds: `?` placeholders,
// IN lists, GLOB patterns, IS attributes as a CAST of their text column,
// the study's modalities as a comma-joined text column.
type dialect struct{}

func (dialect) Numbered() bool    { return false }
func (dialect) True() string      { return "1" }
func (dialect) NullBytes() string { return "NULL" }

func (dialect) Int(col string) sqlindex.IntColumn {
	return sqlindex.IntColumn{Value: "CAST(" + col + " AS INTEGER)", Missing: col + " = ''", Present: col + " <> ''"}
}

func (dialect) InText(col string, vals []string, a *sqlindex.Args) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = a.Add(v)
	}
	return col + " IN (" + strings.Join(ph, ", ") + ")"
}

func (dialect) InInt(expr string, vals []int64, a *sqlindex.Args) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = a.Add(v)
	}
	return expr + " IN (" + strings.Join(ph, ", ") + ")"
}

// globEscape turns a DICOM wildcard pattern into a GLOB pattern: `*` and
// `?` mean the same in both; `[` is GLOB's only other special character.
func globEscape(p string) string { return strings.ReplaceAll(p, "[", "[[]") }

func (dialect) Wildcard(col, p string, a *sqlindex.Args) string {
	return col + " GLOB " + a.Add(globEscape(p))
}

func (dialect) StartsWith(col, p string, a *sqlindex.Args) string {
	return col + " GLOB " + a.Add(globEscape(p)+"*")
}

// HasModality reads studies.modalities (00003): the study's distinct
// non-empty series modalities joined by ',' (CS values have no comma),
// which the studies_study_date index carries (00004).
func (dialect) HasModality(vals []string, a *sqlindex.Args) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = "instr(',' || st.modalities || ',', " + a.Add(","+v+",") + ") > 0"
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

func (dialect) EachModality(cond string) string {
	return "EXISTS (SELECT 1 FROM series m WHERE m.study_pk = st.study_pk AND " + cond + ")"
}

// FuzzyWord: the word starts a name component when " WORD" is in " " +
// the name with its component separators (^ = ,) as spaces; its
// phonetic key is one of the name's when " KEY " is in
// referring_physician_phon (00006).
func (dialect) FuzzyWord(keyword, word, key string, a *sqlindex.Args) (string, bool) {
	if keyword != "ReferringPhysicianName" {
		return "", false
	}
	e := "(' ' || replace(replace(replace(st.referring_physician_key, '^', ' '), '=', ' '), ',', ' ')) GLOB " + a.Add("* "+globEscape(word)+"*")
	if key != "" {
		e = "(" + e + " OR instr(st.referring_physician_phon, " + a.Add(" "+key+" ") + ") > 0)"
	}
	return e, true
}

func (dialect) SeriesPageFirst() bool { return false }

func (dialect) StringList(dst *[]string) any { return sortedList{dst} }

// sortedList scans a comma-joined text column into its values, sorted.
type sortedList struct{ dst *[]string }

func (l sortedList) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("sqliteindex: list column: %T", src)
	}
	*l.dst = nil
	if s != "" {
		*l.dst = strings.Split(s, ",")
		slices.Sort(*l.dst)
	}
	return nil
}

// Search answers a QIDO query (sqlindex builds it). See the package
// documentation for the matching rules.
func (x *Index) Search(ctx context.Context, q storage.Query) ([]storage.Result, error) {
	res, err := core.Search(ctx, q, x.runSearch)
	if err != nil {
		return nil, fmt.Errorf("sqliteindex: search: %w", err)
	}
	return res, nil
}

// runSearch runs a search on the read pool, through the read gate, as a
// cached prepared statement; the gate is left when the rows are closed.
func (x *Index) runSearch(ctx context.Context, st sqlindex.Statement) (sqlindex.Rows, error) {
	leave, err := x.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := x.query(ctx, st.SQL, st.Args...)
	if err != nil {
		leave()
		return nil, err
	}
	return &gatedRows{Rows: rows, leave: leave}, nil
}

// gatedRows leaves the read gate when closed.
type gatedRows struct {
	*sql.Rows
	leave func()
}

func (r *gatedRows) Close() error {
	err := r.Rows.Close()
	if r.leave != nil {
		r.leave()
		r.leave = nil
	}
	return err
}
