#!/usr/bin/env python3
"""Writes the .sswan samples from pki/ (see gen.sh), following the format
of https://docs.strongswan.org/docs/latest/os/androidVpnClientProfiles.html.
Good samples go to good/, broken ones to bad/."""
import base64, json, os

os.chdir(os.path.dirname(os.path.abspath(__file__)))
def b64(path):
    return base64.b64encode(open("pki/" + path, "rb").read()).decode()

def write(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if isinstance(doc, str):
            f.write(doc)
        else:
            json.dump(doc, f, indent=2)
            f.write("\n")

good = {
    # Certificate authentication, CA as base64 DER, key in a
    # password-protected PKCS#12, identity given.
    "cert-rsa.sswan": {
        "uuid": "d8e1c9a4-1f6b-4b7e-9c1e-3f0a2b4c5d6e", "name": "Corp (RSA)", "type": "ikev2-cert",
        "remote": {"addr": "vpn.example.com", "cert": b64("ca.der")},
        "local": {"id": "alice@example.com", "p12": b64("alice.p12")},
    },
    # Port and remote id, CA as base64 PEM, a PKCS#12 without password
    # and without local.id (the certificate's DN is used), features with
    # no counterpart (warnings).
    "cert-ec-pem.sswan": {
        "uuid": "0b7d4a52-6c1e-4e0f-8a7b-2c9d3e4f5a6b", "name": "Lab gateway", "type": "ikev2-cert",
        "remote": {"addr": "192.0.2.10", "port": 4500, "id": "vpn.example.com", "cert": b64("ca.pem"),
                   "certreq": False, "revocation": {"crl": True, "ocsp": False, "strict": True}},
        "local": {"p12": b64("carol.p12"), "rsa-pss": True},
        "ike-proposal": "aes128gcm16-prfsha256-ecp256", "esp-proposal": "aes128gcm16",
    },
    # Username/password EAP with split tunneling in both notations, MTU,
    # keepalive and the Android-only options.
    "eap.sswan": {
        "uuid": "5f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190", "name": "Office EAP", "type": "ikev2-eap",
        "remote": {"addr": "vpn.example.org", "cert": b64("ca.der")},
        "local": {"eap_id": "bob"},
        "ike-proposal": "aes256gcm16-prfsha256-x25519", "esp-proposal": "aes256gcm16",
        "split-tunneling": {"subnets": ["10.0.0.0/8", "192.168.1.10 - 192.168.1.20"], "excluded": "10.1.0.0/16 10.2.3.4"},
        "mtu": 1380, "nat-keepalive": 45, "dns-servers": "10.0.0.53 10.0.0.54",
        "apps": ["com.example.mail"], "proxy": {"host": "proxy.example.org", "port": 3128},
        "x-comment": "an unknown key",
    },
    # EAP-TLS over an IPv6 gateway, blocking IPv6 outside the tunnel.
    "eap-tls.sswan": {
        "uuid": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "name": "EAP-TLS v6", "type": "ikev2-eap-tls",
        "remote": {"addr": "2001:db8::1", "id": "vpn6.example.com", "cert": b64("ca.pem")},
        "local": {"eap_id": "alice", "id": "alice@example.com", "p12": b64("alice.p12")},
        "split-tunneling": {"block-ipv6": True},
    },
    # No remote.cert: the CA inside the PKCS#12 is used; the gateway's own
    # leaf certificate would warn (see cert-leaf).
    "cert-p12-ca.sswan": {
        "uuid": "11111111-2222-4333-8444-555555555555", "name": "p12 with CA", "type": "ikev2-cert",
        "remote": {"addr": "vpn.example.net"},
        "local": {"id": "alice@example.com", "p12": b64("alice.p12")},
    },
    "cert-leaf.sswan": {
        "uuid": "66666666-7777-4888-9999-aaaaaaaaaaaa", "name": "pinned gateway", "type": "ikev2-cert",
        "remote": {"addr": "vpn.example.com", "cert": b64("gw.pem")},
        "local": {"p12": b64("carol.p12")},
    },
}
for name, doc in good.items():
    write("good/" + name, doc)

base = {"uuid": "d8e1c9a4-1f6b-4b7e-9c1e-3f0a2b4c5d6e", "name": "broken", "type": "ikev2-cert",
        "remote": {"addr": "vpn.example.com", "cert": b64("ca.der")},
        "local": {"id": "alice@example.com", "p12": b64("carol.p12")}}
def variant(**changes):
    d = json.loads(json.dumps(base))
    for path, v in changes.items():
        keys = path.split("__")
        o = d
        for k in keys[:-1]:
            o = o[k]
        if v is None:
            del o[keys[-1]]
        else:
            o[keys[-1]] = v
    return d

bad = {
    "bad-json.sswan": '{"uuid": "d8e1c9a4-1f6b-4b7e-9c1e-3f0a2b4c5d6e", "name": "x", "type": "ikev2-cert",\n',
    "no-addr.sswan": variant(remote__addr=None),
    "unknown-type.sswan": variant(type="ikev1-xauth-psk"),
    "bad-base64-cert.sswan": variant(remote__cert="MIIB!!not*base64"),
    "not-a-cert.sswan": variant(remote__cert=base64.b64encode(b"hello, world").decode()),
    "wrong-type-mtu.sswan": variant(mtu="1400"),
    "wrong-type-port.sswan": variant(remote__port="4500"),
    "wrong-type-remote.sswan": variant(remote=["vpn.example.com"]),
    "cert-eap.sswan": variant(type="ikev2-cert-eap"),
    "byod.sswan": variant(type="ikev2-byod-eap"),
    "bad-uuid.sswan": variant(uuid="not-a-uuid"),
    "no-p12.sswan": variant(local__p12=None),
    "aes-p12.sswan": variant(local__p12=b64("carol-aes.p12")),
    "bad-subnet.sswan": variant(**{"split-tunneling": {"subnets": ["10.0.0.0/33"]}}),
    "bad-proposal.sswan": variant(**{"ike-proposal": "aes256-rot13-modp1"}),
    "port-range.sswan": variant(remote__port=70000),
    "keepalive-range.sswan": variant(**{"nat-keepalive": 5}),
    "dup-key.sswan": '{"uuid": "d8e1c9a4-1f6b-4b7e-9c1e-3f0a2b4c5d6e", "name": "a", "name": "b", "type": "ikev2-cert", "remote": {"addr": "x"}}\n',
    "no-ca.sswan": variant(remote__cert=None, local__p12=b64("carol.p12")),
    "eap-no-user.sswan": variant(type="ikev2-eap", local={}),
    "top-array.sswan": "[1, 2]\n",
    "own-typo.json": '{"name": "x", "gatways": ["192.0.2.1"]}\n',
}
for name, doc in bad.items():
    write("bad/" + name, doc)

write("good/own.json", {
    "name": "own", "gateways": ["192.0.2.1", "192.0.2.2:4500"], "remote_id": "gw.example", "local_id": "client.example",
    "auth": {"method": "psk", "psk": "0x00112233445566778899aabbccddeeff"},
    "traffic": {"include": ["10.200.0.0/24"]},
})
