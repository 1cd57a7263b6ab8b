package dicomweb

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// maxQIDOLimit caps (and is the default of) the number of QIDO results per
// request; a larger limit is cut with a Warning header (PS3.18 8.3.4.4).
const maxQIDOLimit = 1000

// qidoQuery is the parsed query string of a QIDO-RS request.
type qidoQuery struct {
	Matches    []storage.Match
	Include    []dcm.Tag // includefield and universal-matching keys
	IncludeAll bool
	Limit      int // 1..maxQIDOLimit
	Offset     int
	Fuzzy      bool
	LimitCut   bool // the client asked for more than maxQIDOLimit
	// Ignored names the query parameters (or includefield values) the
	// server does not support, left out as if absent (PS3.18 8.3; see
	// warnings). NotPerformed names the matching options asked for with
	// "true" that the server does not perform (emptyvaluematching,
	// multiplevaluematching: PS3.18 8.3.4.5, 8.3.4.6).
	Ignored      []string
	NotPerformed []string
}

// parseQIDOQuery parses QIDO-RS query parameters (PS3.18 8.3.4) of a
// search at level: {attribute}={value} with the attribute as keyword or
// tag (an empty value is universal matching: return the attribute, match
// everything), includefield (repeatable, comma-separated, keywords, tags
// or "all"), limit, offset and fuzzymatching. accept and charset are
// read elsewhere.
//
// What the server does not support is ignored, as PS3.18 8.3 has origin
// servers do (viewers and proxies add parameters of their own, such as
// a cache-busting "_=1700000000"): parameters that name no attribute,
// attributes the index cannot match on at level (storage.LookupMatchAttr)
// or sequence paths, unknown includefield values, emptyvaluematching and
// multiplevaluematching. They are listed in Ignored and NotPerformed for
// the Warning header. A malformed value of a supported parameter (limit,
// offset, fuzzymatching, a matching key given twice; a bad date range is
// found by the index) is an error wrapping errBadRequest.
func parseQIDOQuery(v url.Values, level storage.Level) (qidoQuery, error) {
	q := qidoQuery{Limit: maxQIDOLimit}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	single := func(k string) (string, error) {
		if len(v[k]) != 1 {
			return "", badRequestf("query parameter %q given %d times", k, len(v[k]))
		}
		return v[k][0], nil
	}
	for _, k := range keys {
		switch strings.ToLower(k) {
		case "includefield":
			for _, val := range v[k] {
				for f := range strings.SplitSeq(val, ",") {
					f = strings.TrimSpace(f)
					if strings.EqualFold(f, "all") {
						q.IncludeAll = true
						continue
					}
					t, ok := attributeID(f)
					if !ok {
						q.ignore("includefield=" + f)
						continue
					}
					if !slices.Contains(q.Include, t) {
						q.Include = append(q.Include, t)
					}
				}
			}
		case "limit", "offset":
			s, err := single(k)
			if err != nil {
				return qidoQuery{}, err
			}
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 0 {
				return qidoQuery{}, badRequestf("%s must be a non-negative integer", k)
			}
			if strings.EqualFold(k, "offset") {
				q.Offset = n
				break
			}
			switch {
			case n == 0:
				q.Limit = maxQIDOLimit
			case n > maxQIDOLimit:
				q.Limit, q.LimitCut = maxQIDOLimit, true
			default:
				q.Limit = n
			}
		case "fuzzymatching":
			s, err := single(k)
			if err != nil {
				return qidoQuery{}, err
			}
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true":
				q.Fuzzy = true
			case "false":
			default:
				return qidoQuery{}, badRequestf("fuzzymatching must be true or false")
			}
		case "emptyvaluematching", "multiplevaluematching":
			if slices.ContainsFunc(v[k], func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }) &&
				!slices.Contains(q.NotPerformed, strings.ToLower(k)) {
				q.NotPerformed = append(q.NotPerformed, strings.ToLower(k))
			}
		case "accept", "charset":
		default:
			t, ok := attributeID(k)
			if !ok {
				q.ignore(k)
				continue
			}
			s, err := single(k)
			if err != nil {
				return qidoQuery{}, err
			}
			if slices.ContainsFunc(q.Matches, func(m storage.Match) bool { return m.Tag == t }) {
				return qidoQuery{}, badRequestf("attribute %s given twice", k)
			}
			if s == "" || s == "*" {
				if !slices.Contains(q.Include, t) {
					q.Include = append(q.Include, t)
				}
				continue
			}
			if a, ok := storage.LookupMatchAttr(t); !ok || a.Level > level {
				// Not a matching key at this level: ignored, as a C-FIND
				// SCP treats an optional key it cannot match on
				// (universal matching).
				q.ignore(k)
				continue
			}
			q.Matches = append(q.Matches, storage.Match{Tag: t, Value: s})
		}
	}
	return q, nil
}

// maxIgnoredNames bounds the names kept for the Warning header.
const maxIgnoredNames = 20

func (q *qidoQuery) ignore(name string) {
	name = truncate(name, 64)
	if !slices.Contains(q.Ignored, name) {
		q.Ignored = append(q.Ignored, name)
	}
}

// warnings are the Warning header values (RFC 7234 5.5, code 299, as
// PS3.18 uses it) of what the query asked for and did not get: the
// parameters ignored, the matching options not performed, and a limit
// cut to maxQIDOLimit.
func (q *qidoQuery) warnings() []string {
	var out []string
	if n := len(q.Ignored); n > 0 {
		names := q.Ignored[:min(n, maxIgnoredNames)]
		quoted := make([]string, len(names))
		for i, s := range names {
			quoted[i] = strconv.Quote(s)
		}
		text := "The following query parameters are not supported and were ignored: " + strings.Join(quoted, ", ")
		if n > len(names) {
			text += fmt.Sprintf(" and %d more", n-len(names))
		}
		out = append(out, warningValue(text))
	}
	for _, p := range q.NotPerformed {
		what := map[string]string{"emptyvaluematching": "Empty Value Matching", "multiplevaluematching": "Multiple Value Matching"}[p]
		out = append(out, warningValue(fmt.Sprintf("The %s parameter is not supported. %s has not been performed.", p, what)))
	}
	if q.LimitCut {
		out = append(out, warningValue(fmt.Sprintf("The number of results is limited to %d; use offset to page", maxQIDOLimit)))
	}
	return out
}

// attributeID parses a keyword or tag; false for anything else, and for
// sequence paths ("00400275.00400009"), which are not supported.
func attributeID(s string) (dcm.Tag, bool) {
	if strings.Contains(s, ".") {
		return 0, false
	}
	return dcm.ParseTag(s)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
