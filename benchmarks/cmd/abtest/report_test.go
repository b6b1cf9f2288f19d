package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

const baseOut = `goos: linux
BenchmarkSubmit/chan/workers=2/queue=1024-2   	 100	        60.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkSubmit/submit/workers=2/queue=1024-2 	 100	       120.0 ns/op	         0.5 yields/job	       0 B/op
PASS
BenchmarkSubmit/chan/workers=2/queue=1024-2   	 100	        62.0 ns/op
BenchmarkSubmit/submit/workers=2/queue=1024-2 	 100	       130.0 ns/op
BenchmarkSubmit/chan/workers=2/queue=1024-2   	 100	        58.0 ns/op
BenchmarkSubmit/submit/workers=2/queue=1024-2 	 100	        90.0 ns/op
`

const candOut = `BenchmarkSubmit/chan/workers=2/queue=1024-2   	 100	        61.0 ns/op
BenchmarkSubmit/submit/workers=2/queue=1024-2 	 100	        60.0 ns/op
BenchmarkSubmit/chan/workers=2/queue=1024-2   	 100	        60.0 ns/op
BenchmarkSubmit/submit/workers=2/queue=1024-2 	 100	        65.0 ns/op
BenchmarkSubmit/chan/workers=2/queue=1024-2   	 100	        59.0 ns/op
BenchmarkSubmit/submit/workers=2/queue=1024-2 	 100	        99.0 ns/op
`

func TestParse(t *testing.T) {
	got := parse(baseOut)
	want := parsed{
		names: []string{"BenchmarkSubmit/chan/workers=2/queue=1024-2", "BenchmarkSubmit/submit/workers=2/queue=1024-2"},
		runs: map[string][]float64{
			"BenchmarkSubmit/chan/workers=2/queue=1024-2":   {60, 62, 58},
			"BenchmarkSubmit/submit/workers=2/queue=1024-2": {120, 130, 90},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parse = %+v; want %+v", got, want)
	}
}

// TestReport checks the pairing: ratios are taken round by round (60/120,
// 65/130, 99/90), not between the two medians.
func TestReport(t *testing.T) {
	var b strings.Builder
	report(&b, parse(baseOut), parse(candOut))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("report has %d lines; want a header and 2:\n%s", len(lines), b.String())
	}
	for _, want := range []string{"120.0", "65.0", "0.50", "[0.50, 1.10]", "2/3"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("submit line %q lacks %q", lines[2], want)
		}
	}
	for _, want := range []string{"60.0", "1.02", "[0.97, 1.02]", "1/3"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("chan line %q lacks %q", lines[1], want)
		}
	}
}

// TestPkgMustBeLocal checks that -pkg names a directory inside the
// repository: abtest builds it inside a worktree of each revision.
func TestPkgMustBeLocal(t *testing.T) {
	for _, pkg := range []string{"../elsewhere", "/tmp", ""} {
		err := run([]string{"-pkg", pkg, "HEAD"}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-pkg") {
			t.Errorf("abtest -pkg %q HEAD = %v; want an error about -pkg", pkg, err)
		}
	}
}
