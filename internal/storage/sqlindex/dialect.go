package sqlindex

import (
	"context"
	"strconv"
	"strings"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Args collects the arguments of a statement in the order of its text.
type Args []any

// Add appends v and returns its placeholder.
func (a *Args) Add(v any) string {
	*a = append(*a, v)
	return "?"
}

// IntColumn is how a dialect reads an IS attribute as an integer.
type IntColumn struct {
	// Value is the integer expression (a CAST of the text column, or a
	// column of its own).
	Value string
	// Missing is true for an empty value (sorted last).
	Missing string
	// Present, when not empty, must hold for Value to be compared (a
	// CAST of '' would be 0); "" when Value is NULL for an empty value.
	Present string
}

// Rows is the part of a driver's result set the core reads.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Statement is a search ready to run: SQL with the dialect's
// placeholders, its arguments, and what it was built from (a dialect may
// choose how to run it from its conditions).
type Statement struct {
	SQL   string
	Args  []any
	Level storage.Level
	Conds []storage.Cond
}

// Dialect is what a database spells or runs differently. Expressions
// take and return SQL text with `?` placeholders whose values they add
// to a, in the order of the text.
type Dialect interface {
	// Numbered reports whether placeholders are $1, $2… (else `?`).
	Numbered() bool
	// True is the literal of a condition that always holds.
	True() string
	// NullBytes is a NULL of the metadata documents' column type.
	NullBytes() string
	// Int is the integer view of the IS column col (e.g. "se.series_number").
	Int(col string) IntColumn
	// InText is "col is one of vals"; InInt the same for integers.
	InText(col string, vals []string, a *Args) string
	InInt(expr string, vals []int64, a *Args) string
	// Wildcard is "col matches the DICOM pattern p" (`*` any run, `?`
	// one character, every other character literal).
	Wildcard(col, p string, a *Args) string
	// StartsWith is "col starts with p" for a p that storage.PrefixEnd
	// has no end for (the range form is the core's).
	StartsWith(col, p string, a *Args) string
	// HasModality is "the study (st) has one of these modalities" from
	// its studies.modalities column; EachModality wraps a condition on
	// m.modality into "one of the study's modalities satisfies it".
	HasModality(vals []string, a *Args) string
	EachModality(cond string) string
	// FuzzyWord is the fuzzy test of one query word against the person
	// name attribute keyword of the study row: the word starts a name
	// component, or key (its storage.PhoneticKey, "" for none) is one of
	// the components' keys. ok false: the attribute has no such columns.
	FuzzyWord(keyword, word, key string, a *Args) (expr string, ok bool)
	// SeriesPageFirst: a series search cuts the page over series joined
	// to studies, and reads the study attributes for the page only.
	SeriesPageFirst() bool
	// StringList is a scan destination for the study's list columns
	// (modalities, SOP classes), delivering the values sorted.
	StringList(dst *[]string) any
}

// Run runs a search statement on a backend's connections (the SQLite
// read gate and statement cache; pgx, with a custom plan where a generic
// one is known to be wrong). The core closes the rows.
type Run func(ctx context.Context, st Statement) (Rows, error)

// Bind gives sql the dialect's placeholders: `?` outside quoted text
// becomes $1, $2… when d numbers them.
func Bind(d Dialect, sql string) string {
	if !d.Numbered() {
		return sql
	}
	var (
		b      strings.Builder
		n      int
		quoted bool
	)
	b.Grow(len(sql) + 16)
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
