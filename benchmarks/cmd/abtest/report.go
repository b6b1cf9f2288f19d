package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// parsed is one binary's results: each benchmark's ns/op values in the
// order they were run, and the benchmarks in the order first seen.
type parsed struct {
	names []string
	runs  map[string][]float64
}

// parse reads go test -bench output.
func parse(out string) parsed {
	var names []string
	runs := make(map[string][]float64)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] != "ns/op" {
				continue
			}
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			if _, ok := runs[f[0]]; !ok {
				names = append(names, f[0])
			}
			runs[f[0]] = append(runs[f[0]], v)
		}
	}
	return parsed{names, runs}
}

// report prints, per benchmark, the medians, the median of the per-round
// ratios cand/base with their range, and in how many rounds cand was faster.
// Rounds are paired by position: the k-th run of a benchmark in each output.
func report(w io.Writer, base, cand parsed) {
	names, b, c := base.names, base.runs, cand.runs
	fmt.Fprintf(w, "%-58s %10s %10s %7s %15s %7s\n", "benchmark", "base ns/op", "cand ns/op", "ratio", "range", "faster")
	for _, n := range names {
		bs, cs := b[n], c[n]
		k := min(len(bs), len(cs))
		if k == 0 {
			continue
		}
		ratios := make([]float64, k)
		faster := 0
		for i := range k {
			ratios[i] = cs[i] / bs[i]
			if cs[i] < bs[i] {
				faster++
			}
		}
		slices.Sort(ratios)
		fmt.Fprintf(w, "%-58s %10.1f %10.1f %7.2f %15s %4d/%d\n", n, median(bs[:k]), median(cs[:k]), median(ratios),
			fmt.Sprintf("[%.2f, %.2f]", ratios[0], ratios[k-1]), faster, k)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
