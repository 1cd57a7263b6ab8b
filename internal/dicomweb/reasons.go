package dicomweb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

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

// STOW-RS Warning Reason (0008,1196) values (PS3.18 10.5.3).
const (
	// warningDoesNotMatch: stored as sent, but the data set contradicts
	// its SOP Class (pixel attributes that do not fit the pixel data).
	warningDoesNotMatch = 0xB007
)

// failureReason maps a per-instance store error to its Failure Reason.
func failureReason(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), errors.Is(err, storage.ErrBusy):
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

// failureText says in words why an instance was not stored: what the
// sender did or can do, never our internals (paths, buckets, SQL). The
// server log has the detail.
func failureText(err error) string {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Sprintf("the request body exceeds the upload limit of %d bytes", tooBig.Limit)
	case errors.Is(err, storage.ErrBusy):
		return "the archive is busy (its ingest budget is full); send it again later"
	case errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrExists),
		errors.Is(err, dcm.ErrInvalid), errors.Is(err, errUnsupportedMediaType), errors.Is(err, errBadRequest):
		// These messages describe the input only.
		msg := strings.TrimPrefix(err.Error(), "storage: store: ")
		return strings.TrimPrefix(msg, "dcm: ")
	case errors.Is(err, storage.ErrUnavailable):
		return "storage is unavailable; send it again later"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "the request ended before the instance was stored"
	}
	return "the archive could not store it (a processing failure; the server log has the detail)"
}
