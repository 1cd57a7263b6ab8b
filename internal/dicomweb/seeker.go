package dicomweb

import (
	"errors"
	"io"
)

// rangeSeeker is an io.ReadSeeker over size bytes that opens a fresh
// ranged reader on the first Read after a Seek, so that
// http.ServeContent can answer Range requests without buffering.
type rangeSeeker struct {
	size  int64
	open  func(off, n int64) (io.ReadCloser, error)
	pos   int64
	rc    io.ReadCloser
	rcPos int64
}

func (s *rangeSeeker) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if s.rc == nil || s.rcPos != s.pos {
		if s.rc != nil {
			s.rc.Close()
		}
		rc, err := s.open(s.pos, s.size-s.pos)
		if err != nil {
			s.rc = nil
			return 0, err
		}
		s.rc, s.rcPos = rc, s.pos
	}
	if rem := s.size - s.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.rc.Read(p)
	s.pos += int64(n)
	s.rcPos += int64(n)
	if err == io.EOF && s.pos < s.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (s *rangeSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	default:
		return 0, errors.New("dicomweb: bad whence")
	}
	if off < 0 {
		return 0, errors.New("dicomweb: negative position")
	}
	s.pos = off
	return off, nil
}

func (s *rangeSeeker) Close() error {
	if s.rc != nil {
		return s.rc.Close()
	}
	return nil
}

// skipOpen turns a whole-stream opener into a ranged one by discarding
// the first off bytes (for frames that are not one contiguous span of the
// stored object).
func skipOpen(open func() (io.ReadCloser, error)) func(off, n int64) (io.ReadCloser, error) {
	return func(off, n int64) (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		if _, err := io.CopyN(io.Discard, rc, off); err != nil {
			rc.Close()
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(rc, n), rc}, nil
	}
}
