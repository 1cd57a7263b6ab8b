package sqlindex

import (
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Scanner is a row to scan (a driver's Row or Rows).
type Scanner interface{ Scan(dest ...any) error }

// ScanInstance reads a row of InstanceCols, LocateCols or LocateBulkCols
// (created as Unix nanoseconds; frames, bulk and metadata as stored).
func ScanInstance(s Scanner) (*storage.Instance, error) {
	var (
		inst         storage.Instance
		created      int64
		frames, meta []byte
		bulk         []byte
	)
	a := &inst.Instance
	dest := []any{&inst.StudyInstanceUID, &inst.SeriesInstanceUID, &inst.SOPInstanceUID, &inst.SOPClassUID,
		&inst.TransferSyntaxUID, &inst.BlobKey, &inst.Size, &inst.SHA256, &created, &frames,
		&inst.Encapsulated, &inst.Deflated, &inst.BigEndian, &inst.DataSetOffset,
		&a.InstanceNumber, &a.Rows, &a.Columns, &a.BitsAllocated, &a.NumberOfFrames,
		&a.ContentDate, &a.ContentTime, &a.AcquisitionDate, &meta, &bulk}
	dest = append(dest, storage.StudyAttrDest(&inst.Study)...)
	dest = append(dest, storage.SeriesAttrDest(&inst.Series)...)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	inst.Created = time.Unix(0, created).UTC()
	if err := storage.DecodeStored(&inst, frames, bulk, meta); err != nil {
		return nil, err
	}
	return &inst, nil
}
