package sqlindex

import (
	"strconv"
	"strings"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Fuzzy PatientName matching reads study_name_words (migration 00005 of
// both backends): one row per study and word of its PatientName
// (storage.NameWords) with the word's storage.PhoneticKey (phon, '' for
// none) and the study's sort key, indexed on (word, sort key) and on
// (phon, sort key). A query word matches a study when it starts one of
// its words or has the phonetic key of one: index ranges.

// wordPrefix is "column word (of alias w, "" for none) starts with p".
func (c *Core) wordPrefix(w, p string, a *Args) string {
	col := "word"
	if w != "" {
		col = w + ".word"
	}
	if end := storage.PrefixEnd(p); end != "" {
		return col + " >= " + a.Add(p) + " AND " + col + " < " + a.Add(end)
	}
	return col + " >= " + a.Add(p) + " AND " + c.d.StartsWith(col, p, a)
}

// fuzzyWord is "the word of table alias w starts with the query word,
// or has its phonetic key".
func (c *Core) fuzzyWord(w, word string, a *Args) string {
	e := c.wordPrefix(w, word, a)
	if k := storage.PhoneticKey(word); k != "" {
		return "((" + e + ") OR " + w + ".phon = " + a.Add(k) + ")"
	}
	return "(" + e + ")"
}

// wordRows is the rows of study_name_words (study_pk, study_date,
// study_time) that a fuzzy query word matches: those whose word starts
// with it, UNION ALL those with its phonetic key and a word that does
// not (SMITH's key SMIT: SMYTH, not SMITH again). Each is a range of a
// covering index; an OR of the two would read table rows, and, joined
// to studies, can make a planner scan that table instead.
func (c *Core) wordRows(word string, a *Args) string {
	const cols = `SELECT study_pk, study_date, study_time FROM study_name_words WHERE `
	e := cols + c.wordPrefix("", word, a)
	if k := storage.PhoneticKey(word); k != "" {
		e += " UNION ALL " + cols + "phon = " + a.Add(k) + " AND NOT (" + c.wordPrefix("", word, a) + ")"
	}
	return e
}

// fuzzyName is a fuzzy PatientName condition on the study whose
// study_pk is pkCol: every word matches a word of the name. skip: the
// index of a word the caller matches itself (or -1).
func (c *Core) fuzzyName(pkCol string, words []string, skip int, a *Args) string {
	var parts []string
	for i, w := range words {
		if i == skip {
			continue
		}
		al := "w" + strconv.Itoa(i)
		parts = append(parts, "EXISTS (SELECT 1 FROM study_name_words "+al+" WHERE "+al+".study_pk = "+pkCol+" AND "+c.fuzzyWord(al, w, a)+")")
	}
	if len(parts) == 0 {
		return c.d.True()
	}
	return strings.Join(parts, " AND ")
}

// driverWord picks the word of a fuzzy condition whose rows drive a
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
