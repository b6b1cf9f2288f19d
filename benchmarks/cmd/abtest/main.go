// Command abtest compares the workpool package's own benchmarks (or, with
// -pkg benchmarks, the side-by-side ones) at two revisions on this machine,
// in interleaved rounds, and reports per-round paired ratios: on a shared or bimodal machine the speed drifts between
// rounds, and a ratio taken within one round cancels most of that drift,
// where two separate benchstat samples do not.
//
//	go run ./cmd/abtest [flags] BASE [CAND]
//
// BASE and CAND are git revisions of the repository; CAND defaults to the
// working tree. Each is built once (go test -c), then every round runs
// both binaries once, in alternating order, with -test.count 1. The raw
// outputs are written to -out as base.txt and cand.txt, for benchstat.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "abtest:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("abtest", flag.ContinueOnError)
	rounds := fs.Int("n", 10, "rounds; each runs both binaries once")
	bench := fs.String("bench", "BenchmarkSubmit$|BenchmarkSubmitParallel$|BenchmarkSubmitPaced$", "benchmarks to run (-test.bench)")
	benchtime := fs.String("benchtime", "200ms", "-test.benchtime per run")
	tags := fs.String("tags", "", "build tags, e.g. workpool_counters")
	out := fs.String("out", "", "directory for base.txt and cand.txt (default: a new temporary one)")
	pkg := fs.String("pkg", ".", "the package to build, relative to the repository root (benchmarks: the side-by-side scenarios)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || *rounds < 1 {
		return fmt.Errorf("usage: abtest [-n rounds] [-bench re] [-benchtime d] [-tags t] [-pkg dir] [-out dir] BASE [CAND]")
	}
	if !filepath.IsLocal(*pkg) {
		return fmt.Errorf("-pkg %q: want a directory inside the repository, relative to its root", *pkg)
	}
	root, err := gitOutput("", "rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "abtest"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cand := ""
	if fs.NArg() == 2 {
		cand = fs.Arg(1)
	}
	bins := [2]string{filepath.Join(dir, "base.test"), filepath.Join(dir, "cand.test")}
	for i, rev := range []string{fs.Arg(0), cand} {
		if err := build(root, rev, *pkg, *tags, bins[i]); err != nil {
			return err
		}
	}
	outputs := [2]*strings.Builder{{}, {}}
	for r := range *rounds {
		order := [2]int{0, 1}
		if r%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, i := range order {
			cmd := exec.Command(bins[i], "-test.run", "^$", "-test.bench", *bench,
				"-test.benchtime", *benchtime, "-test.count", "1")
			cmd.Stderr = os.Stderr
			b, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("round %d, %s: %v", r+1, bins[i], err)
			}
			outputs[i].Write(b)
		}
		fmt.Fprintf(os.Stderr, "abtest: round %d of %d done\n", r+1, *rounds)
	}
	for i, name := range []string{"base.txt", "cand.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(outputs[i].String()), 0o644); err != nil {
			return err
		}
	}
	label := cand
	if label == "" {
		label = "working tree"
	}
	fmt.Fprintf(stdout, "base %s, cand %s; %d rounds; raw output in %s\n", fs.Arg(0), label, *rounds, dir)
	report(stdout, parse(outputs[0].String()), parse(outputs[1].String()))
	return nil
}

// build compiles the test binary of package pkg (a directory relative to
// the repository root) at rev (the working tree if rev is ""), in a
// temporary git worktree.
func build(root, rev, pkg, tags, bin string) error {
	src := root
	if rev != "" {
		wt, err := os.MkdirTemp("", "abtest-src")
		if err != nil {
			return err
		}
		os.Remove(wt) // git worktree add wants to create it
		if _, err := gitOutput(root, "worktree", "add", "--detach", "-q", wt, rev); err != nil {
			return err
		}
		defer gitOutput(root, "worktree", "remove", "--force", wt)
		src = wt
	}
	args := []string{"test", "-c", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = filepath.Join(src, pkg), os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %q: %v", rev, err)
	}
	return nil
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}
