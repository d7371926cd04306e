package wire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

func TestNotifyNames(t *testing.T) {
	known := map[NotifyType]string{
		NotifyUnsupportedCriticalPayload:    "UNSUPPORTED_CRITICAL_PAYLOAD",
		NotifyInvalidSyntax:                 "INVALID_SYNTAX",
		NotifyUseAssignedHoA:                "USE_ASSIGNED_HoA",
		NotifyStateNotFound:                 "STATE_NOT_FOUND",
		NotifyInitialContact:                "INITIAL_CONTACT",
		NotifyQuickCrashDetection:           "QUICK_CRASH_DETECTION",
		NotifyTicketLTOpaque:                "TICKET_LT_OPAQUE",
		NotifyChildlessIKEv2Supported:       "CHILDLESS_IKEV2_SUPPORTED",
		NotifyIKEv2FragmentationSupported:   "IKEV2_FRAGMENTATION_SUPPORTED",
		NotifyIntermediateExchangeSupported: "INTERMEDIATE_EXCHANGE_SUPPORTED",
		NotifyUseAggfrag:                    "USE_AGGFRAG",
		12345:                               "NOTIFY(12345)",
		0:                                   "NOTIFY(0)",
	}
	for n, want := range known {
		if got := n.String(); got != want {
			t.Errorf("NotifyType(%d).String() = %q, want %q", uint16(n), got, want)
		}
	}
	spot := map[NotifyType]uint16{
		NotifyInvalidIKESPI: 4, NotifyInvalidKEPayload: 17, NotifyAuthenticationFailed: 24,
		NotifyTSUnacceptable: 38, NotifyStateNotFound: 47, NotifyCookie: 16390, NotifyRedirect: 16407,
		NotifyTicketOpaque: 16413, NotifyQCDToken: 16419, NotifySignatureHashAlgorithms: 16431,
		NotifyUsePPK: 16435, NotifyUseAggfrag: 16442,
	}
	for n, v := range spot {
		if uint16(n) != v {
			t.Errorf("%s = %d, want %d", n, uint16(n), v)
		}
	}
	if !NotifyInvalidSyntax.IsError() || !NotifyType(16383).IsError() || NotifyInitialContact.IsError() {
		t.Errorf("IsError wrong")
	}
}

// TestEveryNotifyConstantNamed checks, from the source, that every Notify*
// constant has a distinct IANA-style name and no value is declared twice
// (apart from the documented NotifyQCDToken alias).
func TestEveryNotifyConstantNamed(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "notifytype.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	byValue := map[uint64]string{}
	names := map[string]bool{}
	count := 0
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || len(spec.Values) != 1 || !strings.HasPrefix(spec.Names[0].Name, "Notify") {
			return true
		}
		name := spec.Names[0].Name
		lit, ok := spec.Values[0].(*ast.BasicLit)
		if !ok {
			if name != "NotifyQCDToken" {
				t.Errorf("%s is not declared by a literal", name)
			}
			return true
		}
		v, err := strconv.ParseUint(lit.Value, 0, 16)
		if err != nil {
			t.Fatalf("%s = %s: %v", name, lit.Value, err)
		}
		count++
		if prev, dup := byValue[v]; dup {
			t.Errorf("%s and %s share value %d", prev, name, v)
		}
		byValue[v] = name
		s := NotifyType(v).String()
		if strings.HasPrefix(s, "NOTIFY(") || names[s] {
			t.Errorf("%s (%d) has name %q", name, v, s)
		}
		names[s] = true
		return true
	})
	if count < 87 {
		t.Errorf("only %d notify constants", count)
	}
}

func TestTypeNames(t *testing.T) {
	for e, want := range map[ExchangeType]string{
		ExchangeIKESAInit: "IKE_SA_INIT", ExchangeIKEAuth: "IKE_AUTH", ExchangeCreateChildSA: "CREATE_CHILD_SA",
		ExchangeInformational: "INFORMATIONAL", ExchangeIKESessionResume: "IKE_SESSION_RESUME",
		ExchangeIKEIntermediate: "IKE_INTERMEDIATE", ExchangeIKEFollowupKE: "IKE_FOLLOWUP_KE", 99: "EXCHANGE(99)",
	} {
		if got := e.String(); got != want {
			t.Errorf("ExchangeType(%d) = %q, want %q", uint8(e), got, want)
		}
	}
	for p, want := range map[PayloadType]string{
		PayloadNone: "NONE", PayloadSA: "SA", PayloadIDr: "IDr", PayloadCERTREQ: "CERTREQ", PayloadNonce: "Nonce",
		PayloadNotify: "Notify", PayloadTSr: "TSr", PayloadSK: "SK", PayloadEAP: "EAP", PayloadSKF: "SKF", 49: "PAYLOAD(49)",
	} {
		if got := p.String(); got != want {
			t.Errorf("PayloadType(%d) = %q, want %q", uint8(p), got, want)
		}
	}
	for p := PayloadType(0); p < 255; p++ {
		if p.known() != !strings.HasPrefix(p.String(), "PAYLOAD(") && p != PayloadNone {
			t.Errorf("PayloadType(%d) known=%v name=%q", uint8(p), p.known(), p)
		}
	}
}

func TestSummary(t *testing.T) {
	ps := []Payload{nil, (*Notify)(nil), &Notify{NotifyType: NotifyCookie}, &ID{Responder: true},
		&EncryptedFragment{Number: 2, Total: 5}, (*EncryptedFragment)(nil), &Unknown{PayloadType: 77}}
	if got, want := Summary(ps), "[nil N(nil) N(COOKIE) IDr SKF(2/5) SKF(nil) PAYLOAD(77)]"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	m := &Message{Header: Header{Exchange: ExchangeInformational, Flags: FlagResponse, MessageID: 9}}
	if got, want := m.String(), "INFORMATIONAL response #9 []"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// TestTypedNilPayloads checks that nil pointers of every type are refused,
// not dereferenced.
func TestTypedNilPayloads(t *testing.T) {
	for _, p := range []Payload{(*SA)(nil), (*KE)(nil), (*ID)(nil), (*Cert)(nil), (*CertReq)(nil), (*Auth)(nil),
		(*Nonce)(nil), (*Notify)(nil), (*Delete)(nil), (*VendorID)(nil), (*TS)(nil), (*CP)(nil), (*EAP)(nil),
		(*Encrypted)(nil), (*EncryptedFragment)(nil), (*Unknown)(nil)} {
		if _, _, err := AppendPayloads(nil, []Payload{&VendorID{}, p}); err == nil || !strings.Contains(err.Error(), "nil payload") {
			t.Errorf("%T: err = %v", p, err)
		}
	}
}
