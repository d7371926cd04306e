// QcdVpnService runs a qcdvpn tunnel in an Android VpnService, using the
// AAR that `gomobile bind -target=android -javapkg=org.qcdvpn ./mobile`
// builds (see README.md beside this file). Not built in this repository.
package org.qcdvpn.example

import android.content.Intent
import android.net.ConnectivityManager
import android.net.Network
import android.net.VpnService
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Log
import java.io.File
import java.security.KeyStore
import java.security.SecureRandom
import java.util.concurrent.Executors
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import org.json.JSONObject
import org.qcdvpn.mobile.Mobile
import org.qcdvpn.mobile.Platform
import org.qcdvpn.mobile.Tunnel

class QcdVpnService : VpnService() {
    private val worker = Executors.newSingleThreadExecutor()
    @Volatile private var tunnel: Tunnel? = null
    private var netCallback: ConnectivityManager.NetworkCallback? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        if (intent?.action == ACTION_STOP) {
            worker.execute { stopTunnel() }
            return START_NOT_STICKY
        }
        val profile = intent?.getStringExtra(EXTRA_PROFILE) ?: return START_NOT_STICKY
        worker.execute { startTunnel(profile) }
        return START_STICKY
    }

    override fun onRevoke() = stopTunnel() // the user turned the VPN off in Settings

    override fun onDestroy() {
        stopTunnel()
        worker.shutdown()
        super.onDestroy()
    }

    private fun startTunnel(profile: String) {
        stopTunnel()
        try {
            // The interface needs the address the gateway assigns, so the
            // TUN is attached later, from the connected event (TUNLater).
            val t = Mobile.newTunnel(profile, Mobile.TUNLater, platform)
            tunnel = t
            t.start() // blocks until connected (or throws): we are on the worker thread
            watchNetwork()
        } catch (e: Exception) {
            Log.e(TAG, "tunnel failed: ${e.message}")
            stopTunnel()
            stopSelf()
        }
    }

    private fun stopTunnel() {
        netCallback?.let { getSystemService(ConnectivityManager::class.java).unregisterNetworkCallback(it) }
        netCallback = null
        tunnel?.stop() // deletes the SA at the gateway, closes the socket and the TUN
        tunnel = null
    }

    // A new default network (Wi-Fi to cellular): have the tunnel check the
    // path at once instead of waiting for traffic to go unanswered.
    private fun watchNetwork() {
        val cb = object : ConnectivityManager.NetworkCallback() {
            override fun onAvailable(network: Network) { tunnel?.networkChanged() }
            override fun onLost(network: Network) { tunnel?.networkChanged() }
        }
        getSystemService(ConnectivityManager::class.java).registerDefaultNetworkCallback(cb)
        netCallback = cb
    }

    // establish builds the interface for a connected event; the
    // descriptor goes to the tunnel, which owns and closes it.
    private fun establish(t: Tunnel, ev: JSONObject) {
        val b = Builder().setSession(ev.optString("gateway")).setMtu(1400).setBlocking(false)
        val ip = ev.getString("virtual_ip")
        b.addAddress(ip, if (ip.contains(':')) 128 else 32)
        ev.optJSONArray("dns")?.let { for (i in 0 until it.length()) b.addDnsServer(it.getString(i)) }
        // VpnService has no per-domain DNS routing: the split domains
        // (RFC 8598) become search domains, the servers serve every query.
        ev.optJSONArray("dns_domains")?.let { for (i in 0 until it.length()) b.addSearchDomain(it.getString(i)) }
        // The profile's traffic.include; a full tunnel would add 0.0.0.0/0 and ::/0.
        b.addRoute("10.200.0.0", 24)
        val pfd = b.establish() ?: throw IllegalStateException("VPN permission revoked")
        t.attachTUN(pfd.detachFd())
    }

    private val platform = object : Platform {
        // Every UDP socket the SDK opens goes around the tunnel.
        override fun protect(fd: Int): Boolean = this@QcdVpnService.protect(fd)

        // Events arrive one at a time, in order, on a Go thread.
        override fun onEvent(eventJSON: String) {
            val ev = JSONObject(eventJSON)
            Log.i(TAG, "event ${ev.getString("type")}")
            if (ev.getString("type") == "connected") {
                val t = tunnel ?: return
                try {
                    establish(t, ev) // again after a failover that changed the address
                } catch (e: Exception) {
                    Log.e(TAG, "establish: ${e.message}")
                    worker.execute { stopTunnel(); stopSelf() }
                }
            }
        }

        override fun log(level: Int, msg: String) {
            when {
                level >= Mobile.LogError -> Log.e(TAG, msg)
                level >= Mobile.LogWarn -> Log.w(TAG, msg)
                level >= Mobile.LogInfo -> Log.i(TAG, msg)
                else -> Log.d(TAG, msg)
            }
        }

        override fun storeKey(): ByteArray = StoreKey.get(this@QcdVpnService.noBackupFilesDir)

        override fun stateDir(): String = File(noBackupFilesDir, "qcdvpn").apply { mkdirs() }.path
    }

    companion object {
        const val TAG = "qcdvpn"
        const val EXTRA_PROFILE = "org.qcdvpn.example.PROFILE"
        const val ACTION_STOP = "org.qcdvpn.example.STOP"
    }
}

// StoreKey is the 32-byte key that seals tickets and QCD tokens: random,
// kept on disk wrapped by an AES-GCM key that never leaves the Android
// Keystore.
object StoreKey {
    private const val ALIAS = "qcdvpn-store-key"

    fun get(dir: File): ByteArray {
        val file = File(dir, "qcdvpn-store-key.bin")
        val wrap = keystoreKey()
        if (file.exists()) {
            val blob = file.readBytes()
            val c = Cipher.getInstance("AES/GCM/NoPadding")
            c.init(Cipher.DECRYPT_MODE, wrap, GCMParameterSpec(128, blob, 0, 12))
            return c.doFinal(blob, 12, blob.size - 12)
        }
        val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
        val c = Cipher.getInstance("AES/GCM/NoPadding")
        c.init(Cipher.ENCRYPT_MODE, wrap)
        file.writeBytes(c.iv + c.doFinal(key))
        return key
    }

    private fun keystoreKey(): SecretKey {
        val ks = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (ks.getKey(ALIAS, null) as? SecretKey)?.let { return it }
        val gen = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        gen.init(
            KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build()
        )
        return gen.generateKey()
    }
}
