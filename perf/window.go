package perf

// sparseCounts is the non-zero part of a histogram delta: counts[idx[i]] = n[i], idx ascending.
type sparseCounts struct {
	idx []int32
	n   []int64
}

// sloCounts are one code's SLO counters (cumulative or a delta).
type sloCounts struct {
	Total  int64 `json:"total"`
	Le1ms  int64 `json:"le_1ms"`
	Le10ms int64 `json:"le_10ms"`
	Bytes  int64 `json:"bytes"`
}

func (a sloCounts) plus(b sloCounts) sloCounts {
	return sloCounts{a.Total + b.Total, a.Le1ms + b.Le1ms, a.Le10ms + b.Le10ms, a.Bytes + b.Bytes}
}

func (a sloCounts) minus(b sloCounts) sloCounts {
	return sloCounts{a.Total - b.Total, a.Le1ms - b.Le1ms, a.Le10ms - b.Le10ms, a.Bytes - b.Bytes}
}

// interval is what happened between two rotations.
type interval struct {
	startNs, endNs int64 // perf.Now clock
	hists          [numCodes][NumStages]sparseCounts
	slo            [numCodes]sloCounts
}

// windowState is the interval ring; Recorder.mu guards it.
type windowState struct {
	ring        []interval // ring[(closed-1) % len] is the newest closed interval
	closed      uint64     // intervals closed since start
	openStartNs int64      // start of the interval being recorded
	// prev holds the cumulative counts at the last rotation, so live - prev is the open
	// interval. nil until that histogram exists.
	prev    [numCodes][NumStages][]int64
	prevSLO [numCodes]sloCounts
	live    []int64 // scratch for one histogram's live counts
}

func (w *windowState) init(n int, nowNs int64) {
	w.ring = make([]interval, n)
	w.openStartNs = nowNs
	w.live = make([]int64, histCountsLen)
}

// loadSLO reads one code's cumulative SLO counters.
// The total is the end-to-end histogram's count (see codeStats).
func (c *codeStats) loadSLO() sloCounts {
	over10, over1 := c.over10ms.Load(), c.over1ms.Load() // before the total: see codeStats
	var bytes, total int64
	for i := range c.bytes {
		bytes += c.bytes[i].v.Load()
	}
	if h := c.hists[0].Load(); h != nil {
		for i := range h.counts {
			total += h.counts[i].Load()
		}
	}
	return sloCounts{Total: total, Le1ms: total - over1, Le10ms: total - over10, Bytes: bytes}
}

// rotateLocked closes the open interval at nowNs and returns it. r.mu must be held.
func (r *Recorder) rotateLocked(nowNs int64) *interval {
	w := &r.mu.win
	iv := &w.ring[w.closed%uint64(len(w.ring))]
	iv.startNs, iv.endNs = w.openStartNs, nowNs
	for ci := range r.codes {
		c := &r.codes[ci]
		for st := range NumStages {
			sp := &iv.hists[ci][st]
			sp.idx, sp.n = sp.idx[:0], sp.n[:0]
			h := c.hists[st].Load()
			if h == nil {
				continue
			}
			prev := w.prev[ci][st]
			if prev == nil {
				prev = make([]int64, histCountsLen)
				w.prev[ci][st] = prev
			}
			h.loadInto(w.live)
			for i, v := range w.live {
				if d := v - prev[i]; d != 0 {
					sp.idx = append(sp.idx, int32(i))
					sp.n = append(sp.n, d)
					prev[i] = v
				}
			}
		}
		cur := c.loadSLO()
		iv.slo[ci] = cur.minus(w.prevSLO[ci])
		w.prevSLO[ci] = cur
	}
	w.closed++
	w.openStartNs = nowNs
	return iv
}

// Rotate closes the open interval now. The recorder's own goroutine (Start) calls it every
// Interval; tests and tools that want aligned intervals may call it too.
func (r *Recorder) Rotate() {
	r.mu.Lock()
	iv := r.rotateLocked(Now())
	line := r.hdrLogLinesLocked(iv)
	r.mu.Unlock()
	r.writeHdrLog(line)
}

// windowSpan returns how many closed intervals a window of k intervals covers (k < 0: all time,
// reported as 0 with all = true) and the perf.Now time the window starts at.
func (r *Recorder) windowSpanLocked(k int) (n int, startNs int64) {
	w := &r.mu.win
	n = min(k, len(w.ring), int(min(w.closed, uint64(len(w.ring)))))
	if n <= 0 {
		return 0, w.openStartNs
	}
	oldest := &w.ring[(w.closed-uint64(n))%uint64(len(w.ring))]
	return n, oldest.startNs
}

// denseLocked fills dst with the counts of code ci, histogram st over the newest n closed
// intervals plus the open one; with all set, over all time. It reports whether the histogram
// exists. r.mu must be held.
func (r *Recorder) denseLocked(dst []int64, ci int, st Stage, n int, all bool) bool {
	h := r.codes[ci].hists[st].Load()
	if h == nil {
		return false
	}
	w := &r.mu.win
	if all {
		h.loadInto(dst)
		return true
	}
	h.loadInto(dst)
	if prev := w.prev[ci][st]; prev != nil {
		for i := range dst {
			dst[i] -= prev[i]
		}
	}
	for j := 1; j <= n; j++ {
		iv := &w.ring[(w.closed-uint64(j))%uint64(len(w.ring))]
		sp := &iv.hists[ci][st]
		for k, idx := range sp.idx {
			dst[idx] += sp.n[k]
		}
	}
	return true
}

// sloLocked returns code ci's SLO counters over the same span as denseLocked.
func (r *Recorder) sloLocked(ci, n int, all bool) sloCounts {
	cur := r.codes[ci].loadSLO()
	if all {
		return cur
	}
	w := &r.mu.win
	s := cur.minus(w.prevSLO[ci])
	for j := 1; j <= n; j++ {
		s = s.plus(w.ring[(w.closed-uint64(j))%uint64(len(w.ring))].slo[ci])
	}
	return s
}
