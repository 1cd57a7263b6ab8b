package render

import "testing"

// FuzzAttrsFromJSON: any instance metadata gives attributes or an error,
// never a panic; window, viewport and quality parameters likewise.
func FuzzAttrsFromJSON(f *testing.F) {
	f.Add([]byte(`{"00280010":{"vr":"US","Value":[2]},"00280011":{"vr":"US","Value":[2]},"00280100":{"vr":"US","Value":[16]},"00280004":{"vr":"CS","Value":["MONOCHROME2"]},"00281050":{"vr":"DS","Value":[40]},"00281051":{"vr":"DS","Value":[400]}}`), "40,400", "128,128")
	f.Add([]byte(`{"00281101":{"vr":"US","Value":[256,0,16]},"00281201":{"vr":"OW","BulkDataURI":"\u0001/bulk/00281201"}}`), "1,0,SIGMOID", "1,1,0,0,1,1")
	f.Add([]byte(`{"52009229":{"vr":"SQ","Value":[{}]},"52009230":{"vr":"SQ","Value":[{"00289110":{"vr":"SQ"}}]}}`), ",", "0,0")
	f.Fuzz(func(t *testing.T, meta []byte, window, viewport string) {
		if a, err := AttrsFromJSON(meta, nil); err == nil && a != nil {
			_ = a.ForFrame(1)
		}
		_, _ = ParseWindow(window)
		_, _ = ParseViewport(viewport)
		_, _ = ParseQuality(window)
		_, _ = ParseAnnotation(window)
	})
}
