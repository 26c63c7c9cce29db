// Package timer is the on-disk timing wheel behind RocketMQ 5.x timer messages (arbitrary
// delivery time, TIMER_DELIVER_MS): storage only. The broker's timer service
// (netio/broker/timer.go) parks each timer message in rmq_sys_wheel_timer, links it into
// the wheel with Add, reads each slot's chain with ReadSlot shortly before the slot
// starts, re-puts the messages at their exact due time and records its progress with
// Commit. docs/timer.md has the whole design and its reasoning.
//
// Three kinds of file live in Config.Dir:
//
//	timerlog.<position of its first entry, 20 digits>
//	            the timer log, in segments of Config.SegmentBytes: append-only, fixed-size
//	            entries, one per parked message. A position is a byte offset in the whole
//	            log. Commit deletes the leading segments whose entries are all in slots
//	            before the one preceding the committed time's slot:
//
//	  0        8          16            24               32        40     44    48
//	  +--------+----------+-------------+----------------+---------+------+-----+
//	  | slotMs | deliverMs| queueOffset | commitLogOffset| prevPos | size | crc |
//	  +--------+----------+-------------+----------------+---------+------+-----+
//	  slotMs:  start of the slot the entry is linked into (a multiple of precision)
//	  queueOffset: the parked message's offset in rmq_sys_wheel_timer queue 0
//	  commitLogOffset, size: where the parked message is in the commit log
//	  prevPos: position (byte offset in timerlog) of the previous entry of the same
//	           slot's chain, -1 for the first; crc: CRC-32 (IEEE) of bytes 0..44
//
//	wheel       a fixed array of 2 x maxDelay/precision slots, each 32 bytes, so a slot is
//	            never reused within one delay horizon; slot i holds slotMs with
//	            slotMs/precision % slots == i:
//
//	  0        8         16      20    24     32
//	  +--------+---------+-------+-----+------+
//	  | slotMs | lastPos | count | crc | zero |
//	  +--------+---------+-------+-----+------+
//	  all zero = empty; a slotMs other than the one asked for = empty (a stale slot of an
//	  earlier turn of the wheel: slots are reset by being overwritten, never cleared);
//	  32-byte slots never straddle a 512-byte sector, so a slot write is never torn
//
//	checkpoint  two 64-byte copies written alternately (seq picks the newer valid one):
//
//	  0     8               16            24       32            40      48     60    64
//	  +-----+---------------+-------------+--------+-------------+-------+------+-----+
//	  | seq | enqueueOffset | deliveredMs | logPos | precisionMs | slots | zero | crc |
//	  +-----+---------------+-------------+--------+-------------+-------+------+-----+
//	  enqueueOffset: next queue offset of rmq_sys_wheel_timer not yet in the wheel
//	  deliveredMs:   every entry linked into a slot starting before it was delivered
//	  logPos:        timerlog bytes below it are linked into the wheel on disk
//
// Fsync order. Add appends the entries to the log (a new segment's directory entry is
// synced first) and fdatasyncs it, then writes their slots and fdatasyncs the wheel;
// Commit writes the checkpoint and fdatasyncs it, then deletes delivered segments. So
// after a crash every entry below the checkpoint's logPos is in its slot's chain, and the
// entries past it are whole or torn. Open truncates a torn tail (the first entry whose
// CRC fails) and links each entry past logPos whose slot does not already reach it: an
// entry's prevPos was its slot's last entry when it was written, so setting the slot's
// lastPos to the entry restores the whole chain. It then writes the wheel and the
// checkpoint again. Every state a crash can leave is recoverable, which the crash tests
// check on vfs.Mem with random prefixes of the un-synced writes (CrashKeeping).
//
// Concurrency: a Wheel is owned by one goroutine (the timer service); it is not safe for
// concurrent use. Errors: a failed write or fsync is returned and the Wheel refuses
// further writes (ErrFailed) until it is opened again; corruption below the checkpoint
// (a bad CRC in a chain or a slot) is a *CorruptError naming the file and offset.
package timer
