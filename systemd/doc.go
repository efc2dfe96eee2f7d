// Package systemd holds the systemd units imdsd installs, as embedded
// files: imdsd.service, with the placeholders {{Path}}, {{Arguments}},
// {{ReloadArguments}} and {{UserName}}, and imdsd.socket for socket
// activation. Service renders the unit for one install, Socket the socket
// unit; the launchd plist is package launchd's.
//
// A rendered unit is complete. Package install hands it to kardianos/service
// as its SystemdScript option, whose own small template engine passes a text
// without "{{" through unchanged: imdsd's units are not kardianos templates,
// so --dry-run prints exactly the file kardianos writes.
//
// It owns the text of those files and the few variants install asks for
// (IPv6 aliases and listeners, the container endpoint's, socket
// activation, the token group, reload's flags); it makes no host change and
// imports nothing beyond the standard library. In particular it must not
// import kardianos/service, install, imds, rotator or daemon.
//
// # The unit
//
//   - Type=notify: imdsd sends READY=1 once it holds its first credentials,
//     so units ordered after imdsd.service start with credentials to serve.
//     TimeoutStartSec=2min bounds that wait; a failed start is retried by
//     Restart=on-failure every RestartSec=2, and StartLimitBurst=10 in
//     StartLimitIntervalSec=10min stops a crash loop without giving up on a
//     laptop that boots offline (each timed-out start takes over two
//     minutes, so timeouts alone never reach the limit).
//   - ExecStartPre=+imdsd alias add ADDR…: the "+" prefix runs this one
//     command as root and exempts it from User=, DynamicUser=, the
//     capability sets, NoNewPrivileges=, the file-system namespacing and
//     every seccomp-based option (RestrictAddressFamilies=, SystemCallFilter=,
//     MemoryDenyWriteExecute=…), so `ip` gets the AF_NETLINK socket and the
//     CAP_NET_ADMIN it needs. Options applied to the whole control group
//     still apply to it (DevicePolicy=closed from PrivateDevices=); `ip`
//     opens no device. The alias stays when the service stops and is
//     removed by `imdsd uninstall`.
//   - DynamicUser=yes with User=imdsd: no account to create at install or
//     delete at uninstall, and no files left owned by a stale UID. When an
//     account of that name exists (an admin created it to put people in its
//     group for the admin socket, or the install names a real user whose
//     profile imdsd reads), systemd uses it instead of a dynamic one.
//   - ExecReload= runs imdsd reload with the --admin-socket and --config of
//     ExecStart= (Unit.ReloadArgs): without them, reload would look for
//     the admin socket where an imdsd run without them listens.
//   - StateDirectory=imdsd (mode 0700) holds the container tokens
//     (container_tokens.go of the daemon: DIR/ROLE/token, directories 0750,
//     files 0640). Under DynamicUser=yes it is /var/lib/private/imdsd,
//     reached through the /var/lib/imdsd symlink, and systemd keeps
//     /var/lib/private itself 0700 root: only root reaches the tokens,
//     whatever StateDirectoryMode= says, so a wider mode would give no one
//     anything. Root is who needs them: docker and rootful podman resolve a
//     bind mount of /var/lib/imdsd/container-tokens/ROLE as root, and a
//     container whose processes are not root reads the mounted file through
//     the token group (docker run --group-add GID). A rootless podman user
//     cannot reach that path at all: such a setup needs container_token_dir
//     outside /var/lib/private (a directory the user can traverse, owned by
//     a static imdsd account, granted by a drop-in's ReadWritePaths=), the
//     user in container_token_group, and podman run --group-add keep-groups.
//   - SupplementaryGroups= names container_token_group when the
//     configuration has one and serves containers (Unit.Groups): imdsd
//     gives the token files to that group, which chown(2) allows a non-root
//     owner only for a group it is a member of. The group must exist when
//     the service starts; install checks that it exists now. chown(2) is in
//     @privileged, which the system-call filter denies: with a group, a
//     later SystemCallFilter=@chown allows it again (systemd applies the
//     lines in order), and only then.
//   - LimitCORE=0: a crash never writes a core dump, which would put the
//     credentials imdsd holds in memory on disk (the security issue).
//   - EnvironmentFile=-/etc/imdsd/environment (mode 0600, read by systemd
//     as root): base credentials, and the run flags that may carry secrets
//     (--mfa-command, --web-identity-token-command,
//     --saml-assertion-command), which imdsd install writes there as
//     IMDSD_* variables instead of into this world-readable unit.
//   - Environment=GOMAXPROCS=1: the Go runtime reads it before any
//     package starts, so start-up runs on one P and an idle imdsd keeps
//     about 350 KiB less private memory (each P caches partly used memory
//     spans of its own; BENCHMARKS.md). imdsd run sets one P itself when
//     the variable is unset, but only after start-up.
//   - Only CAP_NET_BIND_SERVICE, for port 80 (socket activation drops even
//     that). ProtectHome=read-only lets a service running as a real user
//     read its ~/.aws profile; everything else is read-only
//     (ProtectSystem=strict) except RuntimeDirectory= (the admin socket,
//     /run/imdsd, mode 0750) and StateDirectory=.
//   - RestrictAddressFamilies= keeps AF_INET and AF_INET6 (the listener, STS),
//     AF_UNIX (sd_notify, the admin socket) and AF_NETLINK (Go's
//     net.InterfaceAddrs for the same-host client check).
//   - SystemCallFilter=@system-service minus @privileged and @resources, with
//     SystemCallErrorNumber=EPERM: the Go runtime raises RLIMIT_NOFILE at
//     start-up (setrlimit is in @resources); with the default action that
//     would kill it, with EPERM it keeps the limit systemd set.
//   - MemoryDenyWriteExecute=yes holds for imdsd (Go never maps W+X) and for
//     every child it starts: a credential_process written for a JIT runtime
//     (Node.js, Java) fails under it.
//
// # Socket activation
//
// With imdsd.socket, systemd binds 169.254.169.254:80 (and
// [fd00:ec2::254]:80; with Containers also 169.254.170.23:80 and
// [fd00:ec2::23]:80) with FreeBind=yes, before the aliases exist, and starts
// imdsd.service with the listeners as file descriptors 3… (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES=imds:imds…; sd_listen_fds(3)). One socket unit
// has one FileDescriptorName= for all its sockets: imdsd run tells them
// apart by their address, using each instead of binding the --listen or
// --container-listen address equal to it, when LISTEN_PID is its own PID. The service then
// needs no capability (CapabilityBoundingSet= is empty). imdsd.service stays
// enabled for boot: it adds the alias, and until then no client can reach
// the socket to trigger a start.
package systemd
