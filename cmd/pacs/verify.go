package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/cloudpacs/pacs/internal/storage"
)

// verify re-hashes every indexed instance (storage.Archive.VerifyWith),
// prints each problem and then a summary on stdout, and fails (exit 1)
// when any instance is damaged, missing or unreadable. While it runs, a
// progress line (instances and bytes so far, rate, elapsed time) goes to
// stderr if that is a terminal.
func verify(ctx context.Context, cfg toolConfig, stdout, stderr io.Writer, log *slog.Logger) error {
	a, err := openArchive(ctx, cfg.storeConfig, log)
	if err != nil {
		return err
	}
	defer a.Index.Close()
	start := time.Now()
	bar := newVerifyBar(stderr)
	st, err := a.VerifyWith(ctx, storage.VerifyOptions{
		Problem: func(in *storage.Instance, err error) error {
			if bar != nil {
				_ = bar.Clear() // the line is drawn again on the next update
			}
			fmt.Fprintf(stdout, "%s study=%s series=%s blob=%s: %v\n", in.SOPInstanceUID, in.StudyInstanceUID, in.SeriesInstanceUID, in.BlobKey, err)
			return nil
		},
		Progress: func(s storage.VerifyStats) {
			if bar != nil {
				bar.Describe(fmt.Sprintf("verify: %d instances, %d problems", s.Instances, s.Problems()))
				_ = bar.Set64(s.Bytes)
			}
		},
	})
	if bar != nil {
		_ = bar.Clear()
	}
	fmt.Fprintln(stdout, verifySummary(st, time.Since(start)))
	switch {
	case err != nil:
		return fmt.Errorf("verify: stopped: %w", err)
	case st.Problems() > 0:
		return fmt.Errorf("verify: %d damaged, missing or unreadable instance(s)", st.Problems())
	}
	fmt.Fprintln(stdout, "verify: every instance matches its SHA-256")
	return nil
}

// verifySummary is the last line of pacs verify, e.g.
//
//	verify: 3 instances checked, 1270 bytes (1.3 kB) in 12ms: 1 damaged, 1 missing, 0 unreadable
func verifySummary(st storage.VerifyStats, took time.Duration) string {
	return fmt.Sprintf("verify: %d instances checked, %d bytes (%s) in %v: %d damaged, %d missing, %d unreadable",
		st.Instances, st.Bytes, humanize.Bytes(uint64(st.Bytes)), took.Round(time.Millisecond), st.Damaged, st.Missing, st.Unreadable)
}

// newVerifyBar is the progress line of pacs verify on w, or nil when w
// is not a terminal (a log file, a pipe, a test). The total is not known
// up front (the index is walked, not counted), so it is a spinner with
// the bytes hashed, the rate and the elapsed time.
func newVerifyBar(w io.Writer) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("verify"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
	)
}
