package acceptance

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
)

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

// startsFirst marks specs that mostly wait on a clock (certificates that live minutes,
// an index build): Ginkgo schedules them before the rest, so they wait while other
// processes run the short specs, instead of one started last making the whole run
// wait for it.
var startsFirst = SpecPriority(1)
