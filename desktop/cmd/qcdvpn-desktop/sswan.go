package main

import "github.com/qcdvpn/qcdvpn/desktop"

// sswanImporter converts .sswan files; nil until the importer package lands.
var sswanImporter desktop.Importer
