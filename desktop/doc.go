// Package desktop is the qcdvpn desktop app built with Fyne: a profile
// list, connect and disconnect, the tunnel's status, a live traffic graph,
// the event log in plain words, settings, a system tray menu and desktop
// notifications on failover or drop.
//
// The UI drives a Backend: either a control.Client attached to a
// privileged `qcdvpn up --service` over its control socket (the usual
// case: the app itself runs unprivileged), or an in-process
// control.Engine when the app has the rights to open a TUN. The package
// never imports Fyne's GL driver, so its widget tests run with
// fyne.io/fyne/v2/test and no display; the main package in
// cmd/qcdvpn-desktop brings the driver in.
package desktop
