package timer

import (
	"encoding/binary"
	"hash/crc32"
)

// Record sizes (doc.go draws them).
const (
	EntrySizeBytes      = 48
	slotSizeBytes       = 32
	checkpointSizeBytes = 64
)

var be = binary.BigEndian

// Entry is one parked message in the wheel.
type Entry struct {
	SlotMs          int64 // start of the slot it is linked into (multiple of the precision)
	DeliverMs       int64 // exact due time, epoch ms
	QueueOffset     int64 // offset in rmq_sys_wheel_timer queue 0
	CommitLogOffset int64 // physical offset of the parked message
	SizeBytes       int32 // its size in the commit log
}

// encodeEntry writes e with prevPos into b[:EntrySizeBytes].
func encodeEntry(b []byte, e *Entry, prevPos int64) {
	be.PutUint64(b[0:], uint64(e.SlotMs))
	be.PutUint64(b[8:], uint64(e.DeliverMs))
	be.PutUint64(b[16:], uint64(e.QueueOffset))
	be.PutUint64(b[24:], uint64(e.CommitLogOffset))
	be.PutUint64(b[32:], uint64(prevPos))
	be.PutUint32(b[40:], uint32(e.SizeBytes))
	be.PutUint32(b[44:], crc32.ChecksumIEEE(b[:44]))
}

// decodeEntry reads an entry and its prevPos; ok is false when the CRC does not match
// (a torn or never-written entry).
func decodeEntry(b []byte) (e Entry, prevPos int64, ok bool) {
	if be.Uint32(b[44:]) != crc32.ChecksumIEEE(b[:44]) {
		return Entry{}, 0, false
	}
	e = Entry{
		SlotMs:          int64(be.Uint64(b[0:])),
		DeliverMs:       int64(be.Uint64(b[8:])),
		QueueOffset:     int64(be.Uint64(b[16:])),
		CommitLogOffset: int64(be.Uint64(b[24:])),
		SizeBytes:       int32(be.Uint32(b[40:])),
	}
	return e, int64(be.Uint64(b[32:])), true
}

// slot is one wheel slot: the head (last entry) of its chain.
type slot struct {
	slotMs  int64
	lastPos int64 // -1: empty
	count   int32
}

func encodeSlot(b []byte, s slot) {
	clear(b[:slotSizeBytes])
	be.PutUint64(b[0:], uint64(s.slotMs))
	be.PutUint64(b[8:], uint64(s.lastPos))
	be.PutUint32(b[16:], uint32(s.count))
	be.PutUint32(b[20:], crc32.ChecksumIEEE(b[:20]))
}

// decodeSlot reads a slot record; an all-zero record is empty. ok is false on a CRC
// mismatch.
func decodeSlot(b []byte) (s slot, ok bool) {
	if allZero(b[:slotSizeBytes]) {
		return slot{lastPos: -1}, true
	}
	if be.Uint32(b[20:]) != crc32.ChecksumIEEE(b[:20]) {
		return slot{}, false
	}
	return slot{slotMs: int64(be.Uint64(b[0:])), lastPos: int64(be.Uint64(b[8:])), count: int32(be.Uint32(b[16:]))}, true
}

// Checkpoint is the wheel's durable progress.
type Checkpoint struct {
	EnqueueOffset int64 // next queue offset of rmq_sys_wheel_timer not yet in the wheel
	DeliveredMs   int64 // every entry of a slot starting before it was delivered (0: none yet)
	LogPos        int64 // timerlog bytes below it are linked into the wheel on disk

	seq         uint64
	precisionMs int64
	slots       int64
}

func encodeCheckpoint(b []byte, c *Checkpoint) {
	clear(b[:checkpointSizeBytes])
	be.PutUint64(b[0:], c.seq)
	be.PutUint64(b[8:], uint64(c.EnqueueOffset))
	be.PutUint64(b[16:], uint64(c.DeliveredMs))
	be.PutUint64(b[24:], uint64(c.LogPos))
	be.PutUint64(b[32:], uint64(c.precisionMs))
	be.PutUint64(b[40:], uint64(c.slots))
	be.PutUint32(b[60:], crc32.ChecksumIEEE(b[:60]))
}

func decodeCheckpoint(b []byte) (Checkpoint, bool) {
	if allZero(b[:checkpointSizeBytes]) || be.Uint32(b[60:]) != crc32.ChecksumIEEE(b[:60]) {
		return Checkpoint{}, false
	}
	return Checkpoint{
		seq:           be.Uint64(b[0:]),
		EnqueueOffset: int64(be.Uint64(b[8:])),
		DeliveredMs:   int64(be.Uint64(b[16:])),
		LogPos:        int64(be.Uint64(b[24:])),
		precisionMs:   int64(be.Uint64(b[32:])),
		slots:         int64(be.Uint64(b[40:])),
	}, true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
