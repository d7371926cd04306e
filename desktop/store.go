package desktop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qcdvpn/qcdvpn/internal/pemfile"
	"github.com/qcdvpn/qcdvpn/profileimport"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// Store keeps the user's profiles as JSON files (0600) in one directory
// (0700), by default DefaultStoreDir. Every stored file has been through
// sdk's strict profile parser, so the list never shows a profile that
// cannot connect for a syntax reason.
type Store struct {
	dir string
}

// DefaultStoreDir is qcdvpn/profiles in the user's config directory
// ($XDG_CONFIG_HOME or ~/.config on Linux).
func DefaultStoreDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("profiles: no config directory: %w", err)
	}
	return filepath.Join(d, "qcdvpn", "profiles"), nil
}

// NewStore uses dir for the profiles; it is created on the first import.
func NewStore(dir string) *Store { return &Store{dir: dir} }

// Dir is where the profiles are kept.
func (s *Store) Dir() string { return s.dir }

// Entry is one stored profile.
type Entry struct {
	// Name is the profile's name field, also its file name without .json.
	Name string
	// Gateways are the profile's gateways, primary first.
	Gateways []string
	// Warnings (from Import) name what an imported .sswan said that the
	// profile leaves out.
	Warnings []string
}

// List returns the stored profiles sorted by name. Files that no longer
// parse are left out and reported in the error (the others are still
// returned).
func (s *Store) List() ([]Entry, error) {
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	var out []Entry
	var bad []string
	for _, de := range des {
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, de.Name()))
		if err != nil {
			bad = append(bad, de.Name())
			continue
		}
		p, err := sdk.ParseProfile(data)
		if err != nil {
			bad = append(bad, de.Name())
			continue
		}
		out = append(out, Entry{Name: p.Name, Gateways: p.Gateways})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	if len(bad) > 0 {
		return out, fmt.Errorf("profiles: skipped unreadable files in %s: %s", s.dir, strings.Join(bad, ", "))
	}
	return out, nil
}

// Load returns the stored JSON document of the profile name.
func (s *Store) Load(name string) ([]byte, error) {
	file, err := s.file(name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("profile %q: %s", name, pemfile.PathErrReason(err))
	}
	return data, nil
}

// Remove deletes the stored profile name.
func (s *Store) Remove(name string) error {
	file, err := s.file(name)
	if err != nil {
		return err
	}
	if err := os.Remove(file); err != nil {
		return fmt.Errorf("profile %q: %s", name, pemfile.PathErrReason(err))
	}
	return nil
}

// Secrets is what a .sswan file cannot hold and the user gives on import.
type Secrets struct {
	// Password is the EAP password of an ikev2-eap profile.
	Password string
	// P12Password decrypts an encrypted PKCS#12 container (local.p12).
	P12Password string
}

// NeedSecret says which secret an import lacks: "password" (EAP) or
// "p12" (the PKCS#12 container's), or "" if the error is another one.
func NeedSecret(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "holds no password"):
		return "password"
	case strings.Contains(s, "container is encrypted"), strings.Contains(s, "local.p12: wrong password"):
		return "p12"
	}
	return ""
}

// ImportFile imports the profile at path (see Import).
func (s *Store) ImportFile(path string, sec Secrets) (Entry, error) {
	data, err := pemfile.ReadFile(path, profileimport.MaxInputSize)
	if err != nil {
		return Entry{}, fmt.Errorf("import %s: %s", filepath.Base(path), pemfile.PathErrReason(err))
	}
	return s.Import(filepath.Base(path), data, filepath.Dir(path), sec)
}

// Import validates a profile and stores it under its name, replacing a
// stored profile of the same name. A strongSwan Android profile (.sswan)
// is converted by profileimport, its certificates and key put inline, so
// the stored profile is one self-contained file; sec gives the secrets a
// .sswan cannot hold. A qcdvpn JSON profile is parsed strictly; its
// relative file paths (ca, auth.cert, auth.key, state_dir) are made
// absolute against srcDir so the stored copy still finds them, and the
// files must exist and parse. Entry.Warnings lists what a .sswan said
// that the profile leaves out.
func (s *Store) Import(fileName string, data []byte, srcDir string, sec Secrets) (Entry, error) {
	fail := func(err error) (Entry, error) { return Entry{}, fmt.Errorf("import %s: %s", fileName, oneLine(err)) }
	res, err := profileimport.Convert(data, profileimport.Options{Inline: true, Password: sec.Password, P12Password: sec.P12Password})
	if err != nil {
		return fail(err)
	}
	data = res.Profile
	var warnings []string
	if res.Format == profileimport.FormatSSwan {
		warnings = res.Warnings
		srcDir = "" // inline PEM; nothing relative to resolve
	}
	if _, err := sdk.ParseProfile(data); err != nil {
		return fail(err)
	}
	doc, err := decodeDoc(data)
	if err != nil {
		return fail(err)
	}
	absPaths(doc, srcDir)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fail(err)
	}
	p, err := sdk.ParseProfile(out)
	if err != nil {
		return fail(err)
	}
	if _, err := p.LoadCredentials(); err != nil {
		return fail(err)
	}
	file, err := s.file(p.Name)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fail(err)
	}
	tmp, err := os.CreateTemp(s.dir, ".import-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fail(err)
	}
	return Entry{Name: p.Name, Gateways: p.Gateways, Warnings: warnings}, nil
}

// file is the path of profile name; names that cannot be file names
// (path separators, leading dot) are refused.
func (s *Store) file(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("profile name %q cannot be a file name (no '/', '\\' or leading '.')", name)
	}
	return filepath.Join(s.dir, name+".json"), nil
}

// decodeDoc reads a JSON object keeping numbers as written.
func decodeDoc(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// absPaths rewrites the relative file paths of a profile document.
func absPaths(doc map[string]any, dir string) {
	if dir == "" {
		return
	}
	fix := func(m map[string]any, k string) {
		if v, ok := m[k].(string); ok {
			m[k] = pemfile.Rel(dir, v)
		}
	}
	fix(doc, "ca")
	fix(doc, "state_dir")
	if a, ok := doc["auth"].(map[string]any); ok {
		fix(a, "cert")
		fix(a, "key")
	}
}

// Settings are the switches the app applies to every profile it connects.
type Settings struct {
	// QCD turns RFC 6290 quick crash detection on or off.
	QCD bool
	// Resumption turns RFC 5723 session resumption on or off.
	Resumption bool
}

// ApplySettings returns the profile document with qcd.enabled and
// resumption.enabled set from st, other fields as they were.
func ApplySettings(profileJSON []byte, st Settings) ([]byte, error) {
	doc, err := decodeDoc(profileJSON)
	if err != nil {
		return nil, fmt.Errorf("profile: %s", oneLine(err))
	}
	set := func(k string, on bool) {
		m, _ := doc[k].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		m["enabled"] = on
		doc[k] = m
	}
	set("qcd", st.QCD)
	set("resumption", st.Resumption)
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if _, err := sdk.ParseProfile(out); err != nil {
		return nil, err
	}
	return out, nil
}

// oneLine keeps the first line of an error.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
