// Command harness boots a complete two-site (or larger) Mosaic federation world on this
// machine — per site step-ca, PostgreSQL with pgvector, Valkey and a gateway — and
// keeps it running until Ctrl-C (`up`), or in the background (`up --detach`, then
// `status` and `down`).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	// A write to a closed stdout or stderr (`make up | tee log` in a terminal that
	// closes) must fail with EPIPE, not kill the harness mid-teardown: the Go runtime
	// exits on SIGPIPE from fds 1 and 2 unless the program is notified of it. Every
	// write of progress and teardown messages ignores its error.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	root := &cobra.Command{
		Use:           "harness",
		Short:         "Boot and drive a multi-site Mosaic federation world",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(upCmd(), superviseCmd(), statusCmd(), downCmd(), benchCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func numCPU() int { return runtime.NumCPU() }
