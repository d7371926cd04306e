package sdk

import (
	"testing"
	"time"
)

func TestEventQueueOrderAndStop(t *testing.T) {
	var got []EventType
	q := newEventQueue(func(e Event) { got = append(got, e.Type) })
	for _, typ := range []EventType{EventConnecting, EventConnected, EventRekeyed, EventDisconnected} {
		q.push(Event{Type: typ})
	}
	q.stop() // delivers what is queued, then returns
	want := []EventType{EventConnecting, EventConnected, EventRekeyed, EventDisconnected}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	q.push(Event{Type: EventStats}) // after stop: dropped, no panic
	q.stop()
}

// TestEventQueueStopFromCallback: an app that closes the client from its
// event callback must not deadlock.
func TestEventQueueStopFromCallback(t *testing.T) {
	var q *eventQueue
	done := make(chan struct{})
	q = newEventQueue(func(e Event) {
		if e.Type == EventDisconnected {
			q.stop()
			close(done)
		}
	})
	q.push(Event{Type: EventDisconnected})
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("stop from inside the callback deadlocked")
	}
}

func TestEventQueueNeverStarted(t *testing.T) {
	q := newEventQueue(func(Event) {})
	q.stop()
	q.push(Event{Type: EventConnecting})
}
