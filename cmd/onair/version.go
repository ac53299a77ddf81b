package main

import (
	"fmt"
	"io"

	"github.com/onair/onair/internal/version"
)

// runVersion prints the release, the commit and the Go that built onair.
func runVersion(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "onair version takes no arguments, got %q\n", args[0])
		return errUsage
	}
	fmt.Fprintln(stdout, version.String())
	return nil
}
