package broker

import (
	"errors"
	"fmt"

	"github.com/ringmq/ringmq/netio/remoting"
)

// sendHeader is a decoded send request header (Java SendMessageRequestHeader). Byte
// slices are views into the request and valid only during Serve.
type sendHeader struct {
	producerGroup         []byte
	topic                 []byte
	defaultTopic          []byte
	defaultTopicQueueNums int32
	queueID               int32
	sysFlag               int32
	bornTimestampMs       int64
	flag                  int32
	properties            []byte
	reconsumeTimes        int32
	maxReconsumeTimes     int32
	hasMaxReconsumeTimes  bool
	batch                 bool
}

// Fields of a send header, in V2's letter order (a = producerGroup ... m = batch, n = bname).
const (
	fProducerGroup = iota
	fTopic
	fDefaultTopic
	fDefaultTopicQueueNums
	fQueueID
	fSysFlag
	fBornTimestamp
	fFlag
	fProperties
	fReconsumeTimes
	fUnitMode
	fMaxReconsumeTimes
	fBatch
	fBrokerName
	numSendFields
)

// sendFieldsV1 are the long names SEND_MESSAGE (10) uses, indexed like the V2 letters.
var sendFieldsV1 = [numSendFields]string{
	"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId", "sysFlag",
	"bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode", "maxReconsumeTimes", "batch", "bname",
}

var errHeaderMissing = errors.New("missing field")

// sendFieldIndex returns which field key names, or -1.
func sendFieldIndex(key []byte, v2 bool) int {
	if v2 {
		if len(key) == 1 && key[0] >= 'a' && key[0] < 'a'+numSendFields {
			return int(key[0] - 'a')
		}
		return -1
	}
	// A switch, not a scan of sendFieldsV1: the compiler turns it into a search by length
	// and content, so each of a send's ~14 fields costs a few compares, not up to 14.
	switch string(key) {
	case "producerGroup":
		return fProducerGroup
	case "topic":
		return fTopic
	case "defaultTopic":
		return fDefaultTopic
	case "defaultTopicQueueNums":
		return fDefaultTopicQueueNums
	case "queueId":
		return fQueueID
	case "sysFlag":
		return fSysFlag
	case "bornTimestamp":
		return fBornTimestamp
	case "flag":
		return fFlag
	case "properties":
		return fProperties
	case "reconsumeTimes":
		return fReconsumeTimes
	case "unitMode":
		return fUnitMode
	case "maxReconsumeTimes":
		return fMaxReconsumeTimes
	case "batch":
		return fBatch
	case "bname":
		return fBrokerName
	}
	return -1
}

// parseSendHeader decodes a send header from req's ext fields without allocating (except
// for the error). v2 selects the one-letter names of SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE.
func parseSendHeader(req *remoting.Command, v2 bool, h *sendHeader) error {
	*h = sendHeader{queueID: -1}
	var seen uint32
	for i := range req.Ext {
		f := &req.Ext[i]
		idx := sendFieldIndex(f.Key, v2)
		if idx < 0 {
			continue
		}
		seen |= 1 << idx
		v := f.Value
		var err error
		switch idx {
		case fProducerGroup:
			h.producerGroup = v
		case fTopic:
			h.topic = v
		case fDefaultTopic:
			h.defaultTopic = v
		case fDefaultTopicQueueNums:
			h.defaultTopicQueueNums, err = parseInt32(v)
		case fQueueID:
			h.queueID, err = parseInt32(v)
		case fSysFlag:
			h.sysFlag, err = parseInt32(v)
		case fBornTimestamp:
			h.bornTimestampMs, err = parseInt64(v)
		case fFlag:
			h.flag, err = parseInt32(v)
		case fProperties:
			h.properties = v
		case fReconsumeTimes:
			if len(v) > 0 {
				h.reconsumeTimes, err = parseInt32(v)
			}
		case fMaxReconsumeTimes:
			if len(v) > 0 {
				h.maxReconsumeTimes, err = parseInt32(v)
				h.hasMaxReconsumeTimes = err == nil
			}
		case fBatch:
			h.batch = parseBool(v)
		}
		if err != nil {
			return fmt.Errorf("send header field %s: %w", sendFieldsV1[idx], err)
		}
	}
	for _, idx := range []int{fTopic, fQueueID} {
		if seen&(1<<idx) == 0 {
			return fmt.Errorf("send header field %s: %w", sendFieldsV1[idx], errHeaderMissing)
		}
	}
	return nil
}

var errNotNumber = errors.New("not a decimal number")

// parseInt64 parses an ext value as remoting does, with an error for the header's messages.
func parseInt64(b []byte) (int64, error) {
	n, ok := remoting.ParseInt64(b)
	if !ok {
		return 0, errNotNumber
	}
	return n, nil
}

func parseInt32(b []byte) (int32, error) {
	n, err := parseInt64(b)
	if err != nil {
		return 0, err
	}
	if n < -1<<31 || n > 1<<31-1 {
		return 0, errNotNumber
	}
	return int32(n), nil
}

// parseBool is Java's Boolean.parseBoolean: "true" in any case.
func parseBool(v []byte) bool {
	return len(v) == 4 && v[0]|0x20 == 't' && v[1]|0x20 == 'r' && v[2]|0x20 == 'u' && v[3]|0x20 == 'e'
}

// extInt64 reads an optional numeric ext field: def when absent, an error when malformed.
func extInt64(req *remoting.Command, key string, def int64) (int64, error) {
	v, ok := req.ExtValue(key)
	if !ok || len(v) == 0 {
		return def, nil
	}
	n, err := parseInt64(v)
	if err != nil {
		return 0, fmt.Errorf("field %s=%q: %w", key, v, err)
	}
	return n, nil
}

// extInt64Required reads a numeric ext field that must be present.
func extInt64Required(req *remoting.Command, key string) (int64, error) {
	v, ok := req.ExtValue(key)
	if !ok {
		return 0, fmt.Errorf("field %s: %w", key, errHeaderMissing)
	}
	n, err := parseInt64(v)
	if err != nil {
		return 0, fmt.Errorf("field %s=%q: %w", key, v, err)
	}
	return n, nil
}
