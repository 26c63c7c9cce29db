// Package index finds messages by key: each token of a message's KEYS property and its
// UNIQ_KEY map to the commit-log offsets of the records that carry them, searchable by
// store-time range. The shape is RocketMQ's IndexFile (a hash-slot table whose slots
// head chains of entries), with ringmq's own entry layout: each entry carries a CRC so
// recovery can tell a written entry from a torn or unwritten one.
//
// # On disk
//
// <root>/index/<20-digit file number> (1, 2, 3, ... in creation order):
//
//	header (64 bytes, big-endian)
//	+--------+--------+--------+--------+--------+--------+--------+--------+
//	| magic "RMQIDX01"                  | slotCount u32   | maxEntries u32  |
//	| state u32       | entryCount u32  | beginTimestampMs i64              |
//	| endTimestampMs i64                | beginPhysOffset i64               |
//	| endPhysOffset i64                 | reserved u32    | crc32 of 0..59  |
//	+--------+--------+--------+--------+--------+--------+--------+--------+
//	slots  at 64:                    slotCount x u32 = entry number+1 of the newest
//	                                 entry whose hash falls in the slot (0 = empty)
//	entries at 64 + 4*slotCount:     maxEntries x 28 bytes
//	+-------------+-------------+------------------+-------------------+----------+
//	| keyHash u32 | prev u32    | physOffset i64   | storeTimestampMs  | crc32 of |
//	|             | (number+1,  |                  | i64               | bytes    |
//	|             |  0 = none)  |                  |                   | 0..23    |
//	+-------------+-------------+------------------+-------------------+----------+
//
// keyHash = FNV-1a 32 of topic + "#" + key; slot = keyHash % slotCount. A lookup walks
// the chain from the slot, newest first; hashes collide, so callers verify each
// candidate against its record (the Store does).
//
// state: 0 = open (the slot table on disk is not kept; recovery rebuilds it from the
// entries, which are written in order and end at the first entry whose CRC fails),
// 1 = sealed (full; header and slots written and synced), 2 = closed cleanly (like
// sealed, entryCount valid; reopening sets it back to 0 before appending).
//
// # Concurrency
//
// One writer (the store's dispatcher) calls Add, Flush, Recover and DeleteBelow; Sync
// may run beside it; Lookup is safe from any goroutine. Add keeps the active file's slot
// table in memory and buffers entries; Flush writes them with one WriteAt. No lock is
// held across a system call: lookups copy unwritten entries under the lock and read
// written ones with the file pinned by a reference count.
//
// # Errors
//
// I/O errors are wrapped with the operation and the file. Bytes that cannot be right
// (a bad header or file name, a slot chain that does not go back, an entry whose CRC
// fails where one was written) are a *CorruptError with the file and offset. Lookup
// after Close returns ErrClosed.
package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Format constants and defaults.
const (
	headerSizeBytes = 64
	entrySizeBytes  = 28
	magic           = "RMQIDX01"

	stateOpen   = 0
	stateSealed = 1
	stateClosed = 2

	DefaultSlotsPerFile   = 5_000_000
	DefaultEntriesPerFile = 20_000_000
	// MaxPendingEntries bounds the entries Add buffers before it writes them.
	MaxPendingEntries = 1024
	// MaxChainSteps bounds the entries one lookup visits in one file.
	MaxChainSteps = 1 << 20
)

// CorruptError reports index bytes that cannot be right.
type CorruptError struct {
	File        string
	OffsetBytes int64
	Reason      string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("index: corrupt %s at offset %d: %s", e.File, e.OffsetBytes, e.Reason)
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("index: closed")

type header struct {
	slotCount, maxEntries uint32
	state, entryCount     uint32
	beginTsMs, endTsMs    int64
	beginPhys, endPhys    int64
}

func (h *header) encode(b []byte) {
	be := binary.BigEndian
	copy(b[0:8], magic)
	be.PutUint32(b[8:], h.slotCount)
	be.PutUint32(b[12:], h.maxEntries)
	be.PutUint32(b[16:], h.state)
	be.PutUint32(b[20:], h.entryCount)
	be.PutUint64(b[24:], uint64(h.beginTsMs))
	be.PutUint64(b[32:], uint64(h.endTsMs))
	be.PutUint64(b[40:], uint64(h.beginPhys))
	be.PutUint64(b[48:], uint64(h.endPhys))
	be.PutUint32(b[56:], 0)
	be.PutUint32(b[60:], crc32.ChecksumIEEE(b[:60]))
}

func decodeHeader(b []byte) (header, string) {
	be := binary.BigEndian
	if len(b) < headerSizeBytes || string(b[0:8]) != magic {
		return header{}, "bad magic"
	}
	if be.Uint32(b[60:]) != crc32.ChecksumIEEE(b[:60]) {
		return header{}, "header CRC mismatch"
	}
	h := header{
		slotCount: be.Uint32(b[8:]), maxEntries: be.Uint32(b[12:]),
		state: be.Uint32(b[16:]), entryCount: be.Uint32(b[20:]),
		beginTsMs: int64(be.Uint64(b[24:])), endTsMs: int64(be.Uint64(b[32:])),
		beginPhys: int64(be.Uint64(b[40:])), endPhys: int64(be.Uint64(b[48:])),
	}
	switch {
	case h.slotCount == 0 || h.maxEntries == 0:
		return header{}, "zero slot or entry count"
	case h.state > stateClosed:
		return header{}, "unknown state"
	case h.entryCount > h.maxEntries:
		return header{}, "entry count over the maximum"
	}
	return h, ""
}

type entry struct {
	keyHash, prev uint32
	phys, tsMs    int64
}

func (e *entry) encode(b []byte) {
	be := binary.BigEndian
	be.PutUint32(b[0:], e.keyHash)
	be.PutUint32(b[4:], e.prev)
	be.PutUint64(b[8:], uint64(e.phys))
	be.PutUint64(b[16:], uint64(e.tsMs))
	be.PutUint32(b[24:], crc32.ChecksumIEEE(b[:24]))
}

// decodeEntry decodes an entry; ok is false when its CRC does not match (torn or
// never written).
func decodeEntry(b []byte) (entry, bool) {
	be := binary.BigEndian
	if be.Uint32(b[24:]) != crc32.ChecksumIEEE(b[:24]) {
		return entry{}, false
	}
	return entry{keyHash: be.Uint32(b[0:]), prev: be.Uint32(b[4:]),
		phys: int64(be.Uint64(b[8:])), tsMs: int64(be.Uint64(b[16:]))}, true
}

// KeyHash is the index hash of topic#key: FNV-1a 32, without allocating.
func KeyHash(topic, key []byte) uint32 {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for _, c := range topic {
		h = (h ^ uint32(c)) * prime32
	}
	h = (h ^ '#') * prime32
	for _, c := range key {
		h = (h ^ uint32(c)) * prime32
	}
	return h
}

func slotPos(slot uint32) int64 { return headerSizeBytes + 4*int64(slot) }

func entryPos(slotCount uint32, n uint32) int64 {
	return headerSizeBytes + 4*int64(slotCount) + entrySizeBytes*int64(n)
}

// FileName is the name of index file number n.
func FileName(n int64) string { return fmt.Sprintf("%020d", n) }
