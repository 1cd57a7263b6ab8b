package dicomweb

import (
	"bytes"
	"strconv"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// Readers for the stored instance JSON (storage.Instance.Metadata and the
// QIDO Representative documents). They tolerate the raw
// storage.BulkPlaceholder byte inside strings, which encoding/json would
// refuse.

// eachMember calls fn for each top-level member of the JSON object obj
// whose name is an 8-digit hex tag, with the raw value. It stops when fn
// returns false or at malformed input.
func eachMember(obj []byte, fn func(t dcm.Tag, val []byte) bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return
		}
		if obj[i] == ',' {
			i++
			continue
		}
		ks := i
		ke := skipValue(obj, i)
		if ke < 0 || obj[ks] != '"' {
			return
		}
		key := obj[ks+1 : ke-1]
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		vs := skipSpace(obj, i+1)
		ve := skipValue(obj, vs)
		if ve < 0 {
			return
		}
		i = ve
		if len(key) != 8 {
			continue
		}
		t, err := strconv.ParseUint(string(key), 16, 32)
		if err != nil {
			continue
		}
		if !fn(dcm.Tag(t), obj[vs:ve]) {
			return
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipValue returns the index just after the JSON value starting at i, or
// -1 if it is malformed or cut.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := skipValue(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// member returns the raw value of tag t in obj, or nil.
func member(obj []byte, t dcm.Tag) []byte {
	var out []byte
	eachMember(obj, func(mt dcm.Tag, v []byte) bool {
		if mt == t {
			out = v
			return false
		}
		return true
	})
	return out
}

// firstString returns the first string of the Value array of tag t in obj
// (UIDs, codes); "" when absent. Escapes are not decoded: it is meant for
// UIDs and other plain-ASCII values.
func firstString(obj []byte, t dcm.Tag) string {
	v := member(obj, t)
	i := bytes.Index(v, []byte(`"Value"`))
	if i < 0 {
		return ""
	}
	j := bytes.IndexByte(v[i+7:], '[')
	if j < 0 {
		return ""
	}
	k := skipSpace(v, i+7+j+1)
	if k >= len(v) || v[k] != '"' {
		return ""
	}
	e := skipValue(v, k)
	if e < 0 {
		return ""
	}
	return string(v[k+1 : e-1])
}

// appendReplacingPlaceholder appends src to dst with every
// storage.BulkPlaceholder byte replaced by url (JSON-escaped).
func appendReplacingPlaceholder(dst, src []byte, url string) []byte {
	ph := storage.BulkPlaceholder[0]
	for {
		i := bytes.IndexByte(src, ph)
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(dst, src[:i]...)
		dst = appendJSONStringContent(dst, url)
		src = src[i+1:]
	}
}
