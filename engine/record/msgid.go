package record

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
)

// Offset message id (the broker's "msgId" / client OffsetMsgId), IPv4 form:
//
//	+-----------+-----------+------------------------+
//	| ip (4)    | port i32  | physical offset i64    |   16 bytes, big-endian
//	+-----------+-----------+------------------------+
//	 on the wire: 32 upper-case hex characters, e.g. 7F00000100002A9F00000000000000A3
const (
	OffsetMsgIDLen    = 16
	OffsetMsgIDHexLen = 32
)

// ErrBadMsgID is returned for a malformed offset message id.
var ErrBadMsgID = errors.New("record: bad offset message id")

// OffsetMsgID builds the offset message id of a record stored at physOffset by storeHost.
func OffsetMsgID(storeHost netip.AddrPort, physOffset int64) [OffsetMsgIDLen]byte {
	var id [OffsetMsgIDLen]byte
	putHost(id[:8], storeHost)
	binary.BigEndian.PutUint64(id[8:], uint64(physOffset))
	return id
}

const hexUpper = "0123456789ABCDEF"

// AppendOffsetMsgIDHex appends the 32 upper-case hex characters of id to dst (encoding/hex
// writes lower case; Java's UtilAll.bytes2string, which clients compare with, upper).
func AppendOffsetMsgIDHex(dst []byte, id [OffsetMsgIDLen]byte) []byte {
	for _, c := range id {
		dst = append(dst, hexUpper[c>>4], hexUpper[c&0xF])
	}
	return dst
}

// ParseOffsetMsgID decodes a 32-character hex offset message id (either case).
func ParseOffsetMsgID(s string) (storeHost netip.AddrPort, physOffset int64, err error) {
	if len(s) != OffsetMsgIDHexLen {
		return netip.AddrPort{}, 0, fmt.Errorf("parse msg id %q: %d characters, want %d: %w", s, len(s), OffsetMsgIDHexLen, ErrBadMsgID)
	}
	var id [OffsetMsgIDLen]byte
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("parse msg id %q: not hex: %w", s, ErrBadMsgID)
	}
	if binary.BigEndian.Uint32(id[4:8]) > 0xFFFF {
		return netip.AddrPort{}, 0, fmt.Errorf("parse msg id %q: port over 65535: %w", s, ErrBadMsgID)
	}
	return getHost(id[:8]), int64(binary.BigEndian.Uint64(id[8:])), nil
}
