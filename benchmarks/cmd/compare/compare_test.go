package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaks, exempting the goroutines already running: this
// package imports the adapters, and with them ants, whose package-level
// default pool starts two goroutines at program start.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// Two rounds where the reference's speed drifts: the paired ratio sees
// through the drift that the unpaired medians carry.
const sample = `date: 2026-01-01 00:00 UTC
cpu: Test CPU
round: 1
BenchmarkCompare/serial/chan/workers=2/queue=1024-2   1000  100 ns/op  0 B/op  0 allocs/op
BenchmarkCompare/serial/workpool/workers=2/queue=1024-2   1000  90 ns/op  0 B/op  0 allocs/op
BenchmarkCompare/retry/chan/workers=2/queue=1024-2   1000  50 ns/op  0.5 drops/op  0 B/op  0 allocs/op
round: 2
BenchmarkCompare/serial/workpool/workers=2/queue=1024-2   1000  180 ns/op  0 B/op  0 allocs/op
BenchmarkCompare/serial/chan/workers=2/queue=1024-2   1000  200 ns/op  0 B/op  0 allocs/op
--- SKIP: BenchmarkCompare/retry/conc/workers=2/queue=1024
`

func TestParseAndRatio(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.procs; got != "2" {
		t.Errorf("procs = %q; want 2", got)
	}
	if got := res.config["cpu"]; got != "Test CPU" {
		t.Errorf("config[cpu] = %q; want Test CPU", got)
	}
	r, ok := res.ratio("serial", "workpool", "ns/op")
	if !ok || r.center < 0.8999 || r.center > 0.9001 || r.n != 2 {
		t.Errorf("ratio(serial, workpool) = %+v, %v; want center 0.9 over 2 rounds", r, ok)
	}
	m, ok := res.median("retry", "chan", "drops/op")
	if !ok || m.center != 0.5 {
		t.Errorf("median(retry, chan, drops/op) = %+v, %v; want 0.5", m, ok)
	}
	if _, ok := res.ratio("serial", "pond", "ns/op"); ok {
		t.Error("ratio(serial, pond) reported; want none for a contender without results")
	}
}

func TestReportMentionsSkips(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	writeReport(&md, res)
	for _, want := range []string{"| workpool | 0.90× |", "conc: no non-blocking submit", "Test CPU"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}
