package desktop

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/qcdvpn/qcdvpn/profileimport"
	"github.com/qcdvpn/qcdvpn/sdk"
)

// maxLogLines bounds the event log kept in memory.
const maxLogLines = 500

// Preference keys.
const (
	prefQCD        = "qcd"
	prefResumption = "resumption"
)

// Options configure the UI.
type Options struct {
	// Backend is what the UI drives; nil shows NoBackend instead and
	// disables connecting.
	Backend Backend
	// NoBackend tells the user why there is no backend and what to do.
	NoBackend string
	// Mode says how the backend was reached, shown in Settings (e.g.
	// "attached to /run/qcdvpn/control.sock").
	Mode string
	// Store holds the profiles.
	Store *Store
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// NoTray leaves the system tray out (no session bus to put it on).
	NoTray bool
	// Poll is the status polling interval (default 1 s): the traffic
	// graph gets one sample per poll.
	Poll time.Duration
}

// UI is the app's main window and tray. Its fields are touched only on
// the Fyne goroutine (through do); the backend is called from goroutines
// of its own.
type UI struct {
	app  fyne.App
	win  fyne.Window
	opts Options
	log  *slog.Logger
	do   func(func()) // runs fn on the UI goroutine: fyne.Do, or a queue in tests
	now  func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// State, UI goroutine only.
	status     Status
	profiles   []Entry
	selected   string
	events     []string
	wantDown   bool // the user asked to disconnect: no "dropped" notification
	busy       bool // a connect or disconnect is running
	lastStats  sdk.Stats
	lastSample time.Time
	trayState  string
	trayIcon   fyne.Resource
	dropGen    int           // bumped by events that follow a drop
	dropDelay  time.Duration // how long a drop waits for a recovery before it is notified

	// Widgets.
	stateIcon     *canvas.Image
	stateLabel    *widget.Label
	connectBtn    *widget.Button
	disconnectBtn *widget.Button
	importBtn     *widget.Button
	removeBtn     *widget.Button
	profileList   *widget.List
	gatewayList   *widget.List
	eventList     *widget.List
	fields        map[string]*widget.Label
	rateLabel     *widget.Label
	graph         *Graph
	message       *widget.Label
	qcdCheck      *widget.Check
	resCheck      *widget.Check
	tray          *fyne.Menu
	trayConnect   *fyne.MenuItem
	trayDisc      *fyne.MenuItem
	notify        func(*fyne.Notification)
	secretDialog  *dialog.FormDialog
	confirmQuit   *dialog.ConfirmDialog
	secretEntry   *widget.Entry
}

// Field names of the status panel, in display order.
var statusFields = []string{"Profile", "Gateway", "Virtual IP", "DNS", "Uptime", "IKE", "ESP", "Session", "Traffic"}

// New builds the main window (not shown yet) and the tray menu on app.
func New(app fyne.App, opts Options) *UI {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	u := &UI{app: app, opts: opts, log: opts.Logger, do: fyne.Do, now: time.Now,
		notify: app.SendNotification, dropDelay: 3 * time.Second}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.win = app.NewWindow("qcdvpn")
	u.win.SetIcon(AppIcon)
	u.build()
	u.reloadProfiles()
	u.render()
	return u
}

// Window is the main window.
func (u *UI) Window() fyne.Window { return u.win }

// Start begins following the backend: its events, and its status every
// Poll. Stop ends that.
func (u *UI) Start() {
	if u.opts.Backend == nil {
		return
	}
	// The first subscription is made before Start returns, so that a
	// connect right after it has all its events in the log.
	ch, err := u.opts.Backend.Events(u.ctx)
	u.wg.Add(2)
	go u.followEvents(ch, err)
	go u.pollStatus()
}

// Stop ends the goroutines Start began (the backend is not closed).
func (u *UI) Stop() {
	u.cancel()
	u.wg.Wait()
}

func (u *UI) build() {
	u.stateIcon = canvas.NewImageFromResource(StateIcon(""))
	u.stateIcon.FillMode = canvas.ImageFillContain
	u.stateIcon.SetMinSize(fyne.NewSize(32, 32))
	u.stateLabel = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	u.connectBtn = widget.NewButtonWithIcon("Connect", theme.MediaPlayIcon(), u.Connect)
	u.connectBtn.Importance = widget.HighImportance
	u.disconnectBtn = widget.NewButtonWithIcon("Disconnect", theme.MediaStopIcon(), u.Disconnect)
	top := container.NewBorder(nil, nil, container.NewHBox(u.stateIcon, u.stateLabel), container.NewHBox(u.connectBtn, u.disconnectBtn))

	u.profileList = widget.NewList(
		func() int { return len(u.profiles) },
		func() fyne.CanvasObject { return widget.NewLabel("profile name") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(u.profiles[i].Name)
		})
	u.profileList.OnSelected = func(i widget.ListItemID) {
		if i >= 0 && i < len(u.profiles) {
			u.selected = u.profiles[i].Name
		}
		u.render()
	}
	u.importBtn = widget.NewButtonWithIcon("Import…", theme.FolderOpenIcon(), u.showImport)
	u.removeBtn = widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), u.removeSelected)
	profiles := container.NewBorder(widget.NewLabelWithStyle("Profiles", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		container.NewGridWithColumns(2, u.importBtn, u.removeBtn), nil, nil, u.profileList)

	u.fields = map[string]*widget.Label{}
	names, values := container.NewVBox(), container.NewVBox()
	for _, f := range statusFields {
		l := widget.NewLabel("")
		l.Truncation = fyne.TextTruncateEllipsis
		u.fields[f] = l
		names.Add(widget.NewLabelWithStyle(f, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true}))
		values.Add(l)
	}
	form := container.NewBorder(nil, nil, names, nil, values)
	u.gatewayList = widget.NewList(
		func() int { return len(u.status.Gateways) },
		func() fyne.CanvasObject {
			return container.NewHBox(widget.NewIcon(theme.ConfirmIcon()), widget.NewLabel("gateway.example:4500"))
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			g := u.status.Gateways[i]
			row := o.(*fyne.Container)
			icon, label := row.Objects[0].(*widget.Icon), row.Objects[1].(*widget.Label)
			label.SetText(gatewayLine(g, u.status.State))
			if g.Active {
				icon.SetResource(theme.ConfirmIcon())
			} else {
				icon.SetResource(theme.NewDisabledResource(theme.RadioButtonIcon()))
			}
		})
	gateways := container.NewBorder(widget.NewLabelWithStyle("Gateways", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), nil, nil, nil, u.gatewayList)

	u.graph = NewGraph()
	u.rateLabel = widget.NewLabel("")
	legend := container.NewHBox(legendDot(colorIn, "received"), legendDot(colorOut, "sent"), u.rateLabel)
	graph := container.NewBorder(container.NewBorder(nil, nil, widget.NewLabelWithStyle("Traffic", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), legend), nil, nil, nil, u.graph.Object())

	u.eventList = widget.NewList(
		func() int { return len(u.events) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("event")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(u.events[len(u.events)-1-i]) // newest first
		})
	events := container.NewBorder(widget.NewLabelWithStyle("Events", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), nil, nil, nil, u.eventList)

	right := container.NewVSplit(gateways, events)
	right.Offset = 0.3
	upper := container.NewHSplit(form, right)
	upper.Offset = 0.6
	statusTab := container.NewVSplit(upper, graph)
	statusTab.Offset = 0.68

	prefs := u.app.Preferences()
	u.qcdCheck = widget.NewCheck("Quick crash detection (QCD, RFC 6290)", func(on bool) { prefs.SetBool(prefQCD, on) })
	u.qcdCheck.SetChecked(prefs.BoolWithFallback(prefQCD, true))
	u.resCheck = widget.NewCheck("Session resumption (RFC 5723)", func(on bool) { prefs.SetBool(prefResumption, on) })
	u.resCheck.SetChecked(prefs.BoolWithFallback(prefResumption, true))
	mode := u.opts.Mode
	if u.opts.Backend == nil {
		mode = "no engine"
	}
	dir := ""
	if u.opts.Store != nil {
		dir = u.opts.Store.Dir()
	}
	settings := container.NewVBox(
		widget.NewLabelWithStyle("Applied to the profile on the next connect", fyne.TextAlignLeading, fyne.TextStyle{Italic: true}),
		u.qcdCheck, u.resCheck, widget.NewSeparator(),
		widget.NewLabel("Engine: "+mode),
		widget.NewLabel("Profiles: "+dir))

	tabs := container.NewAppTabs(
		container.NewTabItemWithIcon("Connection", theme.ComputerIcon(), statusTab),
		container.NewTabItemWithIcon("Settings", theme.SettingsIcon(), settings))
	split := container.NewHSplit(profiles, tabs)
	split.Offset = 0.18

	u.message = widget.NewLabel("")
	u.message.Wrapping = fyne.TextWrapWord
	u.win.SetContent(container.NewBorder(container.NewVBox(top, widget.NewSeparator()), u.message, nil, nil, split))
	u.win.Resize(fyne.NewSize(1280, 720))

	u.trayConnect = fyne.NewMenuItem("Connect", u.Connect)
	u.trayDisc = fyne.NewMenuItem("Disconnect", u.Disconnect)
	quit := fyne.NewMenuItem("Quit", u.app.Quit)
	quit.IsQuit = true
	u.tray = fyne.NewMenu("qcdvpn", fyne.NewMenuItem("Show window", u.win.Show), fyne.NewMenuItemSeparator(), u.trayConnect, u.trayDisc, fyne.NewMenuItemSeparator(), quit)
	u.trayIcon = StateIcon("")
	if d, ok := u.desk(); ok {
		d.SetSystemTrayMenu(u.tray)
		d.SetSystemTrayIcon(u.trayIcon)
		d.SetSystemTrayWindow(u.win)
	}
	u.win.SetCloseIntercept(u.closeWindow)
}

// closeWindow quits the app. An attached service keeps its tunnel; an
// in-process tunnel would end with the app, so that is asked first. (The
// window is not hidden into the tray: a desktop without a tray host
// would leave no way back to it.)
func (u *UI) closeWindow() {
	if _, inProcess := u.opts.Backend.(*EngineBackend); !inProcess || !u.connectedish() {
		u.app.Quit()
		return
	}
	u.confirmQuit = dialog.NewConfirm("Quit qcdvpn", "The tunnel runs inside this app: quitting disconnects it. Quit?", func(ok bool) {
		if ok {
			u.app.Quit()
		}
	}, u.win)
	u.confirmQuit.Show()
}

// legendDot is a colour swatch and its meaning.
func legendDot(c color.Color, text string) fyne.CanvasObject {
	r := canvas.NewRectangle(c)
	r.SetMinSize(fyne.NewSize(12, 12))
	return container.NewHBox(container.NewCenter(r), widget.NewLabel(text))
}

// desk is the app's desktop extension (the system tray), unless NoTray.
func (u *UI) desk() (desktop.App, bool) {
	if u.opts.NoTray {
		return nil, false
	}
	d, ok := u.app.(desktop.App)
	return d, ok
}

// connectedish is true while a tunnel is up or being brought up.
func (u *UI) connectedish() bool {
	switch u.status.State {
	case StateConnected, StateConnecting, StateReconnecting:
		return true
	}
	return false
}

// gatewayLine is one row of the gateway list.
func gatewayLine(g GatewayStatus, state string) string {
	if !g.Active {
		return g.Address
	}
	switch state {
	case StateConnected:
		return g.Address + "  (in use)"
	case StateConnecting, StateReconnecting:
		return g.Address + "  (trying)"
	}
	return g.Address
}

// stateText is the headline for a state.
func stateText(st Status, haveBackend bool) string {
	if !haveBackend {
		return "No engine"
	}
	switch st.State {
	case StateConnected:
		if st.Gateway != "" {
			return "Connected to " + st.Gateway
		}
		return "Connected"
	case StateConnecting:
		return "Connecting…"
	case StateReconnecting:
		return "Reconnecting…"
	case StateDisconnected:
		return "Disconnected"
	case StateIdle, "":
		return "Not connected"
	}
	return st.State
}

// render puts the state into the widgets. UI goroutine only.
func (u *UI) render() {
	st := u.status
	have := u.opts.Backend != nil
	u.stateLabel.SetText(stateText(st, have))
	icon := StateIcon(st.State)
	if !have {
		icon = StateIcon("")
	}
	u.stateIcon.Resource = icon
	u.stateIcon.Refresh()
	if u.trayState != st.State {
		u.trayState = st.State
		u.trayIcon = icon
		if d, ok := u.desk(); ok {
			d.SetSystemTrayIcon(icon)
		}
	}
	up := st.State == StateConnected
	set := func(k, v string) {
		if v == "" {
			v = "—"
		}
		u.fields[k].SetText(v)
	}
	set("Profile", firstNonEmpty(st.Profile, u.selected))
	set("Gateway", st.Gateway)
	set("Virtual IP", st.VirtualIP)
	set("DNS", strings.Join(st.DNS, ", "))
	if up && !st.ConnectedSince.IsZero() {
		set("Uptime", Uptime(u.now().Sub(st.ConnectedSince)))
	} else {
		set("Uptime", "")
	}
	set("IKE", st.IKESuite)
	set("ESP", st.ESPSuite)
	session := ""
	if up {
		session = "full handshake"
		if st.Resumed {
			session = "resumed from a ticket"
		}
		session += fmt.Sprintf("; QCD %s, resumption %s", onOff(st.QCD), onOff(st.Resumption))
	}
	set("Session", session)
	set("Traffic", fmt.Sprintf("%s in, %s out (%d / %d packets)", bytesText(st.Stats.BytesIn), bytesText(st.Stats.BytesOut), st.Stats.PacketsIn, st.Stats.PacketsOut))
	u.gatewayList.Refresh()

	canConnect := have && !u.busy && u.selected != "" && !u.connectedish()
	canDisconnect := have && !u.busy && u.connectedish()
	setEnabled(u.connectBtn, canConnect)
	setEnabled(u.disconnectBtn, canDisconnect)
	setEnabled(u.removeBtn, u.selected != "")
	label := "Connect"
	if u.selected != "" {
		label = "Connect " + u.selected
	}
	// The tray menu is rebuilt on the bus at every Refresh: only on change.
	if u.trayConnect.Disabled != !canConnect || u.trayDisc.Disabled != !canDisconnect || u.trayConnect.Label != label {
		u.trayConnect.Disabled, u.trayDisc.Disabled, u.trayConnect.Label = !canConnect, !canDisconnect, label
		u.tray.Refresh()
	}
	if !have && u.message.Text == "" {
		u.message.SetText(u.opts.NoBackend)
	}
}

func setEnabled(b *widget.Button, on bool) {
	if on {
		b.Enable()
	} else {
		b.Disable()
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// bytesText writes a byte count with a binary unit.
func bytesText(n uint64) string {
	s := Rate(float64(n))
	return strings.TrimSuffix(s, "/s")
}

// showError puts a one-line error under the window. UI goroutine only.
func (u *UI) showError(err error) {
	if err == nil {
		u.message.SetText("")
		return
	}
	u.message.SetText(oneLine(err))
}

// reloadProfiles reads the store and keeps the selection if it is still
// there (or selects the only profile). UI goroutine only.
func (u *UI) reloadProfiles() {
	if u.opts.Store == nil {
		return
	}
	list, err := u.opts.Store.List()
	if err != nil {
		u.showError(err)
	}
	u.profiles = list
	u.profileList.UnselectAll()
	found := false
	for i, e := range list {
		if e.Name == u.selected {
			u.profileList.Select(i)
			found = true
		}
	}
	if !found {
		u.selected = ""
		if len(list) == 1 {
			u.profileList.Select(0)
		}
	}
	u.profileList.Refresh()
}

// Select selects the stored profile name, as a click in the list would.
func (u *UI) Select(name string) error {
	for i, e := range u.profiles {
		if e.Name == name {
			u.profileList.Select(i)
			return nil
		}
	}
	return fmt.Errorf("no stored profile named %q", name)
}

// Settings are the switches as the Settings tab shows them.
func (u *UI) Settings() Settings {
	return Settings{QCD: u.qcdCheck.Checked, Resumption: u.resCheck.Checked}
}

// Connect connects the selected profile with the current settings. The
// backend is called on a goroutine; the buttons are disabled meanwhile.
func (u *UI) Connect() {
	if u.opts.Backend == nil || u.busy || u.selected == "" {
		return
	}
	name := u.selected
	data, err := u.opts.Store.Load(name)
	if err == nil {
		data, err = ApplySettings(data, u.Settings())
	}
	if err != nil {
		u.showError(err)
		return
	}
	u.busy, u.wantDown = true, false
	u.showError(nil)
	u.graph.Reset()
	u.lastSample = time.Time{}
	u.render()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		ctx, cancel := context.WithTimeout(u.ctx, 3*time.Minute)
		err := u.opts.Backend.Connect(ctx, data)
		cancel()
		st, serr := u.opts.Backend.Status(u.ctx)
		u.do(func() {
			u.busy = false
			if err != nil {
				u.showError(fmt.Errorf("connect %s: %s", name, oneLine(err)))
			}
			if serr == nil {
				u.applyStatus(st)
			} else {
				u.render()
			}
		})
	}()
}

// Disconnect takes the tunnel down.
func (u *UI) Disconnect() {
	if u.opts.Backend == nil || u.busy {
		return
	}
	u.busy, u.wantDown = true, true
	u.render()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
		err := u.opts.Backend.Disconnect(ctx)
		cancel()
		st, serr := u.opts.Backend.Status(u.ctx)
		u.do(func() {
			u.busy = false
			if err != nil {
				u.showError(fmt.Errorf("disconnect: %s", oneLine(err)))
			}
			if serr == nil {
				u.applyStatus(st)
			} else {
				u.render()
			}
		})
	}()
}

func (u *UI) showImport() {
	d := dialog.NewFileOpen(u.importChosen, u.win)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".json", ".sswan"}))
	d.Resize(fyne.NewSize(760, 520))
	d.Show()
}

// importChosen is the file dialog's callback.
func (u *UI) importChosen(r fyne.URIReadCloser, err error) {
	if err != nil {
		u.showError(fmt.Errorf("import: %s", oneLine(err)))
		return
	}
	if r == nil {
		return // cancelled
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, profileimport.MaxInputSize+1))
	if err != nil {
		u.showError(fmt.Errorf("import %s: %s", r.URI().Name(), oneLine(err)))
		return
	}
	dir := ""
	if r.URI().Scheme() == "file" {
		dir = filepath.Dir(r.URI().Path())
	}
	u.importData(r.URI().Name(), data, dir, Secrets{})
}

// importData imports one file, asking for the secret a .sswan lacks
// (the EAP password, the PKCS#12 password) and trying again with it.
func (u *UI) importData(name string, data []byte, dir string, sec Secrets) {
	e, err := u.opts.Store.Import(name, data, dir, sec)
	if need := NeedSecret(err); need != "" {
		u.askSecret(name, need, func(secret string) {
			if need == "password" {
				sec.Password = secret
			} else {
				sec.P12Password = secret
			}
			u.importData(name, data, dir, sec)
		})
		return
	}
	if err != nil {
		u.showError(err)
		return
	}
	u.showError(nil)
	u.selected = e.Name
	u.reloadProfiles()
	u.addLog(u.now(), fmt.Sprintf("Imported profile %q (%s)", e.Name, strings.Join(e.Gateways, ", ")))
	for _, w := range e.Warnings {
		u.addLog(u.now(), "Import note: "+w)
	}
	u.render()
}

// askSecret shows a password dialog; then calls fn with what was typed.
// The dialog is kept in u.secretDialog for tests.
func (u *UI) askSecret(file, need string, fn func(string)) {
	label := "EAP password"
	hint := file + " holds the username but not the password"
	if need == "p12" {
		label = "Certificate password"
		hint = "the certificate container in " + file + " is encrypted"
	}
	entry := widget.NewPasswordEntry()
	u.secretEntry = entry
	d := dialog.NewForm("Import "+file, "Import", "Cancel",
		[]*widget.FormItem{widget.NewFormItem(label, entry), widget.NewFormItem("", widget.NewLabel(hint))},
		func(ok bool) {
			u.secretEntry = nil
			if ok && entry.Text != "" {
				fn(entry.Text)
			}
		}, u.win)
	u.secretDialog = d
	d.Resize(fyne.NewSize(460, 200))
	d.Show()
}

func (u *UI) removeSelected() {
	name := u.selected
	if name == "" {
		return
	}
	dialog.ShowConfirm("Remove profile", fmt.Sprintf("Remove the profile %q?", name), func(ok bool) {
		if !ok {
			return
		}
		if err := u.opts.Store.Remove(name); err != nil {
			u.showError(err)
			return
		}
		u.selected = ""
		u.reloadProfiles()
		u.render()
	}, u.win)
}

// addLog appends a line to the event log. UI goroutine only.
func (u *UI) addLog(t time.Time, line string) {
	u.events = append(u.events, t.Format("15:04:05")+"  "+line)
	if len(u.events) > maxLogLines {
		u.events = u.events[len(u.events)-maxLogLines:]
	}
	u.eventList.Refresh()
}

// HandleEvent shows one backend event: the log line, a notification on
// failover or an unrequested drop, and a status refresh for state
// changes. UI goroutine only.
func (u *UI) HandleEvent(e sdk.Event) {
	if e.Type == sdk.EventStats {
		return // the status poll feeds the graph
	}
	if line, ok := Describe(e); ok {
		t := e.Time
		if t.IsZero() {
			t = u.now()
		}
		u.addLog(t, line)
	}
	switch e.Type {
	case sdk.EventConnecting, sdk.EventConnected, sdk.EventResumed, sdk.EventHASynced:
		u.dropGen++ // recovering: no "dropped" notification
	}
	switch e.Type {
	case sdk.EventFailover:
		u.dropGen++
		u.notify(fyne.NewNotification("qcdvpn: failed over", "Now using "+orUnknown(e.To)+" (was "+orUnknown(e.From)+")"))
	case sdk.EventDisconnected:
		if !u.wantDown {
			// A drop the client recovers from at once is a failover, with
			// its own notification; say "dropped" only if none follows.
			u.dropGen++
			gen, reason := u.dropGen, firstNonEmpty(e.Reason, e.Error, "the tunnel went down")
			time.AfterFunc(u.dropDelay, func() {
				u.do(func() {
					if u.dropGen == gen {
						u.notify(fyne.NewNotification("qcdvpn: tunnel dropped", reason))
					}
				})
			})
		}
	case sdk.EventConnected:
		// The status poll fills in the rest; show the essentials now.
		u.status.State = StateConnected
		u.status.Gateway = e.Gateway
		u.status.VirtualIP = e.VirtualIP
		u.status.IKESuite, u.status.ESPSuite = firstNonEmpty(e.IKESuite, u.status.IKESuite), firstNonEmpty(e.ESPSuite, u.status.ESPSuite)
		u.status.Resumed = e.Resumed
		u.render()
	}
}

// applyStatus takes a status snapshot and feeds the traffic graph with
// the byte rates since the last one. UI goroutine only.
func (u *UI) applyStatus(st Status) {
	now := u.now()
	if st.State == StateConnected {
		s := st.Stats
		if !u.lastSample.IsZero() && s.BytesIn >= u.lastStats.BytesIn && s.BytesOut >= u.lastStats.BytesOut {
			dt := now.Sub(u.lastSample).Seconds()
			if dt > 0 {
				in, out := float64(s.BytesIn-u.lastStats.BytesIn)/dt, float64(s.BytesOut-u.lastStats.BytesOut)/dt
				u.graph.Add(in, out)
				u.rateLabel.SetText(Rate(in) + " in, " + Rate(out) + " out")
			}
		}
		u.lastStats, u.lastSample = s, now
	} else {
		u.lastSample = time.Time{}
		u.rateLabel.SetText("")
	}
	u.status = st
	if st.LastError != "" && st.State != StateConnected && u.message.Text == "" {
		u.message.SetText(st.LastError)
	}
	u.render()
}

// followEvents streams the backend's events into the UI, reattaching
// every 2 s if the stream ends (the service restarted).
func (u *UI) followEvents(ch <-chan sdk.Event, err error) {
	defer u.wg.Done()
	for first := true; ; first = false {
		if !first {
			ch, err = u.opts.Backend.Events(u.ctx)
		}
		if err == nil {
			for ev := range ch {
				u.do(func() { u.HandleEvent(ev) })
			}
		}
		if u.ctx.Err() != nil {
			return
		}
		msg := "lost the event stream of the qcdvpn engine; retrying"
		if err != nil {
			msg = "cannot follow the qcdvpn engine's events: " + oneLine(err)
		}
		u.log.Warn("desktop: " + msg)
		select {
		case <-u.ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// pollStatus asks the backend for its status every Poll.
func (u *UI) pollStatus() {
	defer u.wg.Done()
	t := time.NewTicker(u.opts.Poll)
	defer t.Stop()
	for {
		u.pollOnce()
		select {
		case <-u.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (u *UI) pollOnce() {
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	st, err := u.opts.Backend.Status(ctx)
	cancel()
	if errors.Is(err, context.Canceled) && u.ctx.Err() != nil {
		return
	}
	u.do(func() {
		if err != nil {
			u.showError(fmt.Errorf("status: %s", oneLine(err)))
			return
		}
		u.applyStatus(st)
	})
}

// Snapshot is what the window shows, read back from its widgets: the
// Xvfb test and --capture use it to check the screen without OCR.
type Snapshot struct {
	Headline     string            `json:"headline"`
	State        string            `json:"state"`
	Fields       map[string]string `json:"fields"`
	Gateways     []string          `json:"gateways"`
	Events       []string          `json:"events"`
	GraphSamples int               `json:"graph_samples"`
	GraphBytesIn float64           `json:"graph_bytes_in"`
	Profiles     []string          `json:"profiles"`
	Selected     string            `json:"selected"`
	Message      string            `json:"message"`
	Mode         string            `json:"mode"`
	// Tray is true when the system tray menu was set up; TrayItems are
	// its items, "(disabled)" appended to those that are.
	Tray      bool     `json:"tray"`
	TrayIcon  string   `json:"tray_icon"`
	TrayItems []string `json:"tray_items"`
}

// Snapshot reads the window's state. UI goroutine only.
func (u *UI) Snapshot() Snapshot {
	s := Snapshot{Headline: u.stateLabel.Text, State: u.status.State, Fields: map[string]string{},
		Events: append([]string(nil), u.events...), Selected: u.selected, Message: u.message.Text, Mode: u.opts.Mode}
	for k, l := range u.fields {
		s.Fields[k] = l.Text
	}
	for _, g := range u.status.Gateways {
		s.Gateways = append(s.Gateways, gatewayLine(g, u.status.State))
	}
	in, _ := u.graph.Samples()
	s.GraphSamples = len(in)
	for _, v := range in {
		s.GraphBytesIn += v
	}
	for _, p := range u.profiles {
		s.Profiles = append(s.Profiles, p.Name)
	}
	// The ready hook may ask before the tray got its first icon.
	if _, s.Tray = u.desk(); s.Tray && u.trayIcon != nil {
		s.TrayIcon = u.trayIcon.Name()
	}
	if u.tray == nil {
		return s
	}
	for _, it := range u.tray.Items {
		if it.IsSeparator {
			continue
		}
		l := it.Label
		if it.Disabled {
			l += " (disabled)"
		}
		s.TrayItems = append(s.TrayItems, l)
	}
	return s
}
