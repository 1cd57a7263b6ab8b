package dicomweb

import (
	"bytes"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
)

// multipartLength counts exactly what mime/multipart writes.
func TestMultipartLength(t *testing.T) {
	for _, sizes := range [][]int{{}, {0}, {7}, {3, 1000, 0, 12}} {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		var hdrs []textproto.MIMEHeader
		for i, n := range sizes {
			h := textproto.MIMEHeader{}
			h.Set("Content-Type", "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1")
			h.Set("Content-Length", strconv.Itoa(n))
			h.Set("Content-Location", "http://example.test/dicom-web/frames/"+strconv.Itoa(i+1))
			h.Add("X-Two", "a")
			h.Add("X-Two", "bc")
			hdrs = append(hdrs, h)
			pw, err := mw.CreatePart(h)
			if err != nil {
				t.Fatal(err)
			}
			pw.Write([]byte(strings.Repeat("x", n)))
		}
		mw.Close()
		got, ok := multipartLength(mw.Boundary(), hdrs)
		if !ok || got != int64(buf.Len()) {
			t.Errorf("parts %v: multipartLength = %d, %v; mime/multipart wrote %d", sizes, got, ok, buf.Len())
		}
	}
	if _, ok := multipartLength("b", []textproto.MIMEHeader{{}}); ok {
		t.Error("a part without Content-Length has a length")
	}
}
