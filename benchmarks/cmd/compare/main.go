// Command compare runs the side-by-side benchmarks of this module in
// interleaved rounds and writes a Markdown report, a chart and the raw
// benchmark output.
//
//	go run ./cmd/compare -quick    # about a minute
//	go run ./cmd/compare           # full: more rounds, longer benchtime
//
// Each round runs every contender of every scenario once (in an order
// shuffled per round), so a contender and the channel-pool reference are
// always measured close together in time. The report's ratios are medians
// of those per-round ratios, which is what a noisy shared machine allows
// one to trust.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type mode struct {
	rounds     int    // interleaved rounds of the timed scenarios
	benchtime  string // per sub-benchmark and round
	memRounds  int    // runs of the memory scenario (one iteration each)
	timedRegex string // the scenarios run in rounds
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("compare: ")
	quick := flag.Bool("quick", false, "a quick run (about a minute) instead of the full one")
	count := flag.Int("count", 0, "interleaved rounds (default 6 quick, 15 full)")
	benchtime := flag.String("benchtime", "", "go test -benchtime per sub-benchmark and round (default 100ms quick, 300ms full)")
	out := flag.String("out", "results", "directory for results.md, chart.png and raw.txt")
	from := flag.String("from", "", "redraw the report and chart from this raw.txt instead of running")
	flag.Parse()

	m := mode{rounds: 15, benchtime: "300ms", memRounds: 3,
		timedRegex: "^BenchmarkCompare$/^(serial|parallel|cpu|sleep|retry)$/"}
	if *quick {
		m.rounds, m.benchtime, m.memRounds = 6, "100ms", 1
	}
	if *count > 0 {
		m.rounds = *count
	}
	if *benchtime != "" {
		m.benchtime = *benchtime
	}
	if *from != "" {
		if err := redraw(*from, *out); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(m, *out); err != nil {
		log.Fatal(err)
	}
}

func run(m mode, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "compare")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "bench.test")
	log.Printf("building %s", bin)
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the benchmarks: %w", err)
	}

	started := time.Now().UTC()
	var raw bytes.Buffer
	for _, kv := range describe(m, started) {
		fmt.Fprintf(&raw, "%s: %s\n", kv[0], kv[1])
	}
	for r := 1; r <= m.rounds; r++ {
		log.Printf("round %d of %d", r, m.rounds)
		if err := bench(bin, &raw, fmt.Sprint(r), m.timedRegex, m.benchtime); err != nil {
			return err
		}
	}
	for r := 1; r <= m.memRounds; r++ {
		log.Printf("memory scenario, run %d of %d", r, m.memRounds)
		if err := bench(bin, &raw, fmt.Sprintf("m%d", r), "^BenchmarkCompare$/^memory$/", "1x"); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(out, "raw.txt"), raw.Bytes(), 0o644); err != nil {
		return err
	}
	if err := report(raw.Bytes(), out); err != nil {
		return err
	}
	log.Printf("wrote %s/results.md, chart.png and raw.txt in %s", out, time.Since(started).Round(time.Second))
	return nil
}

// redraw writes the report and chart from a raw.txt of an earlier run.
func redraw(from, out string) error {
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return report(raw, out)
}

func report(raw []byte, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	res, err := parse(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	var md bytes.Buffer
	writeReport(&md, res)
	if err := os.WriteFile(filepath.Join(out, "results.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	return writeChart(filepath.Join(out, "chart.png"), res)
}

// bench runs the test binary once and appends its output to raw, preceded
// by a "round: id" configuration line that benchfmt attaches to every
// result that follows.
func bench(bin string, raw io.Writer, round, regex, benchtime string) error {
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", regex,
		"-test.benchtime", benchtime, "-test.count", "1")
	cmd.Env = append(os.Environ(), "WORKPOOL_BENCH_SEED="+strings.TrimPrefix(round, "m"))
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	err := cmd.Run()
	fmt.Fprintf(raw, "round: %s\n", round)
	raw.Write(closingLines.ReplaceAll(stdout.Bytes(), nil))
	if err != nil {
		os.Stderr.Write(stdout.Bytes())
		return fmt.Errorf("round %s: %w", round, err)
	}
	if !bytes.Contains(stdout.Bytes(), []byte("\nBenchmarkCompare/")) {
		return fmt.Errorf("round %s: -bench %q ran no benchmark", round, regex)
	}
	return nil
}

// closingLines drops the closing PASS/ok lines so that raw.txt reads as
// one benchmark file.
var closingLines = regexp.MustCompile(`(?m)^(PASS|ok\s.*)\n`)
