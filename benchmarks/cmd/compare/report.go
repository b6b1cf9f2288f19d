package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/workpool-go/workpool/benchmarks"
)

// describe returns what raw.txt records about the run, as benchfmt
// configuration lines ("key: value") that the report reads back.
func describe(m mode, started time.Time) [][2]string {
	// The last commit that changed the library, not this module.
	commit := strings.TrimSpace(output("git", "-C", "..", "log", "-1", "--format=%h", "--", ".", ":!benchmarks"))
	if dirty := output("git", "-C", "..", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks"); dirty != "" {
		commit += " with uncommitted library changes"
	}
	return [][2]string{
		{"date", started.Format("2006-01-02 15:04 MST")},
		{"go", strings.TrimSpace(output("go", "version"))},
		{"machine", fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())},
		{"command", strings.TrimSpace("go run ./cmd/compare " + strings.Join(os.Args[1:], " "))},
		{"mode", fmt.Sprintf("%d interleaved rounds at -benchtime %s; memory scenario %d run(s) of one iteration",
			m.rounds, m.benchtime, m.memRounds)},
		{"workpool", commit},
		{"load", loadAverage() + " (1, 5, 15-minute load average at the start)"},
	}
}

// loadAverage reads the machine's load, which says how much the run shared
// the CPUs with other work.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return string(out)
}

func writeReport(w io.Writer, res *results) {
	c := res.config
	fmt.Fprintf(w, "# workpool side by side\n\n")
	fmt.Fprintf(w, "- date: %s\n- machine: %s, %s, GOMAXPROCS=%s; load %s\n- %s\n- command: `%s` (%s)\n- workpool: %s\n\n",
		c["date"], c["machine"], c["cpu"], res.procs, c["load"], c["go"], c["command"], c["mode"], c["workpool"])
	fmt.Fprintf(w, "Every number is a median over rounds; ratios are medians of per-round ratios to the "+
		"`%s` reference measured in the same round (lower is better, 1.00× = as fast as a bare buffered channel). "+
		"Brackets are 95%% confidence intervals (benchmath, no distributional assumption). "+
		"Every run checked that each submitted job ran exactly once.\n\n", benchmarks.Reference)

	writeMatrix(w, res)
	for _, s := range benchmarks.Scenarios {
		writeScenario(w, res, s)
	}
	fmt.Fprintf(w, "## Contenders\n\n")
	for _, c := range benchmarks.Contenders() {
		fmt.Fprintf(w, "- **%s**: %s\n", c.Name, c.Note)
	}
}

// writeMatrix is the one-glance table: contender × scenario, ratio to the
// reference of each scenario's main metric.
func writeMatrix(w io.Writer, res *results) {
	fmt.Fprintf(w, "## Ratio to the channel pool\n\n| contender |")
	for _, s := range benchmarks.Scenarios {
		fmt.Fprintf(w, " %s (%s) |", s.Name, s.Metric)
	}
	fmt.Fprintf(w, "\n|---|")
	for range benchmarks.Scenarios {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, c := range benchmarks.Contenders() {
		fmt.Fprintf(w, "| %s |", c.Name)
		for _, s := range benchmarks.Scenarios {
			r, ok := res.ratio(s.Name, c.Name, s.Metric)
			switch {
			case benchmarks.SkipReason(s.Name, c) != "":
				fmt.Fprintf(w, " skipped |")
			case !ok:
				fmt.Fprintf(w, " – |")
			default:
				fmt.Fprintf(w, " %s |", fmtRatio(r.center))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func writeScenario(w io.Writer, res *results, s benchmarks.Scenario) {
	fmt.Fprintf(w, "## %s\n\n`%s/*/%s`: %s.\n\n", s.Title, s.Name, s.Shape(), s.Desc)
	extra := ""
	switch s.Name {
	case "retry":
		extra = "drops/op"
	case "memory":
		extra = "queued-jobs"
	case "cpu":
		extra = "job-ns"
	}
	// The memory scenario's allocations are those of queueing 10^6 jobs
	// once, which says nothing per job: B/job is its figure.
	allocs := s.Name != "memory"
	fmt.Fprintf(w, "| contender | %s | 95%% CI | × %s | 95%% CI |", s.Metric, benchmarks.Reference)
	if allocs {
		fmt.Fprintf(w, " B/op | allocs/op |")
	}
	if extra != "" {
		fmt.Fprintf(w, " %s |", extra)
	}
	fmt.Fprintf(w, "\n|---|---:|---|---:|---|")
	if allocs {
		fmt.Fprintf(w, "---:|---:|")
	}
	if extra != "" {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w)
	var skipped []string
	for _, c := range benchmarks.Contenders() {
		if why := benchmarks.SkipReason(s.Name, c); why != "" {
			skipped = append(skipped, fmt.Sprintf("- %s: %s", c.Name, why))
			continue
		}
		if !res.has(s.Name, c.Name) {
			continue
		}
		v, _ := res.median(s.Name, c.Name, s.Metric)
		r, _ := res.ratio(s.Name, c.Name, s.Metric)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |", c.Name,
			fmtUnit(v.center, s.Metric), fmtCI(v, s.Metric), fmtRatio(r.center), fmtCI(r, "×"))
		if allocs {
			fmt.Fprintf(w, " %s | %s |", fmtMedian(res, s.Name, c.Name, "B/op"), fmtMedian(res, s.Name, c.Name, "allocs/op"))
		}
		if extra != "" {
			fmt.Fprintf(w, " %s |", fmtMedian(res, s.Name, c.Name, extra))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	if len(skipped) > 0 {
		fmt.Fprintf(w, "Not run:\n%s\n\n", strings.Join(skipped, "\n"))
	}
	if s.Name == "memory" {
		fmt.Fprintf(w, "Contenders that hold a waiting job in a goroutine were measured with %d jobs, not %d.\n\n",
			benchmarks.MemoryJobsGoroutine, benchmarks.MemoryJobs)
	}
}

func fmtMedian(res *results, s, c, unit string) string {
	v, ok := res.median(s, c, unit)
	if !ok {
		return "–"
	}
	return fmtUnit(v.center, unit)
}

func fmtCI(v stat, unit string) string {
	if !v.ok {
		return fmt.Sprintf("n=%d, too few", v.n)
	}
	if unit == "×" {
		return fmt.Sprintf("[%.2f, %.2f]", v.lo, v.hi)
	}
	return fmt.Sprintf("[%s, %s]", fmtUnit(v.lo, unit), fmtUnit(v.hi, unit))
}

func fmtRatio(r float64) string { return fmt.Sprintf("%.2f×", r) }

func fmtUnit(v float64, unit string) string {
	switch unit {
	case "ns/op":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2f ms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.2f µs", v/1e3)
		default:
			return fmt.Sprintf("%.1f ns", v)
		}
	case "drops/op":
		return fmt.Sprintf("%.3g", v)
	case "B/job":
		return fmt.Sprintf("%.1f B", v)
	case "job-ns":
		return fmt.Sprintf("%.0f ns", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
