package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"

	"github.com/workpool-go/workpool/benchmarks"
)

// results holds every measurement, by scenario, contender and unit, with
// the round each came from.
type results struct {
	obs    map[key]map[string]map[string]float64 // unit -> round -> value
	config map[string]string                     // the first result's file config (goos, cpu, ...)
	procs  string                                // GOMAXPROCS suffix of the names
}

type key struct{ scenario, contender string }

// stat is a median with its confidence interval; ok is false when there
// were too few values for the interval.
type stat struct {
	center, lo, hi float64
	n              int
	ok             bool
}

var nameRE = regexp.MustCompile(`^Compare/([^/]+)/([^/]+)/.*?(?:-(\d+))?$`)

func parse(r io.Reader) (*results, error) {
	res := &results{obs: map[key]map[string]map[string]float64{}, config: map[string]string{}}
	br := benchfmt.NewReader(r, "raw.txt")
	for br.Scan() {
		rec, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue // a syntax error line: the raw file keeps it
		}
		m := nameRE.FindStringSubmatch(string(rec.Name))
		if m == nil {
			continue
		}
		if len(res.config) == 0 {
			for _, c := range rec.Config {
				res.config[c.Key] = string(c.Value)
			}
			res.procs = m[3]
		}
		k := key{m[1], m[2]}
		if res.obs[k] == nil {
			res.obs[k] = map[string]map[string]float64{}
		}
		round := rec.GetConfig("round")
		for _, v := range rec.Values {
			unit, val := v.Unit, v.Value
			if v.OrigUnit != "" {
				unit, val = v.OrigUnit, v.OrigValue
			}
			if res.obs[k][unit] == nil {
				res.obs[k][unit] = map[string]float64{}
			}
			res.obs[k][unit][round] = val
		}
	}
	if err := br.Err(); err != nil {
		return nil, err
	}
	if len(res.obs) == 0 {
		return nil, fmt.Errorf("no benchmark results parsed")
	}
	return res, nil
}

// has reports whether contender c has results in scenario s.
func (r *results) has(s, c string) bool { return r.obs[key{s, c}] != nil }

// median summarises the values of one unit over the rounds.
func (r *results) median(s, c, unit string) (stat, bool) {
	by := r.obs[key{s, c}][unit]
	if len(by) == 0 {
		return stat{}, false
	}
	vals := make([]float64, 0, len(by))
	for _, v := range by {
		vals = append(vals, v)
	}
	return summarise(vals), true
}

// ratio is the median over rounds of c's value divided by the reference's
// value in the same round: paired, so drift between rounds cancels.
func (r *results) ratio(s, c, unit string) (stat, bool) {
	mine, ref := r.obs[key{s, c}][unit], r.obs[key{s, benchmarks.Reference}][unit]
	var vals []float64
	for round, v := range mine {
		if b, ok := ref[round]; ok && b > 0 {
			vals = append(vals, v/b)
		}
	}
	if len(vals) == 0 {
		return stat{}, false
	}
	return summarise(vals), true
}

func summarise(vals []float64) stat {
	slices.Sort(vals)
	t := benchmath.DefaultThresholds
	sum := benchmath.AssumeNothing.Summary(benchmath.NewSample(vals, &t), 0.95)
	ok := !math.IsInf(sum.Lo, 0) && !math.IsInf(sum.Hi, 0) && !math.IsNaN(sum.Lo) && len(vals) > 1
	for _, w := range sum.Warnings {
		if strings.Contains(w.Error(), "need") {
			ok = false
		}
	}
	return stat{center: sum.Center, lo: sum.Lo, hi: sum.Hi, n: len(vals), ok: ok}
}
