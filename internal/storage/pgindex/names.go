package pgindex

import (
	"strings"

	"github.com/cloudpacs/pacs/internal/storage"
)

// isNameSep splits a person name into components, like storage's query
// side: `^` between family, given, middle, prefix, suffix; `=` between
// representations; spaces and commas inside a component.
func isNameSep(r rune) bool { return r == '^' || r == '=' || r == ' ' || r == ',' }

// nameWords is the *_words column: " " + the upper-cased components
// joined by " ", so that `LIKE '% WORD%'` means "WORD starts a component".
func nameWords(name string) string {
	parts := strings.FieldsFunc(storage.NameKey(name), isNameSep)
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// likeEscape escapes LIKE's special characters (the default escape
// character is the backslash).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// likePattern turns a DICOM wildcard pattern (`*` any run, `?` one
// character) into a LIKE pattern.
func likePattern(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch r {
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		case '\\', '%', '_':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
