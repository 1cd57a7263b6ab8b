package dicomweb

import (
	"net/http"
	"strings"
)

// addWarning adds a Warning header line (warningValue).
func addWarning(h http.Header, text string) { h.Add("Warning", warningValue(text)) }

// warningValue is a Warning header value with code 299, as PS3.18 uses
// them (RFC 7234 5.5): `299 pacs "text"`. The text is made printable
// ASCII and its quotes escaped, and cut at 300 characters.
func warningValue(text string) string {
	var b strings.Builder
	b.WriteString(`299 pacs "`)
	n := 0
	for _, r := range text {
		if n >= 300 {
			b.WriteString("...")
			break
		}
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
		n++
	}
	b.WriteByte('"')
	return b.String()
}
