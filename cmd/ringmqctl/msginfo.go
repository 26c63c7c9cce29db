package main

// msgInfo: one stored record as the message commands print it in JSON.

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"io"
	"unicode/utf8"

	"github.com/ringmq/ringmq/engine/record"
)

// msgInfo is a decoded record. Body holds the text when the shown bytes are UTF-8, else
// BodyHex holds them in hex; BodyBytes is the stored body's length. A body the producer
// compressed (sys flag 0x1, zlib) is shown inflated, and BodyInflated says so.
type msgInfo struct {
	OffsetMsgID     string            `json:"offsetMsgId"`
	Topic           string            `json:"topic"`
	QueueID         int32             `json:"queueId"`
	QueueOffset     int64             `json:"queueOffset"`
	CommitLogOffset int64             `json:"commitLogOffset"`
	SizeBytes       int32             `json:"sizeBytes"`
	SysFlag         int32             `json:"sysFlag"`
	Flag            int32             `json:"flag"`
	BornTimestamp   string            `json:"bornTimestamp"`
	BornHost        string            `json:"bornHost"`
	StoreTimestamp  string            `json:"storeTimestamp"`
	StoreHost       string            `json:"storeHost"`
	ReconsumeTimes  int32             `json:"reconsumeTimes"`
	Properties      map[string]string `json:"properties"`
	BodyBytes       int               `json:"bodyBytes"`
	BodyInflated    bool              `json:"bodyInflated,omitempty"`
	Body            *string           `json:"body,omitempty"`
	BodyHex         *string           `json:"bodyHex,omitempty"`
}

func newMsgInfo(v record.View, bodyBytes int) msgInfo {
	m := msgInfo{
		OffsetMsgID:     offsetMsgID(v),
		Topic:           string(v.Topic()),
		QueueID:         v.QueueID(),
		QueueOffset:     v.QueueOffset(),
		CommitLogOffset: v.PhysicalOffset(),
		SizeBytes:       v.TotalSize(),
		SysFlag:         v.SysFlag(),
		Flag:            v.Flag(),
		BornTimestamp:   formatMs(v.BornTimestampMs()),
		BornHost:        v.BornHost().String(),
		StoreTimestamp:  formatMs(v.StoreTimestampMs()),
		StoreHost:       v.StoreHost().String(),
		ReconsumeTimes:  v.ReconsumeTimes(),
		Properties:      map[string]string{},
		BodyBytes:       len(v.Body()),
	}
	for rest := v.Properties(); ; {
		k, val, next, ok := record.NextProperty(rest)
		if !ok {
			break
		}
		if _, dup := m.Properties[string(k)]; !dup {
			m.Properties[string(k)] = string(val)
		}
		rest = next
	}
	body := v.Body()
	shown := body[:min(len(body), max(bodyBytes, 0))]
	if v.SysFlag()&sysFlagCompressed != 0 {
		if b, ok := inflatePrefix(body, bodyBytes); ok {
			shown, m.BodyInflated = b, true
		}
	}
	s := string(shown)
	if utf8.ValidString(s) {
		m.Body = &s
	} else {
		h := hex.EncodeToString(shown)
		m.BodyHex = &h
	}
	return m
}

func offsetMsgID(v record.View) string {
	return string(record.AppendOffsetMsgIDHex(nil, record.OffsetMsgID(v.StoreHost(), v.PhysicalOffset())))
}

// sysFlagCompressed marks a body the producer zlib-compressed.
const sysFlagCompressed = 0x1

// inflatePrefix returns the first n bytes of the zlib stream body, reading no more of it
// than that; ok is false when body is not zlib.
func inflatePrefix(body []byte, n int) ([]byte, bool) {
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, false
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(max(n, 0))))
	if err != nil {
		return nil, false
	}
	return out, true
}
