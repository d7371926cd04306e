package gateway

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// childMap persists which IKE SA each of our inbound ESP SPIs belongs to
// (RFC 6290 §8.2), so that after a crash ESP for a lost SA is answered
// with INVALID_SPI carrying that SA's tokens: the client learns in one
// round trip, not after a liveness check. Entries of SAs that ended
// normally are removed; those of a crash stay until maxChildAge.
type childMap struct {
	db *bolt.DB
	mu sync.Mutex
	// owners maps a session to its SPIs, to drop them when it ends.
	owners map[any][]uint32
}

var childBucket = []byte("children/v1")

// maxChildAge bounds how long a crashed SA's mapping is kept.
const maxChildAge = 24 * time.Hour

func openChildMap(path string) (*childMap, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("gateway: opening %s: %w (is another gateway using this state_dir?)", path, err)
	}
	// No fsync per SA: the mapping must survive the gateway process
	// crashing (kill -9), which the page cache gives; after a crash of
	// the whole host it is only an optimisation (clients still find out
	// through INVALID_IKE_SPI), not worth a disk flush per handshake.
	db.NoSync = true
	m := &childMap{db: db, owners: map[any][]uint32{}}
	cutoff := time.Now().Add(-maxChildAge).Unix()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(childBucket)
		if err != nil {
			return err
		}
		var old [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			if len(v) != 24 || int64(binary.BigEndian.Uint64(v[16:])) < cutoff {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range old {
			_ = b.Delete(k)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("gateway: %s: %w", path, err)
	}
	return m, nil
}

func (m *childMap) put(owner any, spi uint32, spii, spir uint64) {
	m.mu.Lock()
	m.owners[owner] = append(m.owners[owner], spi)
	m.mu.Unlock()
	v := make([]byte, 24)
	binary.BigEndian.PutUint64(v, spii)
	binary.BigEndian.PutUint64(v[8:], spir)
	binary.BigEndian.PutUint64(v[16:], uint64(time.Now().Unix()))
	_ = m.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(childBucket).Put(binary.BigEndian.AppendUint32(nil, spi), v)
	})
}

func (m *childMap) lookup(spi uint32) (spii, spir uint64, ok bool) {
	_ = m.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(childBucket).Get(binary.BigEndian.AppendUint32(nil, spi))
		if len(v) == 24 {
			spii, spir, ok = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), true
		}
		return nil
	})
	return spii, spir, ok
}

// rekeyed points every SPI of owner at the IKE SA's new SPIs.
func (m *childMap) rekeyed(owner any, spii, spir uint64) {
	m.mu.Lock()
	spis := append([]uint32(nil), m.owners[owner]...)
	m.owners[owner] = nil
	m.mu.Unlock()
	for _, spi := range spis {
		m.put(owner, spi, spii, spir)
	}
}

func (m *childMap) drop(spi uint32) {
	_ = m.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(childBucket).Delete(binary.BigEndian.AppendUint32(nil, spi))
	})
}

// dropOwner forgets the SPIs of a session that ended normally.
func (m *childMap) dropOwner(owner any) {
	m.mu.Lock()
	spis := m.owners[owner]
	delete(m.owners, owner)
	m.mu.Unlock()
	if len(spis) == 0 {
		return
	}
	_ = m.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(childBucket)
		for _, spi := range spis {
			_ = b.Delete(binary.BigEndian.AppendUint32(nil, spi))
		}
		return nil
	})
}

func (m *childMap) close() { m.db.Close() }
