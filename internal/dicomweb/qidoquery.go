package dicomweb

import (
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
}

// parseQIDOQuery parses QIDO-RS query parameters (PS3.18 8.3.4):
// {attribute}={value} with the attribute as keyword or tag (an empty
// value is universal matching: return the attribute, match everything),
// includefield (repeatable, comma-separated, keywords, tags or "all"),
// limit, offset and fuzzymatching. Other parameters of the request
// (accept, charset) are ignored. Errors wrap errBadRequest.
func parseQIDOQuery(v url.Values) (qidoQuery, error) {
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
					t, err := parseAttributeID(f)
					if err != nil {
						return qidoQuery{}, err
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
		case "accept", "charset":
		default:
			t, err := parseAttributeID(k)
			if err != nil {
				return qidoQuery{}, err
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
			q.Matches = append(q.Matches, storage.Match{Tag: t, Value: s})
		}
	}
	return q, nil
}

// parseAttributeID parses a keyword or tag. Sequence paths
// ("00400275.00400009") are not supported for matching.
func parseAttributeID(s string) (dcm.Tag, error) {
	if strings.Contains(s, ".") {
		return 0, badRequestf("attribute %q: sequence paths are not supported", truncate(s, 64))
	}
	t, ok := dcm.ParseTag(s)
	if !ok {
		return 0, badRequestf("unknown attribute %q", truncate(s, 64))
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
