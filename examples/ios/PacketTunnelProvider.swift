// PacketTunnelProvider runs a qcdvpn tunnel in an iOS Network Extension,
// using the framework that `gomobile bind -target=ios -prefix=QCD ./mobile`
// builds (see README.md beside this file). Not built in this repository.
import Foundation
import NetworkExtension
import Network
import Security
import os.log

final class PacketTunnelProvider: NEPacketTunnelProvider {
    private let queue = DispatchQueue(label: "org.qcdvpn.tunnel")
    private var tunnel: QCDMobileTunnel?
    private var pathMonitor: NWPathMonitor?
    private lazy var platform = Platform()

    override func startTunnel(options: [String: NSObject]?, completionHandler: @escaping (Error?) -> Void) {
        guard let proto = protocolConfiguration as? NETunnelProviderProtocol,
              let profile = proto.providerConfiguration?["profile"] as? String else {
            completionHandler(NSError(domain: "qcdvpn", code: 1, userInfo: [NSLocalizedDescriptionKey: "no profile"]))
            return
        }
        // Placeholder settings bring the utun up; the connected event
        // replaces them with the address the gateway assigned.
        setTunnelNetworkSettings(settings(address: "192.0.2.2", dns: [])) { error in
            if let error = error { completionHandler(error); return }
            guard let fd = self.utunDescriptor() else {
                completionHandler(NSError(domain: "qcdvpn", code: 2, userInfo: [NSLocalizedDescriptionKey: "no utun descriptor"]))
                return
            }
            self.queue.async {
                var err: NSError?
                // The tunnel owns (and closes) what it is given: a dup, so
                // the system's own descriptor stays open.
                guard let t = QCDMobileNewTunnel(profile, dup(fd), self.platform, &err) else {
                    completionHandler(err)
                    return
                }
                self.tunnel = t
                self.platform.onConnected = { [weak self] ev in self?.apply(ev) }
                do {
                    try t.start() // blocks until connected, on our queue
                    self.watchPath()
                    completionHandler(nil)
                } catch {
                    t.stop()
                    completionHandler(error)
                }
            }
        }
    }

    override func stopTunnel(with reason: NEProviderStopReason, completionHandler: @escaping () -> Void) {
        pathMonitor?.cancel()
        queue.async {
            self.tunnel?.stop() // deletes the SA at the gateway
            self.tunnel = nil
            completionHandler()
        }
    }

    // apply sets the interface's address and DNS from a connected event
    // (again after a failover that changed them); the utun stays the same.
    private func apply(_ ev: [String: Any]) {
        guard let ip = ev["virtual_ip"] as? String else { return }
        let dns = ev["dns"] as? [String] ?? [], domains = ev["dns_domains"] as? [String] ?? []
        setTunnelNetworkSettings(settings(address: ip, dns: dns, domains: domains)) { error in
            if let error = error { os_log("settings: %{public}@", error.localizedDescription) }
        }
    }

    // domains are the split-DNS domains (RFC 8598): only their queries go
    // to dns; none means every query does.
    private func settings(address: String, dns: [String], domains: [String] = []) -> NEPacketTunnelNetworkSettings {
        let s = NEPacketTunnelNetworkSettings(tunnelRemoteAddress: "127.0.0.1")
        let v4 = NEIPv4Settings(addresses: [address], subnetMasks: ["255.255.255.255"])
        // The profile's traffic.include; a full tunnel uses NEIPv4Route.default().
        v4.includedRoutes = [NEIPv4Route(destinationAddress: "10.200.0.0", subnetMask: "255.255.255.0")]
        s.ipv4Settings = v4
        if !dns.isEmpty {
            let d = NEDNSSettings(servers: dns)
            if !domains.isEmpty { d.matchDomains = domains }
            s.dnsSettings = d
        }
        s.mtu = 1400
        return s
    }

    // A path change (Wi-Fi to cellular): check the gateway at once.
    private func watchPath() {
        let m = NWPathMonitor()
        m.pathUpdateHandler = { [weak self] _ in self?.tunnel?.networkChanged() }
        m.start(queue: queue)
        pathMonitor = m
    }

    // utunDescriptor finds the utun socket behind packetFlow, as
    // WireGuardKit does. ctl_info, sockaddr_ctl and CTLIOCGINFO come from
    // <sys/kern_control.h>, which the iOS SDK does not expose to Swift:
    // declare them in the extension's bridging header.
    private func utunDescriptor() -> Int32? {
        var info = ctl_info()
        withUnsafeMutablePointer(to: &info.ctl_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: $0.pointee)) {
                _ = strcpy($0, "com.apple.net.utun_control")
            }
        }
        for fd: Int32 in 0...1024 {
            var addr = sockaddr_ctl()
            var len = socklen_t(MemoryLayout.size(ofValue: addr))
            let ret = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
            }
            if ret != 0 || addr.sc_family != AF_SYSTEM { continue }
            if info.ctl_id == 0 && ioctl(fd, CTLIOCGINFO, &info) != 0 { continue }
            if addr.sc_id == info.ctl_id { return fd }
        }
        return nil
    }
}

// Platform is what the SDK asks of the app.
final class Platform: NSObject, QCDMobilePlatformProtocol {
    var onConnected: (([String: Any]) -> Void)?

    // iOS routes the extension's own sockets around the tunnel.
    func protect(_ fd: Int32) -> Bool { true }

    func onEvent(_ eventJSON: String?) {
        guard let data = eventJSON?.data(using: .utf8),
              let ev = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
        os_log("event %{public}@", ev["type"] as? String ?? "?")
        if ev["type"] as? String == "connected" { onConnected?(ev) }
    }

    func log(_ level: Int32, msg: String?) {
        let type: OSLogType = level >= QCDMobileLogError ? .error : level >= QCDMobileLogWarn ? .default :
            level >= QCDMobileLogInfo ? .info : .debug
        os_log("%{public}@", type: type, msg ?? "")
    }

    // storeKey: 32 random bytes kept in the Keychain (this device only).
    func storeKey() -> Data? {
        let query: [String: Any] = [kSecClass as String: kSecClassGenericPassword,
                                    kSecAttrService as String: "org.qcdvpn.store-key",
                                    kSecReturnData as String: true]
        var out: CFTypeRef?
        if SecItemCopyMatching(query as CFDictionary, &out) == errSecSuccess, let key = out as? Data { return key }
        var key = Data(count: 32)
        let ok = key.withUnsafeMutableBytes { SecRandomCopyBytes(kSecRandomDefault, 32, $0.baseAddress!) }
        guard ok == errSecSuccess else { return nil }
        let add: [String: Any] = [kSecClass as String: kSecClassGenericPassword,
                                  kSecAttrService as String: "org.qcdvpn.store-key",
                                  kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
                                  kSecValueData as String: key]
        return SecItemAdd(add as CFDictionary, nil) == errSecSuccess ? key : nil
    }

    // stateDir: the extension's Application Support directory.
    func stateDir() -> String {
        let dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
            .appendingPathComponent("qcdvpn")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }
}
