package wire

import "strconv"

// NotifyType is a Notify Message Type (IANA "IKEv2 Notify Message Types").
// Values below 16384 report errors, the rest carry status.
type NotifyType uint16

// Notify message types, named after their IANA names.
const (
	NotifyUnsupportedCriticalPayload      NotifyType = 1     // UNSUPPORTED_CRITICAL_PAYLOAD, RFC 7296
	NotifyInvalidIKESPI                   NotifyType = 4     // INVALID_IKE_SPI, RFC 7296
	NotifyInvalidMajorVersion             NotifyType = 5     // INVALID_MAJOR_VERSION, RFC 7296
	NotifyInvalidSyntax                   NotifyType = 7     // INVALID_SYNTAX, RFC 7296
	NotifyInvalidMessageID                NotifyType = 9     // INVALID_MESSAGE_ID, RFC 7296
	NotifyInvalidSPI                      NotifyType = 11    // INVALID_SPI, RFC 7296
	NotifyNoProposalChosen                NotifyType = 14    // NO_PROPOSAL_CHOSEN, RFC 7296
	NotifyInvalidKEPayload                NotifyType = 17    // INVALID_KE_PAYLOAD, RFC 7296
	NotifyAuthenticationFailed            NotifyType = 24    // AUTHENTICATION_FAILED, RFC 7296
	NotifySinglePairRequired              NotifyType = 34    // SINGLE_PAIR_REQUIRED, RFC 7296
	NotifyNoAdditionalSAs                 NotifyType = 35    // NO_ADDITIONAL_SAS, RFC 7296
	NotifyInternalAddressFailure          NotifyType = 36    // INTERNAL_ADDRESS_FAILURE, RFC 7296
	NotifyFailedCPRequired                NotifyType = 37    // FAILED_CP_REQUIRED, RFC 7296
	NotifyTSUnacceptable                  NotifyType = 38    // TS_UNACCEPTABLE, RFC 7296
	NotifyInvalidSelectors                NotifyType = 39    // INVALID_SELECTORS, RFC 7296
	NotifyUnacceptableAddresses           NotifyType = 40    // UNACCEPTABLE_ADDRESSES, RFC 4555
	NotifyUnexpectedNATDetected           NotifyType = 41    // UNEXPECTED_NAT_DETECTED, RFC 4555
	NotifyUseAssignedHoA                  NotifyType = 42    // USE_ASSIGNED_HoA, RFC 5026
	NotifyTemporaryFailure                NotifyType = 43    // TEMPORARY_FAILURE, RFC 7296
	NotifyChildSANotFound                 NotifyType = 44    // CHILD_SA_NOT_FOUND, RFC 7296
	NotifyInvalidGroupID                  NotifyType = 45    // INVALID_GROUP_ID, G-IKEv2
	NotifyAuthorizationFailed             NotifyType = 46    // AUTHORIZATION_FAILED, G-IKEv2
	NotifyStateNotFound                   NotifyType = 47    // STATE_NOT_FOUND
	NotifyTSMaxQueue                      NotifyType = 48    // TS_MAX_QUEUE, RFC 9611
	NotifyInitialContact                  NotifyType = 16384 // INITIAL_CONTACT, RFC 7296
	NotifySetWindowSize                   NotifyType = 16385 // SET_WINDOW_SIZE, RFC 7296
	NotifyAdditionalTSPossible            NotifyType = 16386 // ADDITIONAL_TS_POSSIBLE, RFC 7296
	NotifyIPCompSupported                 NotifyType = 16387 // IPCOMP_SUPPORTED, RFC 7296
	NotifyNATDetectionSourceIP            NotifyType = 16388 // NAT_DETECTION_SOURCE_IP, RFC 7296
	NotifyNATDetectionDestinationIP       NotifyType = 16389 // NAT_DETECTION_DESTINATION_IP, RFC 7296
	NotifyCookie                          NotifyType = 16390 // COOKIE, RFC 7296
	NotifyUseTransportMode                NotifyType = 16391 // USE_TRANSPORT_MODE, RFC 7296
	NotifyHTTPCertLookupSupported         NotifyType = 16392 // HTTP_CERT_LOOKUP_SUPPORTED, RFC 7296
	NotifyRekeySA                         NotifyType = 16393 // REKEY_SA, RFC 7296
	NotifyESPTFCPaddingNotSupported       NotifyType = 16394 // ESP_TFC_PADDING_NOT_SUPPORTED, RFC 7296
	NotifyNonFirstFragmentsAlso           NotifyType = 16395 // NON_FIRST_FRAGMENTS_ALSO, RFC 7296
	NotifyMOBIKESupported                 NotifyType = 16396 // MOBIKE_SUPPORTED, RFC 4555
	NotifyAdditionalIP4Address            NotifyType = 16397 // ADDITIONAL_IP4_ADDRESS, RFC 4555
	NotifyAdditionalIP6Address            NotifyType = 16398 // ADDITIONAL_IP6_ADDRESS, RFC 4555
	NotifyNoAdditionalAddresses           NotifyType = 16399 // NO_ADDITIONAL_ADDRESSES, RFC 4555
	NotifyUpdateSAAddresses               NotifyType = 16400 // UPDATE_SA_ADDRESSES, RFC 4555
	NotifyCookie2                         NotifyType = 16401 // COOKIE2, RFC 4555
	NotifyNoNATsAllowed                   NotifyType = 16402 // NO_NATS_ALLOWED, RFC 4555
	NotifyAuthLifetime                    NotifyType = 16403 // AUTH_LIFETIME, RFC 4478
	NotifyMultipleAuthSupported           NotifyType = 16404 // MULTIPLE_AUTH_SUPPORTED, RFC 4739
	NotifyAnotherAuthFollows              NotifyType = 16405 // ANOTHER_AUTH_FOLLOWS, RFC 4739
	NotifyRedirectSupported               NotifyType = 16406 // REDIRECT_SUPPORTED, RFC 5685
	NotifyRedirect                        NotifyType = 16407 // REDIRECT, RFC 5685
	NotifyRedirectedFrom                  NotifyType = 16408 // REDIRECTED_FROM, RFC 5685
	NotifyTicketLTOpaque                  NotifyType = 16409 // TICKET_LT_OPAQUE, RFC 5723
	NotifyTicketRequest                   NotifyType = 16410 // TICKET_REQUEST, RFC 5723
	NotifyTicketAck                       NotifyType = 16411 // TICKET_ACK, RFC 5723
	NotifyTicketNack                      NotifyType = 16412 // TICKET_NACK, RFC 5723
	NotifyTicketOpaque                    NotifyType = 16413 // TICKET_OPAQUE, RFC 5723
	NotifyLinkID                          NotifyType = 16414 // LINK_ID, RFC 5739
	NotifyUseWESPMode                     NotifyType = 16415 // USE_WESP_MODE, RFC 5840
	NotifyROHCSupported                   NotifyType = 16416 // ROHC_SUPPORTED, RFC 5857
	NotifyEAPOnlyAuthentication           NotifyType = 16417 // EAP_ONLY_AUTHENTICATION, RFC 5998
	NotifyChildlessIKEv2Supported         NotifyType = 16418 // CHILDLESS_IKEV2_SUPPORTED, RFC 6023
	NotifyQuickCrashDetection             NotifyType = 16419 // QUICK_CRASH_DETECTION, RFC 6290
	NotifyIKEv2MessageIDSyncSupported     NotifyType = 16420 // IKEV2_MESSAGE_ID_SYNC_SUPPORTED, RFC 6311
	NotifyIPsecReplayCounterSyncSupported NotifyType = 16421 // IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED, RFC 6311
	NotifyIKEv2MessageIDSync              NotifyType = 16422 // IKEV2_MESSAGE_ID_SYNC, RFC 6311
	NotifyIPsecReplayCounterSync          NotifyType = 16423 // IPSEC_REPLAY_COUNTER_SYNC, RFC 6311
	NotifySecurePasswordMethods           NotifyType = 16424 // SECURE_PASSWORD_METHODS, RFC 6467
	NotifyPSKPersist                      NotifyType = 16425 // PSK_PERSIST, RFC 6631
	NotifyPSKConfirm                      NotifyType = 16426 // PSK_CONFIRM, RFC 6631
	NotifyERXSupported                    NotifyType = 16427 // ERX_SUPPORTED, RFC 6867
	NotifyIFOMCapability                  NotifyType = 16428 // IFOM_CAPABILITY, 3GPP TS 24.303
	NotifySenderRequestID                 NotifyType = 16429 // SENDER_REQUEST_ID, G-IKEv2
	NotifyIKEv2FragmentationSupported     NotifyType = 16430 // IKEV2_FRAGMENTATION_SUPPORTED, RFC 7383
	NotifySignatureHashAlgorithms         NotifyType = 16431 // SIGNATURE_HASH_ALGORITHMS, RFC 7427
	NotifyCloneIKESASupported             NotifyType = 16432 // CLONE_IKE_SA_SUPPORTED, RFC 7791
	NotifyCloneIKESA                      NotifyType = 16433 // CLONE_IKE_SA, RFC 7791
	NotifyPuzzle                          NotifyType = 16434 // PUZZLE, RFC 8019
	NotifyUsePPK                          NotifyType = 16435 // USE_PPK, RFC 8784
	NotifyPPKIdentity                     NotifyType = 16436 // PPK_IDENTITY, RFC 8784
	NotifyNoPPKAuth                       NotifyType = 16437 // NO_PPK_AUTH, RFC 8784
	NotifyIntermediateExchangeSupported   NotifyType = 16438 // INTERMEDIATE_EXCHANGE_SUPPORTED, RFC 9242
	NotifyIP4Allowed                      NotifyType = 16439 // IP4_ALLOWED, RFC 8983
	NotifyIP6Allowed                      NotifyType = 16440 // IP6_ALLOWED, RFC 8983
	NotifyAdditionalKeyExchange           NotifyType = 16441 // ADDITIONAL_KEY_EXCHANGE, RFC 9370
	NotifyUseAggfrag                      NotifyType = 16442 // USE_AGGFRAG, RFC 9347
	NotifySupportedAuthMethods            NotifyType = 16443 // SUPPORTED_AUTH_METHODS, RFC 9593
	NotifySAResourceInfo                  NotifyType = 16444 // SA_RESOURCE_INFO, RFC 9611
	NotifyUsePPKInt                       NotifyType = 16445 // USE_PPK_INT, RFC 9867
	NotifyPPKIdentityKey                  NotifyType = 16446 // PPK_IDENTITY_KEY, RFC 9867
)

// NotifyQCDToken is the QCD_TOKEN notification of RFC 6290, registered by
// IANA as QUICK_CRASH_DETECTION.
const NotifyQCDToken = NotifyQuickCrashDetection

// IsError reports whether n is an error type (below 16384).
func (n NotifyType) IsError() bool { return n < 16384 }

// String returns the IANA name, e.g. "TICKET_LT_OPAQUE", or "NOTIFY(n)" for
// values without one.
func (n NotifyType) String() string {
	switch n {
	case NotifyUnsupportedCriticalPayload:
		return "UNSUPPORTED_CRITICAL_PAYLOAD"
	case NotifyInvalidIKESPI:
		return "INVALID_IKE_SPI"
	case NotifyInvalidMajorVersion:
		return "INVALID_MAJOR_VERSION"
	case NotifyInvalidSyntax:
		return "INVALID_SYNTAX"
	case NotifyInvalidMessageID:
		return "INVALID_MESSAGE_ID"
	case NotifyInvalidSPI:
		return "INVALID_SPI"
	case NotifyNoProposalChosen:
		return "NO_PROPOSAL_CHOSEN"
	case NotifyInvalidKEPayload:
		return "INVALID_KE_PAYLOAD"
	case NotifyAuthenticationFailed:
		return "AUTHENTICATION_FAILED"
	case NotifySinglePairRequired:
		return "SINGLE_PAIR_REQUIRED"
	case NotifyNoAdditionalSAs:
		return "NO_ADDITIONAL_SAS"
	case NotifyInternalAddressFailure:
		return "INTERNAL_ADDRESS_FAILURE"
	case NotifyFailedCPRequired:
		return "FAILED_CP_REQUIRED"
	case NotifyTSUnacceptable:
		return "TS_UNACCEPTABLE"
	case NotifyInvalidSelectors:
		return "INVALID_SELECTORS"
	case NotifyUnacceptableAddresses:
		return "UNACCEPTABLE_ADDRESSES"
	case NotifyUnexpectedNATDetected:
		return "UNEXPECTED_NAT_DETECTED"
	case NotifyUseAssignedHoA:
		return "USE_ASSIGNED_HoA"
	case NotifyTemporaryFailure:
		return "TEMPORARY_FAILURE"
	case NotifyChildSANotFound:
		return "CHILD_SA_NOT_FOUND"
	case NotifyInvalidGroupID:
		return "INVALID_GROUP_ID"
	case NotifyAuthorizationFailed:
		return "AUTHORIZATION_FAILED"
	case NotifyStateNotFound:
		return "STATE_NOT_FOUND"
	case NotifyTSMaxQueue:
		return "TS_MAX_QUEUE"
	case NotifyInitialContact:
		return "INITIAL_CONTACT"
	case NotifySetWindowSize:
		return "SET_WINDOW_SIZE"
	case NotifyAdditionalTSPossible:
		return "ADDITIONAL_TS_POSSIBLE"
	case NotifyIPCompSupported:
		return "IPCOMP_SUPPORTED"
	case NotifyNATDetectionSourceIP:
		return "NAT_DETECTION_SOURCE_IP"
	case NotifyNATDetectionDestinationIP:
		return "NAT_DETECTION_DESTINATION_IP"
	case NotifyCookie:
		return "COOKIE"
	case NotifyUseTransportMode:
		return "USE_TRANSPORT_MODE"
	case NotifyHTTPCertLookupSupported:
		return "HTTP_CERT_LOOKUP_SUPPORTED"
	case NotifyRekeySA:
		return "REKEY_SA"
	case NotifyESPTFCPaddingNotSupported:
		return "ESP_TFC_PADDING_NOT_SUPPORTED"
	case NotifyNonFirstFragmentsAlso:
		return "NON_FIRST_FRAGMENTS_ALSO"
	case NotifyMOBIKESupported:
		return "MOBIKE_SUPPORTED"
	case NotifyAdditionalIP4Address:
		return "ADDITIONAL_IP4_ADDRESS"
	case NotifyAdditionalIP6Address:
		return "ADDITIONAL_IP6_ADDRESS"
	case NotifyNoAdditionalAddresses:
		return "NO_ADDITIONAL_ADDRESSES"
	case NotifyUpdateSAAddresses:
		return "UPDATE_SA_ADDRESSES"
	case NotifyCookie2:
		return "COOKIE2"
	case NotifyNoNATsAllowed:
		return "NO_NATS_ALLOWED"
	case NotifyAuthLifetime:
		return "AUTH_LIFETIME"
	case NotifyMultipleAuthSupported:
		return "MULTIPLE_AUTH_SUPPORTED"
	case NotifyAnotherAuthFollows:
		return "ANOTHER_AUTH_FOLLOWS"
	case NotifyRedirectSupported:
		return "REDIRECT_SUPPORTED"
	case NotifyRedirect:
		return "REDIRECT"
	case NotifyRedirectedFrom:
		return "REDIRECTED_FROM"
	case NotifyTicketLTOpaque:
		return "TICKET_LT_OPAQUE"
	case NotifyTicketRequest:
		return "TICKET_REQUEST"
	case NotifyTicketAck:
		return "TICKET_ACK"
	case NotifyTicketNack:
		return "TICKET_NACK"
	case NotifyTicketOpaque:
		return "TICKET_OPAQUE"
	case NotifyLinkID:
		return "LINK_ID"
	case NotifyUseWESPMode:
		return "USE_WESP_MODE"
	case NotifyROHCSupported:
		return "ROHC_SUPPORTED"
	case NotifyEAPOnlyAuthentication:
		return "EAP_ONLY_AUTHENTICATION"
	case NotifyChildlessIKEv2Supported:
		return "CHILDLESS_IKEV2_SUPPORTED"
	case NotifyQuickCrashDetection:
		return "QUICK_CRASH_DETECTION"
	case NotifyIKEv2MessageIDSyncSupported:
		return "IKEV2_MESSAGE_ID_SYNC_SUPPORTED"
	case NotifyIPsecReplayCounterSyncSupported:
		return "IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED"
	case NotifyIKEv2MessageIDSync:
		return "IKEV2_MESSAGE_ID_SYNC"
	case NotifyIPsecReplayCounterSync:
		return "IPSEC_REPLAY_COUNTER_SYNC"
	case NotifySecurePasswordMethods:
		return "SECURE_PASSWORD_METHODS"
	case NotifyPSKPersist:
		return "PSK_PERSIST"
	case NotifyPSKConfirm:
		return "PSK_CONFIRM"
	case NotifyERXSupported:
		return "ERX_SUPPORTED"
	case NotifyIFOMCapability:
		return "IFOM_CAPABILITY"
	case NotifySenderRequestID:
		return "SENDER_REQUEST_ID"
	case NotifyIKEv2FragmentationSupported:
		return "IKEV2_FRAGMENTATION_SUPPORTED"
	case NotifySignatureHashAlgorithms:
		return "SIGNATURE_HASH_ALGORITHMS"
	case NotifyCloneIKESASupported:
		return "CLONE_IKE_SA_SUPPORTED"
	case NotifyCloneIKESA:
		return "CLONE_IKE_SA"
	case NotifyPuzzle:
		return "PUZZLE"
	case NotifyUsePPK:
		return "USE_PPK"
	case NotifyPPKIdentity:
		return "PPK_IDENTITY"
	case NotifyNoPPKAuth:
		return "NO_PPK_AUTH"
	case NotifyIntermediateExchangeSupported:
		return "INTERMEDIATE_EXCHANGE_SUPPORTED"
	case NotifyIP4Allowed:
		return "IP4_ALLOWED"
	case NotifyIP6Allowed:
		return "IP6_ALLOWED"
	case NotifyAdditionalKeyExchange:
		return "ADDITIONAL_KEY_EXCHANGE"
	case NotifyUseAggfrag:
		return "USE_AGGFRAG"
	case NotifySupportedAuthMethods:
		return "SUPPORTED_AUTH_METHODS"
	case NotifySAResourceInfo:
		return "SA_RESOURCE_INFO"
	case NotifyUsePPKInt:
		return "USE_PPK_INT"
	case NotifyPPKIdentityKey:
		return "PPK_IDENTITY_KEY"
	}
	return "NOTIFY(" + strconv.Itoa(int(n)) + ")"
}
