package desktop

import (
	"testing"

	"github.com/qcdvpn/qcdvpn/sdk"
)

// FuzzApplySettings: any document either fails with an error or comes out
// as a profile that parses, with the switches as asked; never a panic.
func FuzzApplySettings(f *testing.F) {
	f.Add([]byte(testProfile), true, false)
	f.Add([]byte(`{"name":"x","gateways":["192.0.2.1"],"qcd":{"enabled":false},"resumption":"yes"}`), false, true)
	f.Add([]byte(`{"qcd":null}`), true, true)
	f.Add([]byte(`[1,2]`), false, false)
	f.Fuzz(func(t *testing.T, doc []byte, qcd, res bool) {
		out, err := ApplySettings(doc, Settings{QCD: qcd, Resumption: res})
		if err != nil {
			return
		}
		p, err := sdk.ParseProfile(out)
		if err != nil {
			t.Fatalf("ApplySettings returned a profile that does not parse: %v", err)
		}
		if p.QCDEnabled() != qcd || p.ResumptionEnabled() != res {
			t.Fatalf("qcd %v resumption %v, want %v %v", p.QCDEnabled(), p.ResumptionEnabled(), qcd, res)
		}
	})
}

// FuzzStoreImport: whatever a user picks in the import dialog, Import
// stores a profile that parses or refuses with one line; never a panic.
func FuzzStoreImport(f *testing.F) {
	f.Add("corp.json", []byte(testProfile))
	f.Add("x.sswan", []byte(`{"uuid":"5f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190","type":"ikev2-eap","remote":{"addr":"vpn.example.org"},"local":{"eap_id":"bob"}}`))
	f.Add("broken.json", []byte(`{"name":`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		s := NewStore(t.TempDir())
		e, err := s.Import(name, data, "", Secrets{Password: "pw"})
		if err != nil {
			for _, c := range err.Error() {
				if c == '\n' {
					t.Fatalf("error on more than one line: %q", err)
				}
			}
			return
		}
		b, err := s.Load(e.Name)
		if err != nil {
			t.Fatalf("stored %q but cannot load it: %v", e.Name, err)
		}
		if _, err := sdk.ParseProfile(b); err != nil {
			t.Fatalf("stored profile does not parse: %v", err)
		}
	})
}
