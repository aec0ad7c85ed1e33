package mqtt

import "testing"

func TestTopics(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{StatusTopic("edge-01"), "plugs/edge-01/status"},
		{StateTopic("edge-01", "heart-rate", "patient-17"), "plugs/edge-01/heart-rate/patient-17/state"},
		{DataTopic("edge-01", "heart-rate", "default"), "plugs/edge-01/heart-rate/default/data"},
		{StateTopic("a/b", "p+q", "#"), "plugs/a%2Fb/p%2Bq/%23/state"},
		{StatusTopic("50%"), "plugs/50%25/status"},
		{StatusTopic(""), "plugs/_/status"},
		{StatusTopic("nul\x00"), "plugs/nul%00/status"},
	} {
		if tc.got != tc.want {
			t.Errorf("topic = %q, want %q", tc.got, tc.want)
		}
	}
}

func TestRingDropsOldest(t *testing.T) {
	r := newRing(3)
	var dropped int
	for i := range 5 {
		if r.push(message{topic: string(rune('a' + i))}) {
			dropped++
		}
	}
	if dropped != 2 || r.len() != 3 {
		t.Fatalf("dropped %d, len %d; want 2, 3", dropped, r.len())
	}
	var got string
	for {
		m, ok := r.pop()
		if !ok {
			break
		}
		got += m.topic
	}
	if got != "cde" {
		t.Errorf("popped %q, want cde", got)
	}
}
