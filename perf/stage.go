package perf

// Stage is a point on a request's path through the broker. The order of the constants is the
// order a request passes them; a request may skip stages (a pull has no flush).
type Stage uint8

const (
	StageRead           Stage = iota // frame read off the socket
	StageDecoded                     // header and body decoded
	StageQueued                      // handed to the store
	StageAppended                    // bytes in the commitlog buffer
	StageFlushSubmitted              // the flush (write + fdatasync) covering it was submitted
	StageDurable                     // the fdatasync covering it returned success
	StageReplicated                  // the slave acked it (SYNC_MASTER)
	StageWritten                     // response written to the socket
	NumStages                        // number of stages; not a stage
)

var stageNames = [NumStages]string{
	"read", "decoded", "queued", "appended", "flush_submitted", "durable", "replicated", "written",
}

// String returns the stage's snake_case name, used as a label value and JSON key.
func (st Stage) String() string {
	if st >= NumStages {
		return "invalid"
	}
	return stageNames[st]
}

// Stamps holds one request's stage times: perf.Now() values, 0 = did not pass that stage.
// The zero value is ready to use; reuse one per request with Reset.
type Stamps struct {
	At [NumStages]int64
}

// Mark stamps stage st with Now().
func (s *Stamps) Mark(st Stage) {
	if st >= NumStages {
		panic("BUG: perf: Mark of invalid stage")
	}
	s.At[st] = Now()
}

// MarkAt stamps stage st with a Now value the caller already read, e.g. the one fdatasync
// completion time shared by every request of a group commit.
func (s *Stamps) MarkAt(st Stage, ns int64) {
	if st >= NumStages {
		panic("BUG: perf: MarkAt of invalid stage")
	}
	s.At[st] = ns
}

// Reset clears every stamp.
func (s *Stamps) Reset() { *s = Stamps{} }
