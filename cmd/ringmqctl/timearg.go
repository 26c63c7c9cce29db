package main

// Time arguments of --begin, --end and --timestamp.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseTimeArg reads a point in time as milliseconds since the epoch: "now", a duration
// before now ("-1h30m"), an RFC 3339 time ("2026-11-21T08:00:00Z"), a date and time in UTC
// ("2026-11-21 08:00:00"), or a number of milliseconds since the epoch.
func parseTimeArg(s string, now time.Time) (int64, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "now":
		return now.UnixMilli(), nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("time %q: %w", s, err)
		}
		return now.Add(d).UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("time %q: want now, -DURATION, RFC 3339, \"YYYY-MM-DD hh:mm:ss\" (UTC) or epoch milliseconds", s)
}

// formatMs spells epoch milliseconds as an RFC 3339 UTC time.
func formatMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
