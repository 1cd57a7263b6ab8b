//go:build !cgo || !cgocodecs

package codec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec"
)

// Without cgo the C-library syntaxes are unsupported, and say why.
func TestDecode_noCgoNamesSyntax(t *testing.T) {
	for _, ts := range []string{codec.JPEGLSLossless, codec.JPEG2000, codec.HTJ2K} {
		_, err := codec.Decode(ts, []byte{0xFF, 0xD8}, codec.PixelInfo{Rows: 1, Columns: 1, BitsAllocated: 8})
		if !errors.Is(err, codec.ErrUnsupported) || !strings.Contains(err.Error(), ts) || !strings.Contains(err.Error(), "cgo") {
			t.Errorf("%s: err = %v", ts, err)
		}
	}
}
