package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// printTable writes the human table of one run.
func printTable(w io.Writer, rep report) {
	fmt.Fprintf(w, "%s at %s, %s, %d of %d instances stored (seed %d)\n", rep.Label, rep.Config.URL, rep.Started, rep.Stored, rep.Instances, rep.Config.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tc\treqs\terr\treq/s\tinst/s\tMB/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tsrv CPU ms/req\t")
	for _, r := range rep.Results {
		inst := ""
		if r.ItemsPerSec > 0 {
			inst = fmt.Sprintf("%.1f", r.ItemsPerSec)
		}
		if r.Requests == 0 {
			fmt.Fprintf(tw, "%s\t%d\t0\t%d\t–\t–\t–\t–\t–\t–\t–\t–\t\n", r.Phase, r.Concurrency, r.Errors)
			continue
		}
		cpu := "–"
		if r.ServerCPUms > 0 {
			cpu = fmt.Sprintf("%.3f", r.ServerCPUms)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n",
			r.Phase, r.Concurrency, r.Requests, r.Errors, r.ReqPerSec, inst, r.MBPerSec, r.P50ms, r.P90ms, r.P99ms, r.MaxMs, cpu)
	}
	tw.Flush()
	for _, r := range rep.Results {
		if r.Phase != staticPhase || r.ServerCPUms <= 0 {
			continue
		}
		for _, f := range rep.Results {
			if strings.HasPrefix(f.Phase, "wado frame") && f.Concurrency == r.Concurrency && f.ServerCPUms > 0 {
				fmt.Fprintf(w, "  frame c=%d: %s %.3f ms of server CPU per request, http.FileServer %.3f: %.2f×\n",
					r.Concurrency, rep.Label, f.ServerCPUms, r.ServerCPUms, f.ServerCPUms/r.ServerCPUms)
			}
		}
	}
	for _, r := range rep.Results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "  %s c=%d: %d errors, first: %s\n", r.Phase, r.Concurrency, r.Errors, r.FirstError)
		}
		if r.Stopped != "" {
			fmt.Fprintf(w, "  %s c=%d: stopped early: %s\n", r.Phase, r.Concurrency, r.Stopped)
		}
		if r.Note != "" && (strings.HasPrefix(r.Note, "skipped") || r.Phase == staticPhase && r.Concurrency == rep.Config.Concurrency[0]) {
			fmt.Fprintf(w, "  %s c=%d: %s\n", r.Phase, r.Concurrency, r.Note)
		}
	}
}

func readReport(path string) (report, error) {
	var rep report
	b, err := os.ReadFile(path)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// cmdCompare prints a Markdown table of two runs of the same load: BASE
// (the yardstick) and NEW, with how many times NEW is faster per figure
// (BASE latency / NEW latency; NEW throughput / BASE throughput).
func cmdCompare(args []string, w io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: pacsbench compare BASE.json NEW.json")
	}
	base, err := readReport(args[0])
	if err != nil {
		return err
	}
	cur, err := readReport(args[1])
	if err != nil {
		return err
	}
	if base.Config.Seed != cur.Config.Seed || base.Instances != cur.Instances {
		fmt.Fprintf(w, "> warning: the runs did not send the same load (seed %d vs %d, %d vs %d instances)\n\n",
			base.Config.Seed, cur.Config.Seed, base.Instances, cur.Instances)
	}
	if base.Stored != cur.Stored {
		fmt.Fprintf(w, "> warning: the servers did not hold the same data: %s stored %d instances, %s %d (STOW cut by its time limit?)\n\n",
			base.Label, base.Stored, cur.Label, cur.Stored)
	}
	type key struct {
		phase string
		c     int
	}
	byKey := map[key]result{}
	for _, r := range base.Results {
		byKey[key{r.Phase, r.Concurrency}] = r
	}
	b, n := base.Label, cur.Label
	fmt.Fprintf(w, "| phase | c | %s p50 ms | %s p50 ms | p50 × | %s p99 ms | %s p99 ms | p99 × | %s /s | %s /s | /s × |\n", b, n, b, n, b, n)
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range cur.Results {
		o, ok := byKey[key{r.Phase, r.Concurrency}]
		if !ok {
			continue
		}
		rate := func(x result) float64 {
			if x.ItemsPerSec > 0 {
				return x.ItemsPerSec // instances/s for STOW
			}
			return x.ReqPerSec
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Phase, r.Concurrency,
			fig(o.P50ms, o), fig(r.P50ms, r), times(o.P50ms, r.P50ms, o, r),
			fig(o.P99ms, o), fig(r.P99ms, r), times(o.P99ms, r.P99ms, o, r),
			fig(rate(o), o), fig(rate(r), r), times(rate(r), rate(o), o, r))
	}
	fmt.Fprintf(w, "\n× = how many times faster %s is than %s (latency: %s/%s; throughput: %s/%s). /s is instances/s for STOW, requests/s otherwise.\n",
		n, b, b, n, n, b)
	for _, r := range cur.Results {
		o := byKey[key{r.Phase, r.Concurrency}]
		for _, x := range []result{o, r} {
			if x.Errors > 0 {
				fmt.Fprintf(w, "\n- %s %s c=%d: %d errors, first: %s", labelOf(x, o, base.Label, cur.Label), x.Phase, x.Concurrency, x.Errors, x.FirstError)
			}
		}
	}
	fmt.Fprintln(w)
	return nil
}

func labelOf(x, base result, baseLabel, curLabel string) string {
	if x == base {
		return baseLabel
	}
	return curLabel
}

// fig formats a figure; a phase with errors or no requests is flagged.
func fig(v float64, r result) string {
	if r.Requests == 0 {
		return "–"
	}
	s := fmt.Sprintf("%.2f", v)
	if v >= 100 {
		s = fmt.Sprintf("%.0f", v)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf(" (%d err)", r.Errors)
	}
	return s
}

// times is num/den formatted as a ratio, or "–" when it means nothing.
func times(num, den float64, a, b result) string {
	if a.Requests == 0 || b.Requests == 0 || num <= 0 || den <= 0 {
		return "–"
	}
	x := num / den
	if x >= 10 {
		return fmt.Sprintf("%.0f×", x)
	}
	return fmt.Sprintf("%.1f×", x)
}
