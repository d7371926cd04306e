package resume

import (
	"bytes"
	"cmp"
	"crypto/cipher"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DefaultStoreFile is the database file name used when
// [StoreOptions.File] is empty.
const DefaultStoreFile = "resume.db"

// ErrStoreLocked is returned by [OpenStore] when another process (or
// another Store in this process) has the database open.
var ErrStoreLocked = errors.New("resume: store is in use by another process")

const (
	storeKDFInfo       = "qcdvpn resume store key v1"
	defaultLockTimeout = 2 * time.Second
	recordsBucketName  = "records/v1"
)

// StoreOptions tune [OpenStore]. The zero value is fine.
type StoreOptions struct {
	// Logger receives warnings about discarded records and databases;
	// nil discards them. Secrets are never logged, only record IDs and
	// reasons.
	Logger *slog.Logger
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// File is the database file name inside the directory (no path
	// separators); empty means DefaultStoreFile.
	File string

	lockTimeout time.Duration // tests shorten the wait for the file lock
}

// Store is a crash-safe bbolt database of sealed [Record]s, one per IKE
// SA. Each value is AES-256-GCM over the record's JSON encoding with the
// record ID as additional data and a random nonce (see the package
// documentation). Writes are committed with fsync, so a record that Put
// returned for survives a crash or power loss, and a kill at any moment
// leaves the previous consistent state.
//
// A Store is safe for concurrent use. Only one Store (in any process) may
// have a database open at a time.
type Store struct {
	db   *bolt.DB
	aead cipher.AEAD
	log  *slog.Logger
	now  func() time.Time
	path string

	closeOnce sync.Once
	closeErr  error
}

// OpenStore opens the store in dir, creating dir (0700) and the database
// (0600) if needed. kp gives the key that seals the records.
//
// If another process has the database open, OpenStore waits about two
// seconds and then fails with [ErrStoreLocked] rather than hanging.
//
// A database file that bbolt cannot open or read (corrupt) is renamed to
// <file>.corrupt-<unix seconds> with a Warn log and a fresh database is
// created: losing tickets only costs a full IKE exchange, failing to start
// would cost the VPN. Records that fail to decrypt or decode (for instance
// because the key changed) are deleted with a Warn naming only the record
// ID and the reason.
func OpenStore(dir string, kp KeyProvider, opts StoreOptions) (*Store, error) {
	if dir == "" {
		return nil, errors.New("resume: store directory is empty")
	}
	if kp == nil {
		return nil, errors.New("resume: no store key provider")
	}
	file := opts.File
	if file == "" {
		file = DefaultStoreFile
	}
	if file != filepath.Base(file) || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
		return nil, fmt.Errorf("resume: store file name %q must not contain a path", file)
	}
	key, err := kp.StoreKey()
	if err != nil {
		return nil, fmt.Errorf("resume: store key: %w", err)
	}
	if len(key) != StoreKeySize {
		return nil, fmt.Errorf("resume: store key is %d bytes, want %d", len(key), StoreKeySize)
	}
	aead, err := newAEAD(key, storeKDFInfo)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("resume: store directory: %w", err)
	}
	s := &Store{
		aead: aead,
		log:  opts.Logger,
		now:  opts.Now,
		path: filepath.Join(dir, file),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	timeout := opts.lockTimeout
	if timeout <= 0 {
		timeout = defaultLockTimeout
	}
	db, err := s.openDB(timeout)
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

// corruptError is a panic from bbolt (or a memory fault in its mapping),
// which only a damaged file causes.
type corruptError struct{ reason any }

func (e *corruptError) Error() string { return fmt.Sprintf("database damaged: %v", e.reason) }

// guard runs fn, turning a bbolt panic, or a fault reading the mapped file
// (e.g. SIGBUS past the end of a truncated file), into a corruptError
// instead of a crash.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = &corruptError{reason: r}
		}
	}()
	return fn()
}

// isCorrupt tells a damaged database from a missing permission, a full
// disk or a lock held elsewhere: only the first is moved aside. bbolt
// reports some damage with plain error strings ("file size too small"), so
// beyond its sentinels any error that is not an operating-system error
// counts as damage if the file has content.
func isCorrupt(err error, path string) bool {
	var ce *corruptError
	if errors.As(err, &ce) ||
		errors.Is(err, berrors.ErrInvalid) ||
		errors.Is(err, berrors.ErrChecksum) ||
		errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrInvalidMapping) {
		return true
	}
	var pe *fs.PathError
	var errno syscall.Errno
	if errors.As(err, &pe) || errors.As(err, &errno) || errors.Is(err, berrors.ErrTimeout) {
		return false
	}
	fi, serr := os.Stat(path)
	return serr == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// openDB opens and checks the database, moving a corrupt one aside once.
func (s *Store) openDB(timeout time.Duration) (*bolt.DB, error) {
	for attempt := 0; ; attempt++ {
		var db *bolt.DB
		err := guard(func() error {
			var err error
			db, err = bolt.Open(s.path, 0o600, &bolt.Options{Timeout: timeout})
			return err
		})
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrStoreLocked, s.path)
		}
		if err == nil {
			if err = s.check(db); err == nil {
				return db, nil
			}
			_ = guard(db.Close)
		}
		// A panic inside bolt.Open leaks its half-open handle (and lock);
		// the fresh file after the rename is another inode, so that does
		// not get in the way.
		if attempt > 0 || !isCorrupt(err, s.path) {
			return nil, fmt.Errorf("resume: open store %s: %w", s.path, err)
		}
		if err := s.moveAside(err); err != nil {
			return nil, err
		}
	}
}

// check creates the bucket if needed and reads every record, which walks
// every page of the tree: damage shows now rather than later. Records
// that do not decrypt or decode are deleted.
func (s *Store) check(db *bolt.DB) error {
	var missing bool
	bad := map[string][]byte{}
	reasons := map[string]error{}
	err := guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(recordsBucketName))
			if b == nil {
				missing = true
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if _, err := openRecord(s.aead, string(k), v); err != nil {
					bad[string(k)] = bytes.Clone(v)
					reasons[string(k)] = err
				}
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	if missing {
		if err := guard(func() error {
			return db.Update(func(tx *bolt.Tx) error {
				_, err := tx.CreateBucketIfNotExists([]byte(recordsBucketName))
				return err
			})
		}); err != nil {
			return err
		}
	}
	return s.deleteBad(db, bad, reasons)
}

// moveAside renames the damaged database out of the way.
func (s *Store) moveAside(cause error) error {
	base := fmt.Sprintf("%s.corrupt-%d", s.path, s.now().Unix())
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if i > 100 {
			return fmt.Errorf("resume: store %s is corrupt (%v) and no free name to move it to", s.path, cause)
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(s.path, dst); err != nil {
		return fmt.Errorf("resume: store %s is corrupt (%v) and cannot be moved aside: %w", s.path, cause, err)
	}
	s.log.Warn("resume: store database is corrupt; moved aside, starting empty",
		"path", s.path, "moved_to", dst, "reason", cause.Error())
	return nil
}

// deleteBad removes undecodable values, unless they changed meanwhile.
func (s *Store) deleteBad(db *bolt.DB, bad map[string][]byte, reasons map[string]error) error {
	if len(bad) == 0 {
		return nil
	}
	var deleted []string
	err := guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			deleted = deleted[:0]
			b := tx.Bucket([]byte(recordsBucketName))
			if b == nil {
				return nil
			}
			for id, v := range bad {
				if cur := b.Get([]byte(id)); cur != nil && bytes.Equal(cur, v) {
					if err := b.Delete([]byte(id)); err != nil {
						return err
					}
					deleted = append(deleted, id)
				}
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.warnDeleted(deleted, reasons)
	return nil
}

// warnDeleted logs the records dropped because they could not be read.
func (s *Store) warnDeleted(ids []string, reasons map[string]error) {
	slices.Sort(ids)
	for _, id := range ids {
		s.log.Warn("resume: discarded unreadable record", "id", id, "reason", reasons[id].Error())
	}
}

// view runs fn in a read transaction on the records bucket.
func (s *Store) view(fn func(b *bolt.Bucket) error) error {
	return guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(recordsBucketName))
			if b == nil {
				return errors.New("resume: store has no records bucket")
			}
			return fn(b)
		})
	})
}

// update runs fn in a write transaction on the records bucket.
func (s *Store) update(fn func(b *bolt.Bucket) error) error {
	return guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte(recordsBucketName))
			if err != nil {
				return err
			}
			return fn(b)
		})
	})
}

// nowWall is the current wall-clock time. The monotonic reading is
// dropped so that comparisons with Expiry count time spent asleep.
func (s *Store) nowWall() time.Time { return s.now().Round(0) }

// expired reports whether r's ticket has expired at now.
func expired(r Record, now time.Time) bool {
	return !r.Expiry.IsZero() && !now.Before(r.Expiry)
}

// usable reports whether r holds a ticket that may be presented now.
func usable(r Record, now time.Time) bool {
	return len(r.Ticket) > 0 && !r.Expiry.IsZero() && now.Before(r.Expiry)
}

// newestFirst orders records by creation, then expiry, newest first, and
// by ID for a stable order.
func newestFirst(a, b Record) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	if c := b.Expiry.Compare(a.Expiry); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// Put inserts or replaces the record with r.ID. The write is fsync'd
// before Put returns. A record with a ticket must have an Expiry.
func (s *Store) Put(r Record) error {
	if err := checkID(r.ID); err != nil {
		return err
	}
	if len(r.Ticket) > 0 && r.Expiry.IsZero() {
		return fmt.Errorf("resume: record %q has a ticket but no expiry", r.ID)
	}
	if r.Created.IsZero() {
		r.Created = s.nowWall()
	}
	val, err := sealRecord(s.aead, r)
	if err != nil {
		return err
	}
	if err := s.update(func(b *bolt.Bucket) error { return b.Put([]byte(r.ID), val) }); err != nil {
		return fmt.Errorf("resume: put %q: %w", r.ID, err)
	}
	return nil
}

// Get returns the record with id, expired or not. A record that cannot
// be decrypted or decoded is deleted with a Warn and reported as absent.
func (s *Store) Get(id string) (Record, bool, error) {
	if err := checkID(id); err != nil {
		return Record{}, false, err
	}
	var (
		r     Record
		found bool
		bad   []byte
		why   error
	)
	err := s.view(func(b *bolt.Bucket) error {
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		var err error
		if r, err = openRecord(s.aead, id, v); err != nil {
			bad, why = bytes.Clone(v), err
			return nil
		}
		found = true
		return nil
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("resume: get %q: %w", id, err)
	}
	if bad != nil {
		if err := s.deleteBad(s.db, map[string][]byte{id: bad}, map[string]error{id: why}); err != nil {
			return Record{}, false, fmt.Errorf("resume: get %q: %w", id, err)
		}
	}
	return r, found, nil
}

// Delete removes the record with id; removing an absent one is not an
// error. Call it when the IKE SA is deleted or its credentials are
// invalidated (RFC 5723 §6.2).
func (s *Store) Delete(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := s.update(func(b *bolt.Bucket) error { return b.Delete([]byte(id)) }); err != nil {
		return fmt.Errorf("resume: delete %q: %w", id, err)
	}
	return nil
}

// scan decodes all records of b, splitting off the unreadable ones.
func (s *Store) scan(b *bolt.Bucket) (recs []Record, bad map[string][]byte, reasons map[string]error, err error) {
	err = b.ForEach(func(k, v []byte) error {
		r, err := openRecord(s.aead, string(k), v)
		if err != nil {
			if bad == nil {
				bad, reasons = map[string][]byte{}, map[string]error{}
			}
			bad[string(k)] = bytes.Clone(v)
			reasons[string(k)] = err
			return nil
		}
		recs = append(recs, r)
		return nil
	})
	return recs, bad, reasons, err
}

// Take returns the newest record for (profile, domain) holding an
// unexpired ticket, and in the same transaction removes the ticket and the
// state from the stored record, so that a ticket is never presented twice
// (RFC 5723 §4.3.1) even if the process dies right after. The rest of the
// record (QCD tokens, Child SPIs) stays. Expired and unreadable records are
// deleted on the way.
func (s *Store) Take(profile, domain string) (Record, bool, error) {
	now := s.nowWall()
	var (
		out     Record
		found   bool
		deleted []string
		reasons map[string]error
	)
	err := s.update(func(b *bolt.Bucket) error {
		recs, bad, why, err := s.scan(b)
		if err != nil {
			return err
		}
		deleted, reasons, found = deleted[:0], why, false
		for id := range bad {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
			deleted = append(deleted, id)
		}
		var best *Record
		for i := range recs {
			r := &recs[i]
			if expired(*r, now) {
				if err := b.Delete([]byte(r.ID)); err != nil {
					return err
				}
				continue
			}
			if r.Profile == profile && r.Domain == domain && usable(*r, now) &&
				(best == nil || newestFirst(*r, *best) < 0) {
				best = r
			}
		}
		if best == nil {
			return nil
		}
		rest := *best
		rest.Ticket, rest.State = nil, nil // State only serves to resume with this ticket
		val, err := sealRecord(s.aead, rest)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(rest.ID), val); err != nil {
			return err
		}
		out, found = *best, true
		return nil
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("resume: take: %w", err)
	}
	s.warnDeleted(deleted, reasons)
	return out, found, nil
}

// Candidates lists the records for (profile, domain) holding an unexpired
// ticket, newest first, without consuming any.
func (s *Store) Candidates(profile, domain string) ([]Record, error) {
	now := s.nowWall()
	all, err := s.readAll()
	if err != nil {
		return nil, fmt.Errorf("resume: candidates: %w", err)
	}
	var out []Record
	for _, r := range all {
		if r.Profile == profile && r.Domain == domain && usable(r, now) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Purge deletes the records whose ticket has expired, and any unreadable
// ones, returning how many were removed.
func (s *Store) Purge() (removed int, err error) {
	now := s.nowWall()
	var (
		deleted []string
		reasons map[string]error
	)
	err = s.update(func(b *bolt.Bucket) error {
		recs, bad, why, err := s.scan(b)
		if err != nil {
			return err
		}
		deleted, reasons, removed = deleted[:0], why, 0
		for id := range bad {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
			deleted = append(deleted, id)
		}
		removed = len(deleted)
		for _, r := range recs {
			if expired(r, now) {
				if err := b.Delete([]byte(r.ID)); err != nil {
					return err
				}
				removed++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("resume: purge: %w", err)
	}
	s.warnDeleted(deleted, reasons)
	return removed, nil
}

// List returns every readable record, expired or not, newest first.
func (s *Store) List() ([]Record, error) {
	recs, err := s.readAll()
	if err != nil {
		return nil, fmt.Errorf("resume: list: %w", err)
	}
	return recs, nil
}

// readAll decodes all records, newest first, deleting unreadable ones.
func (s *Store) readAll() ([]Record, error) {
	var (
		recs    []Record
		bad     map[string][]byte
		reasons map[string]error
	)
	err := s.view(func(b *bolt.Bucket) error {
		var err error
		recs, bad, reasons, err = s.scan(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.deleteBad(s.db, bad, reasons); err != nil {
		return nil, err
	}
	slices.SortFunc(recs, newestFirst)
	return recs, nil
}

// Close closes the database. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = guard(s.db.Close)
	})
	return s.closeErr
}
