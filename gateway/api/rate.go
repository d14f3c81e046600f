package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is a request rate as the config and `grant create --rate` write it: "20/s",
// "600/m", "5000/h".
type Rate struct {
	Count  int
	Period time.Duration
}

// ParseRate reads "<n>/s|m|h" with n from 1 to 1,000,000.
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	count, err := strconv.Atoi(n)
	periods := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}
	period, known := periods[unit]
	if !ok || err != nil || !known || count < 1 || count > 1_000_000 {
		return Rate{}, fmt.Errorf("%q is not a rate such as \"20/s\" (a whole number from 1 to 1000000, per s, m or h)", s)
	}
	return Rate{Count: count, Period: period}, nil
}

func (r Rate) String() string {
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Period]
	return strconv.Itoa(r.Count) + "/" + unit
}
