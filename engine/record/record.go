// Package record is the stored-message codec: RocketMQ's message layout V1, byte for byte,
// as it lives in the commit log and travels in pull responses.
//
// Record layout (big-endian; born and store hosts are IPv4, sysFlag bits 0x10/0x20 clear):
//
//	 off  size  field
//	+----+----+--------------------------------------------------------------+
//	|   0|   4| totalSize        whole record, = 91 + bodyLen + topicLen + propsLen
//	|   4|   4| magic            0xDAA320A7 (V1)
//	|   8|   4| bodyCRC          CRC32-IEEE(body) & 0x7FFFFFFF (Java UtilAll.crc32)
//	|  12|   4| queueId
//	|  16|   4| flag
//	|  20|   8| queueOffset      logical offset in the consume queue
//	|  28|   8| physicalOffset   commit-log offset of this record
//	|  36|   4| sysFlag
//	|  40|   8| bornTimestamp    ms
//	|  48|   8| bornHost         IPv4(4) | port int32
//	|  56|   8| storeTimestamp   ms
//	|  64|   8| storeHost        IPv4(4) | port int32
//	|  72|   4| reconsumeTimes
//	|  76|   8| preparedTransactionOffset
//	|  84|   4| bodyLen
//	|  88|   n| body             stored as given (zlib when sysFlag&1)
//	|    |   1| topicLen         1..127
//	|    |   t| topic
//	|    |   2| propsLen         int16, 0..32767
//	|    |   p| properties       "k\x01v\x02k\x01v\x02"
//	+----+----+--------------------------------------------------------------+
//
// A blank record ends a segment whose tail was too short for the next record:
//
//	+-----------+--------------------+
//	| size i32  | magic 0xCBD43194   |   size = bytes from here to the end of the segment
//	+-----------+--------------------+
//
// Encoding appends into a caller's buffer (Append) or fills a slice of the exact size
// (EncodeInto, used by the commit log's in-lock encoder); neither allocates. Decode is
// zero-copy: a View's accessors return sub-slices of the record. Check validates a record
// at a known commit-log position (structure, magic, physical offset, body CRC) and is what
// commit-log recovery runs on every record past the last safe point.
//
// Errors: ErrTruncated (fewer bytes than the record claims), ErrBlank (a blank marker),
// ErrZero (all-zero header: unwritten, pre-zeroed space) and *CorruptError (anything else that
// is wrong, with the offset inside the buffer and a reason). Encode panics "BUG:" on lengths
// the caller should have checked with Validate (topic > 127 bytes, properties > 32767 bytes).
//
// Everything here is a pure function of its arguments and safe for concurrent use.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// Format constants.
const (
	MagicV1    uint32 = 0xDAA320A7 // record magic, MessageVersion V1
	MagicBlank uint32 = 0xCBD43194 // end-of-segment blank marker

	FixedSizeBytes   = 91 // bytes of a record besides body, topic and properties
	BlankSizeBytes   = 8  // a blank marker's header
	MaxTopicLen      = 127
	MaxPropertiesLen = 32767

	offTotalSize      = 0
	offMagic          = 4
	offBodyCRC        = 8
	offQueueID        = 12
	offFlag           = 16
	offQueueOffset    = 20
	offPhysicalOffset = 28
	offSysFlag        = 36
	offBornTimestamp  = 40
	offBornHost       = 48
	offStoreTimestamp = 56
	offStoreHost      = 64
	offReconsumeTimes = 72
	offPreparedTxOff  = 76
	offBodyLen        = 84
	offBody           = 88
)

// SysFlag bits (Java MessageSysFlag).
const (
	SysFlagCompressed  int32 = 0x1
	SysFlagMultiTags   int32 = 0x2
	SysFlagTxPrepared  int32 = 0x4
	SysFlagTxCommit    int32 = 0x8
	SysFlagTxRollback  int32 = 0xC
	SysFlagTxMask      int32 = 0xC
	SysFlagBornHostV6  int32 = 0x10
	SysFlagStoreHostV6 int32 = 0x20
	sysFlagHostV6Mask        = SysFlagBornHostV6 | SysFlagStoreHostV6
)

// Errors.
var (
	ErrTruncated = errors.New("record: truncated")
	ErrBlank     = errors.New("record: blank end-of-segment marker")
	ErrZero      = errors.New("record: unwritten (zero) space")
)

// CorruptError reports a record that is not valid at OffsetBytes of the buffer it was
// decoded from (callers add the file and its base offset).
type CorruptError struct {
	OffsetBytes int64
	Reason      string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("record: corrupt at offset %d: %s", e.OffsetBytes, e.Reason)
}

// Header is every fixed field of a record. Hosts must be IPv4 (or IPv4-mapped IPv6);
// anything else is written as 0.0.0.0 with its port.
type Header struct {
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	PhysicalOffset            int64
	SysFlag                   int32
	BornTimestampMs           int64
	BornHost                  netip.AddrPort
	StoreTimestampMs          int64
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
}

// Size returns the stored size of a record with these lengths.
func Size(bodyLen, topicLen, propsLen int) int {
	return FixedSizeBytes + bodyLen + topicLen + propsLen
}

// Validate reports whether a record with this topic and these lengths can be encoded
// within maxSizeBytes (0 = no limit besides the format's).
func Validate(topic string, bodyLen, propsLen, maxSizeBytes int) error {
	switch {
	case len(topic) == 0 || len(topic) > MaxTopicLen:
		return fmt.Errorf("record: topic length %d outside 1..%d", len(topic), MaxTopicLen)
	case propsLen > MaxPropertiesLen:
		return fmt.Errorf("record: properties length %d over %d", propsLen, MaxPropertiesLen)
	case maxSizeBytes > 0 && bodyLen > maxSizeBytes:
		return fmt.Errorf("record: body length %d over the maximum message size %d", bodyLen, maxSizeBytes)
	}
	return nil
}

// Append appends the encoded record to dst and returns the extended slice.
func Append(dst []byte, h *Header, topic string, body, props []byte) []byte {
	n := Size(len(body), len(topic), len(props))
	start := len(dst)
	if cap(dst)-start < n {
		grown := make([]byte, start, start+n)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:start+n]
	EncodeInto(dst[start:], h, topic, body, props)
	return dst
}

// EncodeInto writes the record into dst, which must be exactly Size(...) long.
func EncodeInto(dst []byte, h *Header, topic string, body, props []byte) {
	if len(topic) > MaxTopicLen || len(props) > MaxPropertiesLen {
		panic(fmt.Sprintf("BUG: record.EncodeInto: topic %d / properties %d bytes over the format's limits", len(topic), len(props)))
	}
	n := Size(len(body), len(topic), len(props))
	if len(dst) != n {
		panic(fmt.Sprintf("BUG: record.EncodeInto: dst is %d bytes, record is %d", len(dst), n))
	}
	be := binary.BigEndian
	be.PutUint32(dst[offTotalSize:], uint32(n))
	be.PutUint32(dst[offMagic:], MagicV1)
	be.PutUint32(dst[offBodyCRC:], BodyCRC(body))
	be.PutUint32(dst[offQueueID:], uint32(h.QueueID))
	be.PutUint32(dst[offFlag:], uint32(h.Flag))
	be.PutUint64(dst[offQueueOffset:], uint64(h.QueueOffset))
	be.PutUint64(dst[offPhysicalOffset:], uint64(h.PhysicalOffset))
	be.PutUint32(dst[offSysFlag:], uint32(h.SysFlag&^sysFlagHostV6Mask))
	be.PutUint64(dst[offBornTimestamp:], uint64(h.BornTimestampMs))
	putHost(dst[offBornHost:], h.BornHost)
	be.PutUint64(dst[offStoreTimestamp:], uint64(h.StoreTimestampMs))
	putHost(dst[offStoreHost:], h.StoreHost)
	be.PutUint32(dst[offReconsumeTimes:], uint32(h.ReconsumeTimes))
	be.PutUint64(dst[offPreparedTxOff:], uint64(h.PreparedTransactionOffset))
	be.PutUint32(dst[offBodyLen:], uint32(len(body)))
	p := offBody + copy(dst[offBody:], body)
	dst[p] = byte(len(topic))
	p++
	p += copy(dst[p:], topic)
	be.PutUint16(dst[p:], uint16(len(props)))
	p += 2
	copy(dst[p:], props)
}

// BodyCRC is the stored body checksum: CRC32-IEEE masked to 31 bits, as Java writes it.
func BodyCRC(body []byte) uint32 { return crc32.ChecksumIEEE(body) & 0x7FFFFFFF }

func putHost(dst []byte, ap netip.AddrPort) {
	var ip4 [4]byte
	if a := ap.Addr().Unmap(); a.Is4() {
		ip4 = a.As4()
	}
	copy(dst[:4], ip4[:])
	binary.BigEndian.PutUint32(dst[4:8], uint32(ap.Port()))
}

func getHost(src []byte) netip.AddrPort {
	ip := netip.AddrFrom4([4]byte(src[:4]))
	return netip.AddrPortFrom(ip, uint16(binary.BigEndian.Uint32(src[4:8])))
}

// PutBlank writes a blank end-of-segment marker covering all of dst (at least 8 bytes).
func PutBlank(dst []byte) {
	if len(dst) < BlankSizeBytes {
		panic(fmt.Sprintf("BUG: record.PutBlank: %d bytes, need %d", len(dst), BlankSizeBytes))
	}
	binary.BigEndian.PutUint32(dst[0:], uint32(len(dst)))
	binary.BigEndian.PutUint32(dst[4:], MagicBlank)
}
