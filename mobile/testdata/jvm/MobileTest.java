// MobileTest drives the gobind-generated Java API of package mobile on a
// host JVM, as an Android app would: it implements Platform, starts a
// Tunnel (netstack, tunFD -1) against a qcdvpn gateway on loopback, and
// checks the events, Protect and StatusJSON. scripts/mobile-test.sh
// builds and runs it; it prints PASS or FAIL and exits 0 or 1.

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.qcdvpn.mobile.Mobile;
import org.qcdvpn.mobile.Platform;
import org.qcdvpn.mobile.Tunnel;

public class MobileTest {
    static final class TestPlatform implements Platform {
        final BlockingQueue<String> events = new LinkedBlockingQueue<>();
        final List<Integer> protectedFds = new CopyOnWriteArrayList<>();
        final List<String> logs = new CopyOnWriteArrayList<>();
        final byte[] key = new byte[32];
        final String dir;

        TestPlatform(String dir) {
            new SecureRandom().nextBytes(key);
            this.dir = dir;
        }

        @Override public boolean protect(int fd) {
            protectedFds.add(fd);
            return fd >= 0;
        }

        @Override public void onEvent(String eventJSON) {
            System.out.println("event: " + eventJSON);
            events.add(eventJSON);
        }

        @Override public void log(int level, String msg) {
            logs.add(msg);
            if (level >= Mobile.LogWarn) {
                System.err.println("log " + level + ": " + msg);
            }
        }

        @Override public byte[] storeKey() { return key; }

        @Override public String stateDir() { return dir; }

        /** Waits for an event of the given type; null after the timeout. */
        String await(String type, long seconds) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            String needle = "\"type\":\"" + type + "\"";
            for (;;) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                String e = events.poll(left, TimeUnit.NANOSECONDS);
                if (e == null) {
                    return null;
                }
                if (e.contains(needle)) {
                    return e;
                }
            }
        }
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAIL: " + what);
            System.exit(1);
        }
        System.out.println("ok: " + what);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: MobileTest PROFILE.json SECRET");
            System.exit(2);
        }
        String profile = Files.readString(Path.of(args[0]));
        String secret = args[1];
        Path dir = Files.createTempDirectory("qcdvpn-jvm-state");
        TestPlatform p = new TestPlatform(dir.toString());

        // A bad profile is an exception naming the field.
        try {
            Mobile.newTunnel("{\"name\":\"x\",\"bogus\":1}", -1, p);
            check(false, "a bad profile is refused");
        } catch (Exception e) {
            check(e.getMessage().contains("bogus"), "a bad profile is refused: " + e.getMessage());
        }

        Tunnel t = Mobile.newTunnel(profile, -1, p);
        t.setLogLevel(Mobile.LogDebug);
        check(t.statusJSON().contains("\"state\":\"idle\""), "idle before start: " + t.statusJSON());
        t.start();
        String connected = p.await("connected", 15);
        check(connected != null, "connected event through OnEvent");
        check(connected.contains("\"virtual_ip\":") && connected.contains("\"ike_spi_i\":")
                && connected.contains("\"resumed\":false"), "connected event fields");
        check(!p.protectedFds.isEmpty() && p.protectedFds.get(0) >= 0,
                "Protect called for the UDP socket: " + p.protectedFds);
        String status = t.statusJSON();
        check(status.contains("\"state\":\"connected\""), "StatusJSON connected: " + status);
        t.networkChanged();
        Thread.sleep(300);
        check(t.statusJSON().contains("\"state\":\"connected\""), "still connected after NetworkChanged");

        t.stop();
        String disconnected = p.await("disconnected", 10);
        check(disconnected != null, "disconnected event after Stop");
        check(t.statusJSON().contains("\"state\":\"stopped\""), "StatusJSON stopped");
        try {
            t.start();
            check(false, "Start after Stop is refused");
        } catch (Exception e) {
            check(true, "Start after Stop is refused: " + e.getMessage());
        }
        boolean leaked = false;
        for (String l : p.logs) {
            leaked |= l.contains(secret);
        }
        check(!leaked, "no secret in " + p.logs.size() + " log lines");
        System.out.println("PASS");
        System.exit(0);
    }
}
