package remoting

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Default limits.
const (
	DefaultMaxFrameBytes  = 16 << 20 // whole frame including the length prefix, as Java's frameMaxLength
	DefaultMaxHeaderBytes = 64 << 10
	frameLenBytes         = 4 // the totalLen prefix
	framePrefixBytes      = 8 // totalLen + (serializeType<<24 | headerLen)
)

// ErrFrameTooLarge and ErrMalformedFrame are the reasons a connection is closed for its input.
var (
	ErrFrameTooLarge  = errors.New("remoting: frame too large")
	ErrMalformedFrame = errors.New("remoting: malformed frame")
)

// frameLimits are the checks applied to every incoming frame.
type frameLimits struct {
	maxFrameBytes  int
	maxHeaderBytes int
}

// frameSize reads the length prefix at the start of b (len(b) >= 4) and returns the whole frame size
// including the prefix, or an error when it is out of bounds.
func (l frameLimits) frameSize(b []byte) (int, error) {
	total := int(int32(binary.BigEndian.Uint32(b)))
	if total < 4 {
		return 0, fmt.Errorf("%w: totalLen %d < 4", ErrMalformedFrame, total)
	}
	if total > l.maxFrameBytes-frameLenBytes {
		return 0, fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, total+frameLenBytes, l.maxFrameBytes)
	}
	return total + frameLenBytes, nil
}

// decodeFrame decodes one whole frame (prefix included) into cmd. Views point into frame and into d.scratch.
func (d *decoder) decodeFrame(l frameLimits, frame []byte, cmd *Command) error {
	if len(frame) < framePrefixBytes {
		return fmt.Errorf("%w: %d bytes", ErrMalformedFrame, len(frame))
	}
	total := int(binary.BigEndian.Uint32(frame))
	if total != len(frame)-frameLenBytes {
		return fmt.Errorf("%w: totalLen %d for %d bytes", ErrMalformedFrame, total, len(frame)-frameLenBytes)
	}
	mark := binary.BigEndian.Uint32(frame[4:])
	serialize := uint8(mark >> 24)
	hlen := int(mark & 0xFFFFFF)
	if hlen > l.maxHeaderBytes {
		return fmt.Errorf("%w: header of %d bytes, max %d", ErrFrameTooLarge, hlen, l.maxHeaderBytes)
	}
	if hlen > len(frame)-framePrefixBytes {
		return fmt.Errorf("%w: headerLen %d > frame", ErrMalformedFrame, hlen)
	}
	h := frame[framePrefixBytes : framePrefixBytes+hlen]
	var err error
	switch serialize {
	case SerializeJSON:
		err = d.decodeJSONHeader(h, cmd)
	case SerializeRocketMQ:
		err = d.decodeBinaryHeader(h, cmd)
	default:
		return fmt.Errorf("%w: serialize type %d", ErrMalformedFrame, serialize)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedFrame, err)
	}
	if body := frame[framePrefixBytes+hlen:]; len(body) > 0 {
		cmd.Body = body
	}
	return nil
}

// header describes an outgoing frame's header.
type header struct {
	code      int16
	lang      byte
	version   int16
	opaque    int32
	flag      int32
	serialize uint8
	remark    []byte
	ext       []Field
}

// appendFramePrefix appends the length prefix and the header of a frame whose body has bodyLen bytes.
// The body itself is written after it (vectored). dst's earlier bytes are kept.
func appendFramePrefix(dst []byte, h *header, bodyLen int) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	if h.serialize == SerializeRocketMQ {
		dst = appendBinaryHeader(dst, h.code, h.lang, h.version, h.opaque, h.flag, h.remark, h.ext)
	} else {
		dst = appendJSONHeader(dst, h.code, h.lang, h.version, h.opaque, h.flag, h.remark, h.ext)
	}
	hlen := len(dst) - start - framePrefixBytes
	if hlen > 0xFFFFFF {
		panic("BUG: header longer than 16 MiB")
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(4+hlen+bodyLen))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(h.serialize)<<24|uint32(hlen))
	return dst
}
