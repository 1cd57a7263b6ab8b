package dicomweb

import (
	"context"
	"errors"
	"net/http"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// STOW-RS Failure Reason (0008,1197) values (PS3.18 10.5.3, from the PS3.4
// Storage Service statuses). All choices are made in failureReason.
const (
	reasonProcessingFailure = 0x0110 // a storage error
	reasonDuplicateSOP      = 0x0111 // different bytes under a known SOP Instance UID (reject policy)
	reasonOutOfResources    = 0xA700 // the upload limit was reached inside this instance
	reasonDoesNotMatch      = 0xA900 // Study Instance UID differs from the path, or UID known under another study/series
	reasonCannotUnderstand  = 0xC000 // not DICOM, malformed, truncated, or a part that is not application/dicom
)

// failureReason maps a per-instance store error to its Failure Reason.
func failureReason(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return reasonOutOfResources
	case errors.Is(err, storage.ErrConflict):
		return reasonDoesNotMatch
	case errors.Is(err, storage.ErrExists):
		return reasonDuplicateSOP
	case errors.Is(err, dcm.ErrInvalid):
		return reasonCannotUnderstand
	case errors.Is(err, errUnsupportedMediaType):
		return reasonCannotUnderstand
	case errors.Is(err, context.Canceled):
		return reasonProcessingFailure
	}
	return reasonProcessingFailure
}
