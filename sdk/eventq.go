package sdk

import (
	"sync"
	"sync/atomic"
)

// eventQueue delivers events to the app's callback in order, from one
// goroutine of its own, so that hooks running on protocol goroutines never
// wait for the app and the app may call Close from its callback.
type eventQueue struct {
	deliver func(Event)

	mu      sync.Mutex
	q       []Event
	stopped bool
	kick    chan struct{}
	done    chan struct{}
	once    sync.Once
	inside  atomic.Bool // the callback is running
}

func newEventQueue(deliver func(Event)) *eventQueue {
	return &eventQueue{deliver: deliver, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

func (q *eventQueue) push(e Event) {
	if q.deliver == nil {
		return
	}
	q.once.Do(func() { go q.run() })
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return
	}
	q.q = append(q.q, e)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run() {
	defer close(q.done)
	for range q.kick {
		for {
			q.mu.Lock()
			if len(q.q) == 0 {
				stopped := q.stopped
				q.mu.Unlock()
				if stopped {
					return
				}
				break
			}
			e := q.q[0]
			q.q = q.q[1:]
			q.mu.Unlock()
			q.inside.Store(true)
			q.deliver(e)
			q.inside.Store(false)
		}
	}
}

// stop delivers what is queued and ends the goroutine. Called from the
// callback itself it does not wait (that would wait for itself).
func (q *eventQueue) stop() {
	q.mu.Lock()
	q.stopped = true
	q.mu.Unlock()
	started := false
	q.once.Do(func() { close(q.done) }) // never started: nothing to wait for
	select {
	case <-q.done:
	default:
		started = true
	}
	if !started {
		return
	}
	select {
	case q.kick <- struct{}{}:
	default:
	}
	if !q.inside.Load() {
		<-q.done
	}
}
