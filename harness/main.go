// Command harness boots a complete two-site (or larger) Mosaic federation world on this
// machine — per site step-ca, PostgreSQL with pgvector, Valkey and a gateway — and
// keeps it running until Ctrl-C (`up`), or in the background (`up --detach`, then
// `status` and `down`).
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"
)

func main() {
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
