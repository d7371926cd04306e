#!/usr/bin/env bash
# Host-JVM test of the gomobile bindings of package mobile (no Android SDK,
# NDK or device needed):
#   1. gobind -lang=go,java generates the Go glue and the Java API;
#   2. the generated *_android.{go,c,h} are renamed to *_jvm.* (with their
#      includes) so they build on Linux, against a stub <android/log.h>;
#   3. the glue is built as libgojni.so (-buildmode=c-shared,
#      -D__GOBIND_ANDROID__, the JDK's include dirs);
#   4. the generated Java, a stub android.content.Context and
#      mobile/testdata/jvm/MobileTest.java are compiled with javac;
#   5. a `qcdvpn gateway` (netstack data) is started on a random
#      127.x.y.1:4500 and MobileTest runs against it with java.
# Prints SKIP and exits 0 without a JDK or a C compiler. Exits non-zero on
# any failure. Every step is bounded in time; the gateway is always stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

skip() { echo "SKIP: mobile-test: $*"; exit 0; }

if [ -z "${JAVA_HOME:-}" ]; then
	for d in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/default-java; do
		[ -x "$d/bin/javac" ] && JAVA_HOME=$d && break
	done
fi
if [ -z "${JAVA_HOME:-}" ] && command -v javac >/dev/null 2>&1; then
	JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
fi
[ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ] || skip "no JDK (javac) found; install openjdk-17-jdk-headless or set JAVA_HOME"
[ -f "$JAVA_HOME/include/jni.h" ] || skip "no jni.h under $JAVA_HOME/include"
CC=${CC:-gcc}
command -v "$CC" >/dev/null 2>&1 || skip "no C compiler ($CC) for cgo"

work=$(mktemp -d "${TMPDIR:-/tmp}/qcdvpn-mobile-test.XXXXXX")
gwpid=
cleanup() {
	if [ -n "$gwpid" ] && kill -0 "$gwpid" 2>/dev/null; then
		kill -TERM "$gwpid" 2>/dev/null || true
		for _ in $(seq 30); do kill -0 "$gwpid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$gwpid" 2>/dev/null || true
		wait "$gwpid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo "mobile-test: $*"; }

# 1. Bindings.
step "gobind -lang=go,java"
gen=$work/gen
timeout 300 go tool gobind -lang=go,java -javapkg=org.qcdvpn -outdir="$gen" ./mobile

# 2. Neutral names, so that Linux builds what only Android would.
glue=$gen/src/gobind
for f in "$glue"/*_android.go "$glue"/*_android.c "$glue"/*_android.h; do
	[ -e "$f" ] || continue
	mv "$f" "${f/_android./_jvm.}"
done
sed -i 's/_android\.h"/_jvm.h"/' "$glue"/*.c "$glue"/*.h "$glue"/*.go
# liblog is Android's; the stub header below replaces it.
sed -i 's/^\/\/#cgo LDFLAGS: -llog$//' "$glue"/seq_jvm.go
if grep -rq -- '-llog' "$glue"; then echo "mobile-test: generated glue still links -llog" >&2; exit 1; fi

mkdir -p "$work/stub/android"
cat >"$work/stub/android/log.h" <<'H'
/* Stub of the NDK's <android/log.h> for the host-JVM binding test. */
#ifndef QCDVPN_STUB_ANDROID_LOG_H
#define QCDVPN_STUB_ANDROID_LOG_H
#include <stdarg.h>
#include <stdio.h>
enum {
	ANDROID_LOG_UNKNOWN = 0, ANDROID_LOG_DEFAULT, ANDROID_LOG_VERBOSE, ANDROID_LOG_DEBUG,
	ANDROID_LOG_INFO, ANDROID_LOG_WARN, ANDROID_LOG_ERROR, ANDROID_LOG_FATAL, ANDROID_LOG_SILENT
};
static inline int __android_log_print(int prio, const char *tag, const char *fmt, ...) {
	va_list ap;
	int n;
	va_start(ap, fmt);
	fprintf(stderr, "%d %s: ", prio, tag);
	n = vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return n;
}
static inline int __android_log_write(int prio, const char *tag, const char *text) {
	return fprintf(stderr, "%d %s: %s\n", prio, tag, text);
}
#endif
H

# 3. libgojni.so (the JDK's AttachCurrentThread takes void**, Android's
# JNIEnv**: the one difference, silenced): the glue as a module of a workspace with this repo, so it
# builds against the working tree and go.mod's golang.org/x/mobile.
printf 'module gobind\n\ngo 1.26\n' >"$glue/go.mod"
printf 'go 1.26.8\n\nuse (\n\t%s\n\t%s\n)\n' "$repo" "$glue" >"$work/go.work"
step "building libgojni.so"
mkdir -p "$work/lib"
(
	cd "$glue"
	GOWORK=$work/go.work CGO_ENABLED=1 CC=$CC \
		CGO_CFLAGS="-D__GOBIND_ANDROID__ -Wno-incompatible-pointer-types -I$JAVA_HOME/include -I$JAVA_HOME/include/linux -I$work/stub" \
		timeout 600 go build -buildmode=c-shared -o "$work/lib/libgojni.so" .
)

# 4. Java.
step "javac"
mkdir -p "$work/stubjava/android/content" "$work/classes"
cat >"$work/stubjava/android/content/Context.java" <<'J'
package android.content;

/** Stub of Android's Context: go.Seq names it, the host JVM has none. */
public class Context {}
J
find "$gen/java" "$work/stubjava" -name '*.java' >"$work/sources"
echo "$repo/mobile/testdata/jvm/MobileTest.java" >>"$work/sources"
timeout 300 "$JAVA_HOME/bin/javac" -nowarn -d "$work/classes" @"$work/sources"

# 5. A gateway on loopback, then the test.
step "building qcdvpn"
timeout 600 go build -o "$work/qcdvpn" ./cmd/qcdvpn
psk=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
tkey=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
for try in 1 2 3 4 5; do
	addr="127.$((16 + RANDOM % 224)).$((RANDOM % 256)).1"
	cat >"$work/gateway.json" <<G
{"listen": ["$addr:4500"], "id": "gw.jvm.test",
 "auth": {"method": "psk", "psk": "0x$psk"},
 "pool": ["10.100.0.0/24"], "local_ts": ["10.200.0.0/24"],
 "ike_proposals": ["aes256gcm16-prfsha256-x25519"], "esp_proposals": ["aes256gcm16"],
 "qcd": {"secret_file": "$work/gw/qcd.secret"},
 "tickets": {"keys": [{"id": "k1", "key_hex": "$tkey"}], "lifetime": "1h"},
 "data": "netstack", "state_dir": "$work/gw"}
G
	: >"$work/gateway.events"
	"$work/qcdvpn" gateway -c "$work/gateway.json" --events json --log-level warn >"$work/gateway.events" 2>"$work/gateway.log" &
	gwpid=$!
	for _ in $(seq 100); do
		grep -q '"type":"listening"' "$work/gateway.events" && break
		kill -0 "$gwpid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q '"type":"listening"' "$work/gateway.events" && break
	kill -KILL "$gwpid" 2>/dev/null || true
	wait "$gwpid" 2>/dev/null || true
	gwpid=
	echo "mobile-test: gateway on $addr did not start (try $try):" >&2
	cat "$work/gateway.log" >&2
done
[ -n "$gwpid" ] || { echo "mobile-test: FAIL: no gateway" >&2; exit 1; }
step "gateway listening on $addr:4500 (pid $gwpid)"

cat >"$work/profile.json" <<P
{"name": "jvm-test", "gateways": ["$addr:4500"],
 "remote_id": "gw.jvm.test", "local_id": "client.jvm.test",
 "auth": {"method": "psk", "psk": "0x$psk"},
 "ike_proposals": ["aes256gcm16-prfsha256-x25519"], "esp_proposals": ["aes256gcm16"],
 "traffic": {"include": ["10.200.0.0/24"]}}
P
step "java MobileTest"
status=0
timeout 120 "$JAVA_HOME/bin/java" -Xss4m -Djava.library.path="$work/lib" -cp "$work/classes" MobileTest "$work/profile.json" "$psk" || status=$?
if [ "$status" -ne 0 ]; then
	echo "mobile-test: FAIL (java exited $status); gateway log:" >&2
	cat "$work/gateway.log" >&2
	exit 1
fi
echo "mobile-test: PASS"
