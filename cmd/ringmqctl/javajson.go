package main

// Java's name server (fastjson) writes map keys that are numbers bare, e.g. brokerAddrs as
// {0:"10.0.0.1:10911"}, to clients older than 4.9.4 (ringmqctl announces 317, like the Go
// client). quoteBareKeys makes such a body valid JSON before it is decoded.

// quoteBareKeys returns b with every object key that is a bare integer quoted. Keys and
// values that are already strings, and everything inside strings, are left alone. It
// returns b itself when there is nothing to quote.
func quoteBareKeys(b []byte) []byte {
	var out []byte
	inString, escaped := false, false
	last := 0 // b[last:] is not yet copied to out
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			continue
		case '{', ',':
		default:
			continue
		}
		j := i + 1
		for j < len(b) && isJSONSpace(b[j]) {
			j++
		}
		k := j
		if k < len(b) && b[k] == '-' {
			k++
		}
		digits := k
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k == digits {
			continue
		}
		end := k
		for k < len(b) && isJSONSpace(b[k]) {
			k++
		}
		if k >= len(b) || b[k] != ':' {
			continue // a number in an array, not a key
		}
		out = append(out, b[last:j]...)
		out = append(out, '"')
		out = append(out, b[j:end]...)
		out = append(out, '"')
		last = end
		i = end - 1
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
