module github.com/qcdvpn/qcdvpn

go 1.26.8

require (
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.zx2c4.com/wintun v0.0.0-20230126152724-0fa3db229ce2 // indirect
	golang.zx2c4.com/wireguard v0.0.0-20260522210424-ecfc5a8d5446 // indirect
)
