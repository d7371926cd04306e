package ike

import (
	"errors"
	"fmt"

	"github.com/qcdvpn/qcdvpn/ike/wire"
)

// Errors a caller can test for with errors.Is.
var (
	// ErrAuthenticationFailed: the gateway rejected our credentials, or its
	// own AUTH did not verify.
	ErrAuthenticationFailed = errors.New("authentication failed")
	// ErrCredentialsRejected: the gateway refused our credentials
	// (AUTHENTICATION_FAILED, EAP-Failure): trying them again or on another
	// gateway of the same service will not help. It is also
	// ErrAuthenticationFailed.
	ErrCredentialsRejected = fmt.Errorf("%w: the gateway rejected our credentials", ErrAuthenticationFailed)
	// ErrNoResponse: the peer did not answer within the retransmission budget.
	ErrNoResponse = errors.New("no response from gateway")
	// ErrNoProposalChosen: the gateway accepted none of our proposals.
	ErrNoProposalChosen = errors.New("no proposal chosen")
	// ErrIdentityMismatch: the gateway identified itself as someone else.
	ErrIdentityMismatch = errors.New("gateway identity mismatch")
	// ErrPeerDeleted: the gateway deleted the IKE SA.
	ErrPeerDeleted = errors.New("gateway deleted the IKE SA")
	// ErrClosed: the session was closed locally.
	ErrClosed = errors.New("session closed")
)

// NotifyError is an error notification the peer sent.
type NotifyError struct {
	Exchange wire.ExchangeType
	Type     wire.NotifyType
}

func (e *NotifyError) Error() string {
	return fmt.Sprintf("gateway answered %s with %s", e.Exchange, e.Type)
}

// Is maps well-known notifies onto the sentinel errors.
func (e *NotifyError) Is(target error) bool {
	switch e.Type {
	case wire.NotifyAuthenticationFailed:
		return target == ErrAuthenticationFailed
	case wire.NotifyNoProposalChosen:
		return target == ErrNoProposalChosen
	}
	return false
}

// firstError returns an error for the first error notify in ps, if any.
func firstError(exch wire.ExchangeType, ps []wire.Payload) error {
	for _, p := range ps {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
			return &NotifyError{Exchange: exch, Type: n.NotifyType}
		}
	}
	return nil
}
