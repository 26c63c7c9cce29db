package record

import (
	"bytes"
	"unicode/utf8"
)

// Property keys (Java MessageConst) the store and broker read or write.
const (
	PropTags                  = "TAGS"
	PropKeys                  = "KEYS"
	PropUniqKey               = "UNIQ_KEY"
	PropWait                  = "WAIT"
	PropDelay                 = "DELAY"
	PropRetryTopic            = "RETRY_TOPIC"
	PropRealTopic             = "REAL_TOPIC"
	PropRealQueueID           = "REAL_QID"
	PropTranMsg               = "TRAN_MSG"
	PropProducerGroup         = "PGROUP"
	PropMinOffset             = "MIN_OFFSET"
	PropMaxOffset             = "MAX_OFFSET"
	PropOriginMessageID       = "ORIGIN_MESSAGE_ID"
	PropReconsumeTime         = "RECONSUME_TIME"
	PropMaxReconsumeTimes     = "MAX_RECONSUME_TIMES"
	PropTranPreparedQueueOff  = "TRAN_PREPARED_QUEUE_OFFSET"
	PropTransactionCheckTimes = "TRANSACTION_CHECK_TIMES"
	PropCheckImmunitySeconds  = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropCluster               = "CLUSTER"
	PropShardingKey           = "SHARDING_KEY"
	PropMsgRegion             = "MSG_REGION"
	PropTraceOn               = "TRACE_ON"

	NameValueSep = 0x01 // between a key and its value
	PropertySep  = 0x02 // after each pair
	KeySep       = ' '  // between tokens of KEYS
)

// NextProperty splits the first key/value pair off props. ok is false when props holds
// no further complete pair. A pair without 0x01 is skipped, as the Java and Go parsers do.
// It never allocates.
func NextProperty(props []byte) (key, value, rest []byte, ok bool) {
	for len(props) > 0 {
		var item []byte
		if i := bytes.IndexByte(props, PropertySep); i >= 0 {
			item, props = props[:i], props[i+1:]
		} else {
			item, props = props, nil
		}
		if j := bytes.IndexByte(item, NameValueSep); j >= 0 {
			return item[:j], item[j+1:], props, true
		}
	}
	return nil, nil, nil, false
}

// Property returns the value of key in props (the first occurrence) without allocating.
func Property(props []byte, key string) ([]byte, bool) {
	for {
		k, v, rest, ok := NextProperty(props)
		if !ok {
			return nil, false
		}
		if string(k) == key {
			return v, true
		}
		props = rest
	}
}

// AppendProperty appends "key\x01value\x02" to props; key and value may each be a string
// or a []byte. It allocates only when props has to grow.
func AppendProperty[K, V ~string | ~[]byte](props []byte, key K, value V) []byte {
	props = append(props, key...)
	props = append(props, NameValueSep)
	props = append(props, value...)
	return append(props, PropertySep)
}

// AppendWithout appends to dst every pair of props except those whose key is key,
// in the canonical "k\x01v\x02" form.
func AppendWithout(dst, props []byte, key string) []byte {
	for {
		k, v, rest, ok := NextProperty(props)
		if !ok {
			return dst
		}
		if string(k) != key {
			dst = AppendProperty(dst, k, v)
		}
		props = rest
	}
}

// NextKey splits the first non-empty space-separated token off a KEYS value. ok is false
// when none is left. It never allocates.
func NextKey(keys []byte) (token, rest []byte, ok bool) {
	for len(keys) > 0 {
		i := bytes.IndexByte(keys, KeySep)
		if i < 0 {
			return keys, nil, true
		}
		token, keys = keys[:i], keys[i+1:]
		if len(token) > 0 {
			return token, keys, true
		}
	}
	return nil, nil, false
}

// TagsHash is Java's String.hashCode of tag (31*h + c over its UTF-16 code units,
// int32 wrap-around), sign-extended: the consume queue's tags code. Invalid UTF-8
// bytes count as U+FFFD each.
func TagsHash(tag string) int64 {
	var h int32
	for _, r := range tag {
		h = hashRune(h, r)
	}
	return int64(h)
}

// TagsHashBytes is TagsHash over a byte slice, without allocating.
func TagsHashBytes(tag []byte) int64 {
	var h int32
	for len(tag) > 0 {
		r, n := utf8.DecodeRune(tag)
		tag = tag[n:]
		h = hashRune(h, r)
	}
	return int64(h)
}

func hashRune(h int32, r rune) int32 {
	if r >= 0x10000 && r <= utf8.MaxRune {
		r -= 0x10000
		h = 31*h + int32(0xD800+(r>>10))
		return 31*h + int32(0xDC00+(r&0x3FF))
	}
	return 31*h + int32(r)
}

// TagsCode is the consume-queue tags code of a record with these properties: the hash of
// its TAGS, or 0 when it has none (Java stores 0 for messages without tags).
func TagsCode(props []byte) int64 {
	tags, ok := Property(props, PropTags)
	if !ok || len(tags) == 0 {
		return 0
	}
	return TagsHashBytes(tags)
}
