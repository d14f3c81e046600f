package acceptance

import "time"

// Timeouts lives in one place so a slow machine changes one file, not every spec.
var Timeouts = struct {
	Boot      time.Duration // a whole world, binaries included
	Teardown  time.Duration // processes gone after Down
	Request   time.Duration // one HTTP call or SQL statement
	Readiness time.Duration // a service's readiness following a stop or start
	CLI       time.Duration // one run of a CLI binary
	Poll      time.Duration
}{
	Boot:      5 * time.Minute,
	Teardown:  20 * time.Second,
	Request:   10 * time.Second,
	Readiness: 30 * time.Second,
	CLI:       3 * time.Minute,
	Poll:      100 * time.Millisecond,
}
