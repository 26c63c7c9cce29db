package record

import (
	"encoding/binary"
	"net/netip"
)

// View is a decoded record: accessors read the record's bytes in place and return
// sub-slices of them, so a View is valid only while those bytes are.
type View struct {
	b        []byte // exactly the record
	topicPos int    // position of the topic length byte
	propsPos int    // position of the properties length
}

// Decode parses the record at the start of b (b may run past it) without copying and
// without checking the body CRC (see Check). Errors: ErrTruncated, ErrBlank, ErrZero,
// *CorruptError with an offset relative to b.
func Decode(b []byte) (View, error) {
	if len(b) < BlankSizeBytes {
		return View{}, ErrTruncated
	}
	be := binary.BigEndian
	total := int64(int32(be.Uint32(b[offTotalSize:])))
	magic := be.Uint32(b[offMagic:])
	switch {
	case magic == MagicBlank:
		return View{}, ErrBlank
	case magic == 0 && total == 0:
		return View{}, ErrZero
	case magic != MagicV1:
		return View{}, corrupt(offMagic, "bad magic")
	case total < FixedSizeBytes:
		return View{}, corrupt(offTotalSize, "total size below the fixed part")
	case total > int64(len(b)):
		return View{}, ErrTruncated
	}
	b = b[:total]
	sysFlag := int32(be.Uint32(b[offSysFlag:]))
	if sysFlag&sysFlagHostV6Mask != 0 {
		return View{}, corrupt(offSysFlag, "IPv6 host flags (only V1 IPv4 records are stored)")
	}
	if be.Uint32(b[offBornHost+4:]) > 0xFFFF || be.Uint32(b[offStoreHost+4:]) > 0xFFFF {
		return View{}, corrupt(offBornHost, "host port over 65535")
	}
	bodyLen := int64(int32(be.Uint32(b[offBodyLen:])))
	if bodyLen < 0 || bodyLen > total-FixedSizeBytes {
		return View{}, corrupt(offBodyLen, "body length outside the record")
	}
	topicPos := offBody + int(bodyLen)
	topicLen := int(b[topicPos])
	if topicLen == 0 || topicLen > MaxTopicLen {
		return View{}, corrupt(int64(topicPos), "topic length outside 1..127")
	}
	propsPos := topicPos + 1 + topicLen
	if int64(propsPos+2) > total {
		return View{}, corrupt(int64(topicPos), "topic runs past the record")
	}
	propsLen := int(be.Uint16(b[propsPos:]))
	if propsLen > MaxPropertiesLen {
		return View{}, corrupt(int64(propsPos), "properties length over 32767")
	}
	if int64(propsPos+2+propsLen) != total {
		return View{}, corrupt(offTotalSize, "total size does not match the field lengths")
	}
	return View{b: b, topicPos: topicPos, propsPos: propsPos}, nil
}

// Check decodes the record at the start of b, which sits at commit-log offset
// physOffset, and verifies that its physicalOffset field says so and that its body CRC
// matches. It is the per-record test of commit-log recovery: a torn or stale record fails.
func Check(b []byte, physOffset int64) (View, error) {
	v, err := Decode(b)
	if err != nil {
		return View{}, err
	}
	if v.PhysicalOffset() != physOffset {
		return View{}, corrupt(offPhysicalOffset, "physical offset field does not match the record's position")
	}
	if BodyCRC(v.Body()) != v.BodyCRC() {
		return View{}, corrupt(offBodyCRC, "body CRC mismatch")
	}
	return v, nil
}

func corrupt(off int64, reason string) *CorruptError {
	return &CorruptError{OffsetBytes: off, Reason: reason}
}

func (v View) u32(off int) uint32 { return binary.BigEndian.Uint32(v.b[off:]) }
func (v View) u64(off int) uint64 { return binary.BigEndian.Uint64(v.b[off:]) }

// Bytes returns the whole record.
func (v View) Bytes() []byte { return v.b }

// TotalSize is the record's length in bytes.
func (v View) TotalSize() int32 { return int32(len(v.b)) }

// BodyCRC is the stored body checksum.
func (v View) BodyCRC() uint32 { return v.u32(offBodyCRC) }

// QueueID is the queue the message was stored to.
func (v View) QueueID() int32 { return int32(v.u32(offQueueID)) }

// Flag is the user flag.
func (v View) Flag() int32 { return int32(v.u32(offFlag)) }

// QueueOffset is the message's logical offset in its consume queue.
func (v View) QueueOffset() int64 { return int64(v.u64(offQueueOffset)) }

// PhysicalOffset is the record's commit-log offset.
func (v View) PhysicalOffset() int64 { return int64(v.u64(offPhysicalOffset)) }

// SysFlag is the system flag (compression, transaction type).
func (v View) SysFlag() int32 { return int32(v.u32(offSysFlag)) }

// BornTimestampMs is when the producer created the message.
func (v View) BornTimestampMs() int64 { return int64(v.u64(offBornTimestamp)) }

// BornHost is the producer's address.
func (v View) BornHost() netip.AddrPort { return getHost(v.b[offBornHost:]) }

// StoreTimestampMs is when the broker stored the message.
func (v View) StoreTimestampMs() int64 { return int64(v.u64(offStoreTimestamp)) }

// StoreHost is the storing broker's address.
func (v View) StoreHost() netip.AddrPort { return getHost(v.b[offStoreHost:]) }

// ReconsumeTimes counts redeliveries.
func (v View) ReconsumeTimes() int32 { return int32(v.u32(offReconsumeTimes)) }

// PreparedTransactionOffset is the half message's offset for a committed transaction.
func (v View) PreparedTransactionOffset() int64 { return int64(v.u64(offPreparedTxOff)) }

// Body is the stored body (compressed when SysFlag&SysFlagCompressed).
func (v View) Body() []byte { return v.b[offBody:v.topicPos] }

// Topic is the topic name.
func (v View) Topic() []byte { return v.b[v.topicPos+1 : v.propsPos] }

// Properties is the properties string.
func (v View) Properties() []byte { return v.b[v.propsPos+2:] }

// Property returns the value of key in the record's properties.
func (v View) Property(key string) ([]byte, bool) { return Property(v.Properties(), key) }

// Header returns the record's fixed fields.
func (v View) Header() Header {
	return Header{
		QueueID:                   v.QueueID(),
		Flag:                      v.Flag(),
		QueueOffset:               v.QueueOffset(),
		PhysicalOffset:            v.PhysicalOffset(),
		SysFlag:                   v.SysFlag(),
		BornTimestampMs:           v.BornTimestampMs(),
		BornHost:                  v.BornHost(),
		StoreTimestampMs:          v.StoreTimestampMs(),
		StoreHost:                 v.StoreHost(),
		ReconsumeTimes:            v.ReconsumeTimes(),
		PreparedTransactionOffset: v.PreparedTransactionOffset(),
	}
}
