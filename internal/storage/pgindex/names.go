package pgindex

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

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

// namePhonetic is the *_phon column: the distinct phonetic keys of the
// name's components.
func namePhonetic(name string) []string {
	keys := []string{}
	for _, p := range strings.FieldsFunc(name, isNameSep) {
		if k := PhoneticKey(p); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// PhoneticKey is a spelling-variant key of one name component, written
// here because no maintained Go library offers a key that is both
// conservative enough for patient lookup and cheap to index: Soundex
// puts JOHN and JANE (both J500) together, Double Metaphone is large and
// English-only. Two components match phonetically when their keys are
// equal. The key is, in this order:
//
//  1. the component upper-cased, diacritics removed (Ü -> U, ß -> SS,
//     Æ -> AE, Ø -> O), letters A-Z only (other characters dropped);
//  2. Y -> I; then PH -> F, CK -> K, Q -> K, Z -> S, DT -> T, TH -> T,
//     C -> S before E or I, C kept before H, other C -> K; then AI -> EI,
//     IE -> I;
//  3. runs of the same letter collapsed to one (MM -> M);
//  4. a final E dropped when at least two letters stay.
//
// So SMITH, SMYTH, SMYTHE -> SMIT; MEIER, MEYER, MAIER, MAYER -> MEIR;
// SCHMIDT, SCHMITT -> SCHMIT; CARL, KARL -> KARL; MUELLER stays MUELER
// and MÜLLER -> MULER (different); JOHN -> JOHN, JANE -> JAN
// (different); an empty key means no phonetic match.
func PhoneticKey(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToUpper(s)) {
		switch {
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r)
		case r == 'ß' || r == 'ẞ':
			b.WriteString("SS")
		case r == 'Æ':
			b.WriteString("AE")
		case r == 'Ø':
			b.WriteByte('O')
		case r == 'Œ':
			b.WriteString("OE")
		case unicode.Is(unicode.Mn, r):
			// combining mark of a decomposed letter: dropped
		}
	}
	k := b.String()
	if k == "" {
		return ""
	}
	k = strings.ReplaceAll(k, "Y", "I")
	k = strings.NewReplacer("PH", "F", "CK", "K", "Q", "K", "Z", "S", "DT", "T", "TH", "T",
		"CH", "CH", "CE", "SE", "CI", "SI", "C", "K").Replace(k)
	k = strings.ReplaceAll(k, "AI", "EI")
	k = strings.ReplaceAll(k, "IE", "I")
	out := make([]byte, 0, len(k))
	for i := 0; i < len(k); i++ {
		if len(out) == 0 || out[len(out)-1] != k[i] {
			out = append(out, k[i])
		}
	}
	if n := len(out); n > 2 && out[n-1] == 'E' {
		out = out[:n-1]
	}
	return string(out)
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
