package main

import "testing"

func TestQuoteBareKeys(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}}`, `{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}}`},
		{`{ 0 : "a", -1:"b"}`, `{ "0" : "a", "-1":"b"}`},
		{`{"0":"a","n":[1,2,3],"s":"{0:x,1:y}"}`, `{"0":"a","n":[1,2,3],"s":"{0:x,1:y}"}`},
		{`{"s":"a\"{0:","k":{7:"v"}}`, `{"s":"a\"{0:","k":{"7":"v"}}`},
		{`[{1:2},3]`, `[{"1":2},3]`},
		{``, ``},
	}
	for _, tt := range tests {
		if got := string(quoteBareKeys([]byte(tt.in))); got != tt.want {
			t.Errorf("quoteBareKeys(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func FuzzQuoteBareKeys(f *testing.F) {
	f.Add([]byte(`{"brokerAddrs":{0:"a"}}`))
	f.Add([]byte(`{"s":"\\"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := quoteBareKeys(b)
		if len(out) < len(b) {
			t.Errorf("quoteBareKeys shrank %q to %q", b, out)
		}
		if again := quoteBareKeys(out); string(again) != string(out) {
			t.Errorf("quoteBareKeys is not idempotent: %q -> %q -> %q", b, out, again)
		}
	})
}
