package remoting

import (
	"encoding/binary"
	"fmt"
)

// binaryFixedBytes is the fixed part of a ROCKETMQ binary header:
// code int16 | language byte | version int16 | opaque int32 | flag int32 | remarkLen int32 | extLen int32.
const binaryFixedBytes = 2 + 1 + 2 + 4 + 4 + 4 + 4

// decodeBinaryHeader decodes a ROCKETMQ (serialize type 1) header into cmd. Every []byte is a view into h.
func (d *decoder) decodeBinaryHeader(h []byte, cmd *Command) error {
	*cmd = Command{Ext: cmd.Ext[:0], SerializeType: SerializeRocketMQ}
	if len(h) < binaryFixedBytes {
		return fmt.Errorf("%w: binary header of %d bytes, want >= %d", errHeaderSyntax, len(h), binaryFixedBytes)
	}
	cmd.Code = int16(binary.BigEndian.Uint16(h[0:]))
	cmd.Language = h[2]
	cmd.Version = int16(binary.BigEndian.Uint16(h[3:]))
	cmd.Opaque = int32(binary.BigEndian.Uint32(h[5:]))
	cmd.Flag = int32(binary.BigEndian.Uint32(h[9:]))
	p := 13
	remarkLen := int(int32(binary.BigEndian.Uint32(h[p:])))
	p += 4
	if remarkLen < 0 || remarkLen > len(h)-p-4 {
		return fmt.Errorf("%w: binary remark length %d", errHeaderSyntax, remarkLen)
	}
	if remarkLen > 0 {
		cmd.Remark = h[p : p+remarkLen : p+remarkLen]
	}
	p += remarkLen
	extLen := int(int32(binary.BigEndian.Uint32(h[p:])))
	p += 4
	if extLen < 0 || extLen != len(h)-p {
		return fmt.Errorf("%w: binary ext length %d, %d bytes left", errHeaderSyntax, extLen, len(h)-p)
	}
	for p < len(h) {
		if len(h)-p < 2 {
			return fmt.Errorf("%w: binary ext key length cut", errHeaderSyntax)
		}
		kl := int(binary.BigEndian.Uint16(h[p:]))
		p += 2
		if kl > len(h)-p-4 {
			return fmt.Errorf("%w: binary ext key length %d", errHeaderSyntax, kl)
		}
		key := h[p : p+kl : p+kl]
		p += kl
		vl := int(int32(binary.BigEndian.Uint32(h[p:])))
		p += 4
		if vl < 0 || vl > len(h)-p {
			return fmt.Errorf("%w: binary ext value length %d", errHeaderSyntax, vl)
		}
		if len(cmd.Ext) == MaxExtFields {
			return fmt.Errorf("%w: more than %d ext fields", errHeaderSyntax, MaxExtFields)
		}
		cmd.Ext = append(cmd.Ext, Field{Key: key, Value: h[p : p+vl : p+vl]})
		p += vl
	}
	return nil
}

// appendBinaryHeader appends a ROCKETMQ binary header.
func appendBinaryHeader(dst []byte, code int16, lang byte, version int16, opaque, flag int32, remark []byte,
	ext []Field) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	dst = append(dst, lang)
	dst = binary.BigEndian.AppendUint16(dst, uint16(version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(remark)))
	dst = append(dst, remark...)
	extLen := 0
	for _, f := range ext {
		extLen += 2 + len(f.Key) + 4 + len(f.Value)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(extLen))
	for _, f := range ext {
		if len(f.Key) > 1<<16-1 {
			panic("BUG: ext key longer than 65535 bytes")
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Key)))
		dst = append(dst, f.Key...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Value)))
		dst = append(dst, f.Value...)
	}
	return dst
}
