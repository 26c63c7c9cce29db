package perf

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// The interval log is HdrHistogram's log format (version 1.3), readable by HistogramLogReader,
// HistogramLogProcessor and the online plotter:
//
//	#[Histogram log format version 1.3]
//	#[StartTime: 1763704800.123 (seconds since epoch), 2025-11-21T06:00:00Z]
//	#[BaseTime: 1763704800.123 (seconds since epoch)]
//	"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//	Tag=SEND_MESSAGE_V2.e2e,0.000,10.000,1.234,HISTFAAAA...
//
// One line per (request code, histogram) that saw requests in the interval, tagged
// "<CODE_NAME>.<e2e|stage>", plus "sends.e2e" for all send codes together. Timestamps are seconds
// relative to BaseTime; Interval_Max is in milliseconds (values are recorded in nanoseconds).

// hdrLogState is the open interval log. Only Rotate and Close write it.
type hdrLogState struct {
	mu struct {
		sync.Mutex
		path         string
		f            *os.File
		w            *bufio.Writer
		writtenBytes int64 // into the current file
		err          error // first write error; the log stops there
	}
	baseNs atomic.Int64 // perf.Now at which the log's BaseTime lies; 0 = no log
}

// OpenHdrLog starts writing interval histograms to path (created or truncated), one batch of
// lines per Interval, the last one when Close is called; past HdrLogMaxBytes the file moves to
// path.1 and a new one starts. The broker calls it for --hdr-log PATH.
func (r *Recorder) OpenHdrLog(path string) error {
	r.mu.Lock()
	baseNs := max(r.mu.win.openStartNs, 1)
	r.mu.Unlock()
	f, bw, n, err := createHdrLog(path, baseNs)
	if err != nil {
		return err
	}
	r.hlog.mu.Lock()
	defer r.hlog.mu.Unlock()
	if r.hlog.mu.f != nil {
		f.Close()
		panic("BUG: perf: OpenHdrLog called twice")
	}
	r.hlog.mu.path, r.hlog.mu.f, r.hlog.mu.w, r.hlog.mu.writtenBytes = path, f, bw, n
	r.hlog.baseNs.Store(baseNs)
	return nil
}

// createHdrLog creates (or truncates) path and writes the log header, returning its size.
func createHdrLog(path string, baseNs int64) (*os.File, *bufio.Writer, int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open hdr log: %w", err)
	}
	var hdr bytes.Buffer
	if err := writeHdrLogHeader(&hdr, baseNs); err != nil {
		panic("BUG: perf: hdr log header into a buffer: " + err.Error())
	}
	bw := bufio.NewWriter(f)
	bw.Write(hdr.Bytes())
	if err := bw.Flush(); err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("write hdr log header %s: %w", path, err)
	}
	return f, bw, int64(hdr.Len()), nil
}

// rollHdrLogLocked moves the full log to path.1 and starts a new one. r.hlog.mu must be held.
func (r *Recorder) rollHdrLogLocked() error {
	path := r.hlog.mu.path
	if err := r.hlog.mu.f.Close(); err != nil {
		return fmt.Errorf("close hdr log %s: %w", path, err)
	}
	r.hlog.mu.f, r.hlog.mu.w = nil, nil
	if err := os.Rename(path, path+".1"); err != nil {
		return fmt.Errorf("roll hdr log: %w", err)
	}
	f, bw, n, err := createHdrLog(path, r.hlog.baseNs.Load())
	if err != nil {
		return err
	}
	r.hlog.mu.f, r.hlog.mu.w, r.hlog.mu.writtenBytes = f, bw, n
	return nil
}

func writeHdrLogHeader(w io.Writer, baseNs int64) error {
	lw := hdrhistogram.NewHistogramLogWriter(w)
	if err := lw.OutputLogFormatVersion(); err != nil {
		return err
	}
	if err := lw.OutputComment("[ringmq interval latency log; values in ns; tags <CODE>.<e2e|stage>]"); err != nil {
		return err
	}
	wall := WallTime(baseNs)
	secs := float64(wall.UnixMilli()) / 1000
	if _, err := fmt.Fprintf(w, "#[StartTime: %.3f (seconds since epoch), %s]\n", secs, wall.UTC().Format("2006-01-02T15:04:05.000Z07:00")); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "#[BaseTime: %.3f (seconds since epoch)]\n", secs); err != nil {
		return err
	}
	return lw.OutputLegend()
}

// hdrLogLinesLocked encodes interval iv as log lines (nil when no log is open). r.mu must be held.
func (r *Recorder) hdrLogLinesLocked(iv *interval) []byte {
	baseNs := r.hlog.baseNs.Load()
	if baseNs == 0 {
		return nil
	}
	var buf bytes.Buffer
	dense := make([]int64, histCountsLen)
	sends := make([]int64, histCountsLen)
	sendsSeen := false
	for ci := range codeTable {
		for st := range NumStages {
			sp := &iv.hists[ci][st]
			if len(sp.idx) == 0 {
				continue
			}
			clear(dense)
			for k, idx := range sp.idx {
				dense[idx] = sp.n[k]
				if st == 0 && codeTable[ci].send {
					sends[idx] += sp.n[k]
					sendsSeen = true
				}
			}
			appendHdrLogLine(&buf, codeTable[ci].name+"."+histName(st), iv, baseNs, dense)
		}
	}
	if sendsSeen {
		appendHdrLogLine(&buf, "sends.e2e", iv, baseNs, sends)
	}
	return buf.Bytes()
}

// histName names histogram st of a code: "e2e" for 0, else the stage entered.
func histName(st Stage) string {
	if st == 0 {
		return "e2e"
	}
	return st.String()
}

// appendHdrLogLine appends one interval line for counts (which it leaves unchanged).
func appendHdrLogLine(buf *bytes.Buffer, tag string, iv *interval, baseNs int64, counts []int64) {
	h := toHdr(counts)
	enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		panic("BUG: perf: encode histogram: " + err.Error())
	}
	fmt.Fprintf(buf, "Tag=%s,%.3f,%.3f,%.3f,%s\n", tag,
		float64(iv.startNs-baseNs)/1e9, float64(iv.endNs-iv.startNs)/1e9, float64(h.Max())/1e6, enc)
}

// writeHdrLog appends lines to the log, if one is open and healthy.
func (r *Recorder) writeHdrLog(lines []byte) {
	if len(lines) == 0 {
		return
	}
	r.hlog.mu.Lock()
	defer r.hlog.mu.Unlock()
	if r.hlog.mu.w == nil || r.hlog.mu.err != nil {
		return
	}
	// Lines are written whole before the size check, so a file may exceed the bound by one
	// interval's lines.
	if _, err := r.hlog.mu.w.Write(lines); err != nil {
		r.hlog.mu.err = fmt.Errorf("write hdr log: %w", err)
		return
	}
	if err := r.hlog.mu.w.Flush(); err != nil {
		r.hlog.mu.err = fmt.Errorf("write hdr log: %w", err)
		return
	}
	r.hlog.mu.writtenBytes += int64(len(lines))
	if r.hlog.mu.writtenBytes >= r.cfg.HdrLogMaxBytes {
		r.hlog.mu.err = r.rollHdrLogLocked()
	}
}

// HdrLogErr returns the error that stopped the interval log, if any.
func (r *Recorder) HdrLogErr() error {
	r.hlog.mu.Lock()
	defer r.hlog.mu.Unlock()
	return r.hlog.mu.err
}

// closeHdrLog flushes and closes the log.
func (r *Recorder) closeHdrLog() error {
	r.hlog.mu.Lock()
	defer r.hlog.mu.Unlock()
	f := r.hlog.mu.f
	r.hlog.baseNs.Store(0)
	err := r.hlog.mu.err
	if f == nil {
		return err
	}
	r.hlog.mu.f, r.hlog.mu.w = nil, nil
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close hdr log: %w", cerr)
	}
	return err
}

// WriteHdrWindow writes the histograms of window (see ParseWindow) as an interval log holding a
// single interval: one line per (code, histogram) that saw requests, and sends.e2e. This is what
// /api/hdr serves, for HdrHistogram's offline tools.
func (r *Recorder) WriteHdrWindow(w io.Writer, window string) error {
	k, err := r.ParseWindow(window)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	r.mu.Lock()
	n, startNs := r.windowSpanLocked(k)
	if k < 0 {
		startNs = 0
	}
	iv := interval{startNs: startNs, endNs: Now()}
	if err := writeHdrLogHeader(&buf, max(startNs, 1)); err != nil {
		r.mu.Unlock()
		return fmt.Errorf("hdr window: %w", err)
	}
	dense := make([]int64, histCountsLen)
	sends := make([]int64, histCountsLen)
	sendsSeen := false
	for ci := range codeTable {
		for st := range NumStages {
			if !r.denseLocked(dense, ci, st, n, k < 0) || allZero(dense) {
				continue
			}
			if st == 0 && codeTable[ci].send {
				addInto(sends, dense)
				sendsSeen = true
			}
			appendHdrLogLine(&buf, codeTable[ci].name+"."+histName(st), &iv, max(startNs, 1), dense)
		}
	}
	r.mu.Unlock()
	if sendsSeen {
		appendHdrLogLine(&buf, "sends.e2e", &iv, max(startNs, 1), sends)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("hdr window: %w", err)
	}
	return nil
}

func allZero(counts []int64) bool {
	for _, c := range counts {
		if c != 0 {
			return false
		}
	}
	return true
}
