package main

// msgInfo: one stored record as the message commands print it in JSON.

import (
	"encoding/hex"
	"unicode/utf8"

	"github.com/ringmq/ringmq/engine/record"
)

// msgInfo is a decoded record. Body holds the text when the shown bytes are UTF-8, else
// BodyHex holds them in hex; BodyBytes is the whole body's length.
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
