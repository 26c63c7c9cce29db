package broker

import (
	"fmt"
	"strings"

	"github.com/ringmq/ringmq/engine/record"
)

// Expression types of a subscription.
const (
	exprTag   = "TAG"
	exprSQL92 = "SQL92"
)

// maxSubscriptionTags bounds the tags of one subscription expression.
const maxSubscriptionTags = 256

// tagFilter is a parsed TAG subscription ("tagA || tagB"). It implements
// engine.MessageFilter: the store calls MatchTagsCode with the consume-queue entry's tags
// hash, then MatchProperties with the record's properties for an exact tag check (two tags
// may share a hash). A nil *tagFilter matches everything. Immutable after parse, so it is
// shared by every pull of the group without locking.
type tagFilter struct {
	expr  string
	codes []int64             // tags hashes, one per tag
	tags  map[string]struct{} // exact tags
}

// parseTagExpression parses a TAG subscription expression. "" and "*" subscribe to every
// message and return nil.
func parseTagExpression(expr string) (*tagFilter, error) {
	trimmed := strings.TrimSpace(expr)
	if trimmed == "" || trimmed == "*" {
		return nil, nil
	}
	f := &tagFilter{expr: expr, tags: make(map[string]struct{})}
	for part := range strings.SplitSeq(trimmed, "||") {
		tag := strings.TrimSpace(part)
		if tag == "" {
			continue
		}
		if _, dup := f.tags[tag]; dup {
			continue
		}
		if len(f.tags) == maxSubscriptionTags {
			return nil, fmt.Errorf("subscription %q has more than %d tags", expr, maxSubscriptionTags)
		}
		f.tags[tag] = struct{}{}
		f.codes = append(f.codes, record.TagsHash(tag))
	}
	if len(f.tags) == 0 {
		return nil, fmt.Errorf("subscription %q names no tag", expr)
	}
	return f, nil
}

// MatchTagsCode reports whether a consume-queue entry's tags hash may match.
func (f *tagFilter) MatchTagsCode(tagsCode int64) bool {
	if f == nil {
		return true
	}
	for _, c := range f.codes {
		if c == tagsCode {
			return true
		}
	}
	return false
}

// MatchProperties checks the record's TAGS exactly. It does not allocate.
func (f *tagFilter) MatchProperties(props []byte) bool {
	if f == nil {
		return true
	}
	tag, ok := record.Property(props, record.PropTags)
	if !ok {
		return false
	}
	_, match := f.tags[string(tag)]
	return match
}
