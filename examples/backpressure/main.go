// Command backpressure feeds a large input into a workpool with SubmitWait:
// when the workers fall behind, the producer blocks instead of dropping lines
// or buffering them without bound. It shows its progress on stderr (a bar
// with the rate and the time left on a terminal, a plain line every
// -progress interval otherwise) and prints a summary to stdout.
//
//	go run ./examples/backpressure                  # 10^6 generated lines
//	go run ./examples/backpressure -input big.txt   # or a file, one job per line
//	seq 100000 | go run ./examples/backpressure -input -   # or standard input
//
// Each job hashes its line with SHA-256 and folds the digest into an
// order-independent checksum, so the summary is the same for every run over
// the same input, however the workers interleave.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is what the flags set. run takes it whole, so a test can run the
// program small.
type config struct {
	Input           string        // file to read, one job per line; "" generates Lines lines
	Lines           int           // lines to generate when Input is ""
	Workers         int           // pool workers
	Queue           int           // pool queue size
	Work            time.Duration // simulated extra latency per line; 0 for none
	Progress        time.Duration // interval between progress lines; 0 for none
	ShutdownTimeout time.Duration // longest wait for queued lines after the input ends
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return // -h: the usage is printed
	case err != nil:
		os.Exit(2) // the problem and the usage are printed
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdin, os.Stdout, os.Stderr); err != nil {
		stop()
		log.Fatal(err)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("backpressure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.Input, "input", "", "read jobs from this file (- for standard input), one per line, instead of generating them")
	fs.IntVar(&cfg.Lines, "lines", 1_000_000, "lines to generate when -input is not given")
	fs.IntVar(&cfg.Workers, "workers", 8, "pool workers")
	fs.IntVar(&cfg.Queue, "queue", 1024, "pool queue size")
	fs.DurationVar(&cfg.Work, "work", 0, "simulated extra latency per line, such as 50us")
	fs.DurationVar(&cfg.Progress, "progress", time.Second, "interval between progress lines on stderr when it is not a terminal (a terminal gets a bar); 0 disables progress")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "longest wait for queued lines at the end")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %q", fs.Args())
		fmt.Fprintln(stderr, err)
		return config{}, err
	}
	return cfg, nil
}

func (c config) validate() error {
	var errs []error
	if c.Input == "" && c.Lines < 0 {
		errs = append(errs, fmt.Errorf("-lines must not be negative, got %d", c.Lines))
	}
	if c.Work < 0 {
		errs = append(errs, fmt.Errorf("-work must not be negative, got %v", c.Work))
	}
	if c.Progress < 0 {
		errs = append(errs, fmt.Errorf("-progress must not be negative, got %v", c.Progress))
	}
	return errors.Join(errs...) // workers, queue and shutdown timeout are checked by workpool.New
}
