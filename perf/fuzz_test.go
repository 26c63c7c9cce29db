package perf

import (
	"encoding/binary"
	"testing"
)

// FuzzRecord feeds arbitrary stamps (zero, negative, out of order, beyond 60 s) and codes to
// Record and checks the invariants every reader relies on.
func FuzzRecord(f *testing.F) {
	seed := make([]byte, 2+8*int(NumStages))
	f.Add(seed)
	s := sendStamps(1000, 400_000)
	binary.LittleEndian.PutUint16(seed, uint16(CodeSendMessageV2))
	for i, v := range s.At {
		binary.LittleEndian.PutUint64(seed[2+8*i:], uint64(v))
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2+8*int(NumStages) {
			return
		}
		code := int16(binary.LittleEndian.Uint16(data))
		var st Stamps
		stamped := false
		for i := range st.At {
			st.At[i] = int64(binary.LittleEndian.Uint64(data[2+8*i:]))
			stamped = stamped || st.At[i] != 0
		}
		r := NewRecorder(RecorderConfig{SlowLogSize: 4})
		r.Record(code, &st, len(data), string(data[:min(len(data), 200)]), 1)
		ci := codeIndex(code)
		slo := r.codes[ci].loadSLO()
		if !stamped {
			if slo.Total != 0 || r.Unstamped() != 1 {
				t.Fatalf("no stamps: got SLO %+v, unstamped %d", slo, r.Unstamped())
			}
			return
		}
		if slo.Total != 1 || slo.Le1ms > slo.Le10ms || slo.Le10ms > slo.Total || slo.Le1ms < 0 {
			t.Fatalf("SLO counters: got %+v", slo)
		}
		if got := toHdr(counts(r, code, 0)).TotalCount(); got != 1 {
			t.Fatalf("e2e values: got %d, want 1", got)
		}
		for _, sr := range r.SlowRequests() {
			if sr.TotalNs <= r.slowThresholdNs || len(sr.Stages) == 0 {
				t.Fatalf("slow entry under the threshold or without stages: %+v", sr)
			}
		}
		if _, err := r.Report("all"); err != nil {
			t.Fatal(err)
		}
	})
}
