package dicomweb

import (
	"errors"
	"io"
)

// rangeSeeker is an io.ReadSeeker over size bytes for http.ServeContent,
// which answers Range requests by seeking, without buffering.
//
// With open, the content can be read from any offset (ranged blob reads):
// the first Read after a Seek opens a fresh reader at the position. With
// stream instead, the content can only be produced from its start (the
// frames of a deflated object, which are inflated): a Seek forward
// discards bytes of the reader already open, and only a Seek back opens
// it again, so that the ranges of one request, in ascending order, cost
// one pass over the content, not one pass per range.
type rangeSeeker struct {
	size   int64
	open   func(off, n int64) (io.ReadCloser, error)
	stream func() (io.ReadCloser, error)
	pos    int64
	rc     io.ReadCloser
	rcPos  int64
}

func (s *rangeSeeker) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if s.rc == nil || s.rcPos != s.pos {
		if err := s.position(); err != nil {
			return 0, err
		}
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

// position leaves s.rc reading at s.pos.
func (s *rangeSeeker) position() error {
	if s.stream == nil {
		if s.rc != nil {
			s.rc.Close()
			s.rc = nil
		}
		rc, err := s.open(s.pos, s.size-s.pos)
		if err != nil {
			return err
		}
		s.rc, s.rcPos = rc, s.pos
		return nil
	}
	if s.rc == nil || s.pos < s.rcPos {
		if s.rc != nil {
			s.rc.Close()
			s.rc = nil
		}
		rc, err := s.stream()
		if err != nil {
			return err
		}
		s.rc, s.rcPos = rc, 0
	}
	if gap := s.pos - s.rcPos; gap > 0 {
		n, err := io.CopyN(io.Discard, s.rc, gap)
		s.rcPos += n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
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
