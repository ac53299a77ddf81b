// Package version names the build of onair: the release it belongs to, the
// commit it was built from and the Go that built it. `onair version` prints
// it and /healthz carries the release.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Default is the release this source tree is, used when the build does not
// set one. Raise it with each entry of CHANGELOG.md.
const Default = "0.1.0"

// release is set at link time by the Makefile when the commit is tagged:
// -ldflags "-X github.com/onair/onair/internal/version.release=v0.1.0".
// Empty means Default.
var release string

// commit is set at link time by the Makefile (git rev-parse HEAD), for
// builds where the toolchain does not stamp the revision (-buildvcs=false).
var commit string

// Release returns the release: the tag the Makefile passed, else Default.
func Release() string {
	if release != "" {
		return release
	}
	return Default
}

// Commit returns the commit the Makefile passed, else the VCS revision the
// Go toolchain stamped into the binary ("+dirty" when the tree had changes),
// else "unknown" (go run, go test, -buildvcs=false, or a build outside a git
// checkout).
func Commit() string {
	if commit != "" {
		return commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

// String is the line `onair version` prints:
// "onair 0.1.0 (commit 3bc90a6…, go1.26.8 linux/amd64)".
func String() string {
	return fmt.Sprintf("onair %s (commit %s, %s %s/%s)", Release(), Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
