// Package perf holds ringmq's clocks, latency histograms, SLO counters, slow-request log and
// metrics registry. Everything a request passes through is stamped with Now and handed to a
// Recorder once the response is written; the admin server (perf/admin) reads it back.
//
// # Contract
//
// A request carries a Stamps: one perf.Now() value per Stage it passed (0 = not passed).
// Recorder.Record turns the stamps into
//
//	stage transition   histogram "into st"   value
//	read    -> decoded        decoded         At[decoded]-At[read]
//	decoded -> queued         queued          ...
//	...                       ...             (a skipped stage is bridged: the transition runs
//	x       -> written        written          from the last stage passed before st)
//	first   -> last           e2e             end to end, normally read -> written
//
// per request code (a fixed table, see CodeName; unknown codes share "other"), and counts the
// request in the SLO counters of its code: total, e2e <= 1 ms, e2e <= 10 ms (exact comparisons on
// the raw nanoseconds). A request slower than the slow threshold lands in a fixed ring of the last N
// slow requests with its stage breakdown.
//
// Histograms have HdrHistogram's bucket layout for 1 us .. 60 s at 3 significant digits (values in
// nanoseconds, lowest discernible value 1000 ns), so any of them converts losslessly into a
// github.com/HdrHistogram/hdrhistogram-go Histogram for percentiles, encoding and interval logs.
//
// Windows: every Interval (10 s) the recorder closes an interval; a ring of the last
// WindowIntervals (60, i.e. 10 min) interval deltas answers "last 10 s / 1 min / 10 min", and the
// live cumulative counts answer "since start". A window of k intervals covers the k most recent
// closed intervals plus the open one, so "10s" spans 10 to 20 s of history.
//
// # Concurrency
//
// Stamps belongs to one request; Mark and MarkAt are plain stores and need no synchronisation as
// long as one goroutine owns the request at a time (hand-offs through channels or mutexes order
// the stores). Record may be called from any number of goroutines at once: it takes no lock and
// allocates nothing (every counter is an atomic; the slow-request ring claims slots with a
// compare-and-swap). The one exception is the first request of a non-send code through a given
// stage, which allocates that histogram once (send codes get theirs in NewRecorder). Everything else (reports, rotation, the hdr log, evidence collection)
// runs off the request path under the recorder's own mutex and never blocks Record.
//
// # Limits
//
// Memory is fixed by the configuration: one 147 KiB histogram per (code, stage) actually used,
// a dense "previous" copy of each for interval deltas, WindowIntervals sparse deltas, and
// SlowLogSize slow-request slots. Values beyond 60 s are clamped to 60 s; a negative stage
// duration (stamps out of order, a caller bug) is recorded as 0 and counted in
// StampOrderErrors.
//
// # On disk
//
// The only file perf writes is the optional interval log (OpenHdrLog): HdrHistogram's log
// format 1.3, one line per (code, histogram) per interval, rolled to PATH.1 past
// HdrLogMaxBytes (hdrlog.go has the full example):
//
//	#[Histogram log format version 1.3]
//	#[StartTime: ...] #[BaseTime: ...] and the column legend
//	Tag=<CODE>.<e2e|stage>,<start s>,<length s>,<max ms>,<base64 compressed histogram>
//
// # Errors
//
// Configuration errors and misuse (an unknown Stage, a duplicate metric name) panic with "BUG:".
// I/O errors of the hdr log are returned by OpenHdrLog and Close, wrapped with the operation, and
// a failed interval write stops the log (reported by HdrLogErr) without affecting recording.
package perf
