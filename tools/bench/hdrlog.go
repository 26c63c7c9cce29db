package bench

import (
	"fmt"
	"io"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// hdrLog writes HdrHistogram interval logs (format 1.3, as Java's HistogramLogWriter):
//
//	#[Histogram log format version 1.3]
//	#[StartTime: 1795238134.515 (seconds since epoch), 2026-11-21T06:00:00Z]
//	#[BaseTime: 1795238134.515 (seconds since epoch)]
//	"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//	Tag=publish,10.000,10.000,1.234,HISTFAAA...
//
// Timestamps are seconds since BaseTime, values are nanoseconds, Interval_Max is in
// milliseconds. One line per metric per report interval; summing the lines of any time
// range rebuilds that range's exact histogram. (hdrhistogram-go v1.1.2's writer prints the
// end time where the length belongs and mixes ms with s, so lines are formatted here.)
type hdrLog struct {
	w        io.Writer
	baseTime time.Time
}

func (l *hdrLog) header(start time.Time, comment string) error {
	l.baseTime = start
	secs := float64(start.UnixMilli()) / 1e3
	_, err := fmt.Fprintf(l.w, "#%s\n#[Histogram log format version 1.3]\n#[StartTime: %.3f (seconds since epoch), %s]\n#[BaseTime: %.3f (seconds since epoch)]\n%s\n",
		comment, secs, start.UTC().Format(time.RFC3339), secs,
		`"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"`)
	if err != nil {
		return fmt.Errorf("write hdr log header: %w", err)
	}
	return nil
}

// interval writes one histogram covering [from, from+length).
func (l *hdrLog) interval(tag string, from time.Time, length time.Duration, h *hdr.Histogram) error {
	payload, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return fmt.Errorf("encode %s histogram: %w", tag, err)
	}
	_, err = fmt.Fprintf(l.w, "Tag=%s,%.3f,%.3f,%.3f,%s\n", tag, from.Sub(l.baseTime).Seconds(), length.Seconds(),
		float64(h.Max())/1e6, payload)
	if err != nil {
		return fmt.Errorf("write hdr log: %w", err)
	}
	return nil
}
