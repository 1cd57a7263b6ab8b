package dicomweb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// Request-level error kinds; wrap them with %w and a message the client
// may read. statusOf maps them (and storage's sentinels) to HTTP status.
var (
	errBadRequest           = errors.New("bad request")
	errNotAcceptable        = errors.New("not acceptable")
	errUnsupportedMediaType = errors.New("unsupported media type")
	errNotFound             = fmt.Errorf("%w", storage.ErrNotFound)
)

// StatusClientClosedRequest is logged (never sent) when the client hangs up.
const StatusClientClosedRequest = 499

func badRequestf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

func notAcceptablef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errNotAcceptable, fmt.Sprintf(format, args...))
}

func notFoundf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", storage.ErrNotFound, fmt.Sprintf(format, args...))
}

// statusOf maps an error to the HTTP status of the response. Most specific
// first: a wrapped *http.MaxBytesError also matches errBadRequest.
func statusOf(err error) int {
	var tooBig *http.MaxBytesError
	var he *echo.HTTPError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, context.Canceled):
		return StatusClientClosedRequest
	case errors.As(err, &he):
		return he.Code
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, codec.ErrCorrupt): // stored pixel data that do not decode
		return http.StatusUnprocessableEntity
	case errors.Is(err, errNotAcceptable):
		return http.StatusNotAcceptable
	case errors.Is(err, errUnsupportedMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, storage.ErrExists), errors.Is(err, storage.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errBadRequest), errors.Is(err, dcm.ErrInvalid),
		errors.Is(err, storage.ErrBadQuery), errors.Is(err, storage.ErrUnsupportedMatch):
		return http.StatusBadRequest
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, storage.ErrBusy), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// ErrorHandler is the echo HTTPErrorHandler: it writes
// {"error": "...", "request_id": "..."} with the status from statusOf,
// logs 5xx with detail (clients see only "internal error"), and logs a
// client hang-up as 499 without answering. A 4xx says what the client
// did wrong and nothing of a wrapped backend error (clientMessage). The
// request ID is the response's X-Request-ID (set by the server's
// middleware; left out when there is none), in the body and in every
// log line here, so an operator finds the detail a client reports.
func ErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	if logger == nil {
		logger = slog.Default()
	}
	return func(err error, c echo.Context) {
		req := c.Request()
		id := c.Response().Header().Get(echo.HeaderXRequestID)
		code := statusOf(err)
		if code == StatusClientClosedRequest || req.Context().Err() != nil {
			logger.Info("client closed request", "method", req.Method, "path", req.URL.Path, "status", StatusClientClosedRequest, "request_id", id)
			return
		}
		if c.Response().Committed {
			logger.Error("response failed after the first byte", "method", req.Method, "path", req.URL.Path, "err", err, "request_id", id)
			return
		}
		msg, cut := clientMessage(err, code)
		switch {
		case code == http.StatusServiceUnavailable:
			logger.Warn("service unavailable", "method", req.Method, "path", req.URL.Path, "err", err, "request_id", id)
			msg = "storage unavailable, retry later"
			if errors.Is(err, storage.ErrBusy) {
				msg = "the archive is busy, retry later"
				c.Response().Header().Set("Retry-After", retryAfterSeconds)
			}
		case code >= 500:
			logger.Error("internal error", "method", req.Method, "path", req.URL.Path, "err", err, "request_id", id)
			msg = "internal error"
		case cut: // the client got the gist; the log keeps the rest
			logger.Info("request refused", "method", req.Method, "path", req.URL.Path, "status", code, "err", err, "request_id", id)
		}
		if req.Method == http.MethodHead {
			_ = c.NoContent(code)
			return
		}
		b := append([]byte(`{"error":`), appendJSONString(nil, msg)...)
		if id != "" {
			b = append(b, `,"request_id":`...)
			b = appendJSONString(b, id)
		}
		b = append(b, "}\n"...)
		_ = c.Blob(code, echo.MIMEApplicationJSON, b)
	}
}
