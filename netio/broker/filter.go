package broker

import (
	"fmt"
	"strings"
	"sync"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/filter"
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

// sqlFilter is a SQL92 subscription: every consume-queue entry passes the tags check and
// the compiled selector decides on the record's properties.
type sqlFilter struct{ expr *filter.Expr }

func (f sqlFilter) MatchTagsCode(int64) bool          { return true }
func (f sqlFilter) MatchProperties(props []byte) bool { return f.expr.Match(props) }

// compileSubscription turns a subscription (expression type and text) into the store's
// filter. A nil filter with a nil error means "every message". Its errors name the
// expression (and, for SQL92, the byte position the parser stopped at): the broker sends
// them back as the remark of SUBSCRIPTION_PARSE_FAILED at heartbeat, CHECK_CLIENT_CONFIG
// and pull.
func compileSubscription(expressionType, expr string) (engine.MessageFilter, error) {
	switch expressionType {
	case "", exprTag:
		f, err := parseTagExpression(expr)
		if err != nil || f == nil {
			return nil, err // a nil *tagFilter must not become a non-nil interface
		}
		return f, nil
	case exprSQL92:
		e, err := filter.Compile(expr)
		if err != nil {
			return nil, err
		}
		return sqlFilter{e}, nil
	default:
		return nil, fmt.Errorf("expression type %q of %q is neither TAG nor SQL92", expressionType, expr)
	}
}

// maxCachedSubscriptions bounds subscriptionCache; at the bound it is emptied and refills.
const maxCachedSubscriptions = 4096

// maxCachedExpressionBytes bounds the expressions subscriptionCache keeps (and the key it
// builds on the stack); longer ones are compiled on every pull.
const maxCachedExpressionBytes = 512

// subscriptionCache holds the compiled filters of the subscriptions pulls carry (a pull
// consumer sends its expression on every pull), so each expression is compiled once, not
// per pull, and such a pull allocates nothing once its expression is known. Filters are
// immutable, so one is shared by every pull that carries the same expression.
type subscriptionCache struct {
	mu struct {
		sync.Mutex
		m map[string]compiledSubscription // expressionType 0x00 expression
	}
}

type compiledSubscription struct {
	f   engine.MessageFilter
	err error
}

// compile returns the filter of (expressionType, expr) as compileSubscription does.
func (c *subscriptionCache) compile(expressionType, expr []byte) (engine.MessageFilter, error) {
	if len(expressionType)+1+len(expr) > maxCachedExpressionBytes {
		return compileSubscription(string(expressionType), string(expr))
	}
	var buf [maxCachedExpressionBytes]byte
	key := append(append(append(buf[:0], expressionType...), 0), expr...)
	c.mu.Lock()
	cs, ok := c.mu.m[string(key)]
	c.mu.Unlock()
	if ok {
		return cs.f, cs.err
	}
	f, err := compileSubscription(string(expressionType), string(expr))
	c.mu.Lock()
	if c.mu.m == nil || len(c.mu.m) >= maxCachedSubscriptions {
		c.mu.m = make(map[string]compiledSubscription)
	}
	c.mu.m[string(key)] = compiledSubscription{f, err}
	c.mu.Unlock()
	return f, err
}
