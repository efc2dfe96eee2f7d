#!/bin/sh
# Runs inside the VM at boot (vmtest.service) as root, with real systemd:
# installs imdsd as a user would, checks what the issue promises, and
# writes CHECK lines and a verdict to /root/vmtest.log, then powers off.
exec > /root/vmtest.log 2>&1
STS=http://10.0.2.100:9000 # guestfwd to the fake STS on the host's loopback
fails=0
check() { # name, then a command that must succeed
	name=$1; shift
	if "$@"; then echo "CHECK ok   $name"; else echo "CHECK FAIL $name"; fails=$((fails+1)); fi
}
has() { grep -q -- "$1" "$2"; }
set -x
mkdir -p /etc/imdsd
printf 'AWS_ACCESS_KEY_ID=AKIAVMTESTBASE000001\nAWS_SECRET_ACCESS_KEY=vm/test/base/secret/000000000000000000000\n' > /etc/imdsd/environment
chmod 600 /etc/imdsd/environment
ARGS="--source assume-role --role-arn arn:aws:iam::123456789012:role/dev --sts-endpoint $STS --sts-region us-east-1 --region eu-west-1"
imdsd install --dry-run -- $ARGS > /tmp/dry 2>&1
check "dry-run prints the unit and writes nothing" has 'ExecStart=/usr/local/bin/imdsd "run"' /tmp/dry
check "dry-run wrote nothing" test ! -e /etc/systemd/system/imdsd.service
check "install" imdsd install -- $ARGS
imdsd install -- $ARGS > /tmp/again 2>&1
check "install again changes nothing" has 'nothing changed' /tmp/again
check "start (Type=notify: returns once credentials are held)" imdsd start
check "active" systemctl is-active --quiet imdsd
P=$(systemctl show imdsd -p MainPID --value)
grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs)' /proc/$P/status > /tmp/proc
check "not root" sh -c "! grep -q '^Uid:[[:space:]]0' /tmp/proc"
check "only CAP_NET_BIND_SERVICE" has 'CapEff:	0000000000000400' /tmp/proc
check "no new privileges" has 'NoNewPrivs:	1' /tmp/proc
check "no core dump (LimitCORE=0)" sh -c "systemctl show imdsd -p LimitCORE --value | grep -qx 0"
ip -br addr show lo > /tmp/lo
check "alias 169.254.169.254/32 on lo" has '169.254.169.254/32' /tmp/lo
TOK=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
check "role listed" sh -c "curl -s -H 'X-aws-ec2-metadata-token: $TOK' http://169.254.169.254/latest/meta-data/iam/security-credentials/ | grep -qx dev"
check "IMDSv1 refused" sh -c "test \$(curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/) = 401"
HOME=/nonexistent /root/sdkclient $STS > /tmp/client 2>&1
cat /tmp/client
check "SDK with no configuration: region from IMDS" has 'region: eu-west-1' /tmp/client
check "SDK with no configuration: get-caller-identity" has 'get-caller-identity: arn:aws:sts::123456789012:assumed-role/dev/' /tmp/client
imdsd status > /tmp/status 2>&1
check "imdsd status: serving" has 'serving valid credentials' /tmp/status
check "systemctl reload" systemctl reload imdsd
check "active after reload" systemctl is-active --quiet imdsd
journalctl -u imdsd --no-pager > /tmp/journal
check "journal: no secret" sh -c "! grep -q 'vm/test/base/secret' /tmp/journal"
check "stop" imdsd stop
check "uninstall" imdsd uninstall
check "uninstall again" imdsd uninstall
check "unit removed" test ! -e /etc/systemd/system/imdsd.service
ip -br addr show lo > /tmp/lo
check "alias removed" sh -c "! grep -q 169.254.169.254 /tmp/lo"
check "config kept" test -e /etc/imdsd/environment

# Socket activation: systemd binds port 80 (FreeBind, before the alias);
# the service then runs with no capability at all.
check "install --socket-activation" imdsd install --socket-activation -- $ARGS
check "socket unit enabled" systemctl is-enabled --quiet imdsd.socket
check "start (socket activation)" imdsd start
P=$(systemctl show imdsd -p MainPID --value)
grep -E '^(CapEff|CapBnd)' /proc/$P/status > /tmp/proc2
check "socket activation: no capability" has 'CapEff:	0000000000000000' /tmp/proc2
HOME=/nonexistent /root/sdkclient $STS > /tmp/client2 2>&1
cat /tmp/client2
check "socket activation: SDK gets credentials" has 'get-caller-identity: arn:aws:sts::123456789012:assumed-role/dev/' /tmp/client2
check "uninstall (socket activation)" imdsd uninstall
check "socket unit removed" test ! -e /etc/systemd/system/imdsd.socket
check "nothing listens on port 80" sh -c "! ss -ltn | grep -q ':80 '"

# A command that may carry a secret stays out of the unit (world-readable):
# install writes it to /etc/imdsd/environment (0600), and the real systemd
# reads it back unchanged, quotes, $, % and backslashes included.
MFA='oathtool --totp -b "$(cat /etc/imdsd/totp)" # it'"'"'s $HOME, 100% \ `id`'
check "install --mfa-command" imdsd install -- $ARGS --mfa-serial arn:aws:iam::123456789012:mfa/dev --mfa-command "$MFA"
check "the unit holds no command" sh -c "! grep -q -e mfa-command -e oathtool /etc/systemd/system/imdsd.service"
check "environment file mode 0600" test "$(stat -c %a /etc/imdsd/environment)" = 600
systemd-run --quiet --pipe --wait -p EnvironmentFile=/etc/imdsd/environment /usr/bin/printenv IMDSD_MFA_COMMAND > /tmp/mfa
check "systemd reads the command back unchanged" test "$(cat /tmp/mfa)" = "$MFA"
check "uninstall (MFA command)" imdsd uninstall
check "uninstall removed install's lines only" sh -c "! grep -q IMDSD_MFA_COMMAND /etc/imdsd/environment && grep -q AWS_ACCESS_KEY_ID /etc/imdsd/environment"
# Containers: install --containers aliases 169.254.170.23 (/32) and serves
# the container credentials endpoint on its port 80 for the roles with
# container: true; the role's token file (0640, group container_token_group,
# which the unit's SupplementaryGroups= lets the dynamic user give it to)
# authorizes the SDK's container provider. Uninstall removes the alias.
groupadd --system imdsd-tokens
cat > /etc/imdsd/containers.yaml <<EOF
admin_socket: /run/imdsd/containers.sock
region: eu-west-1
sts_endpoint: $STS
sts_region: us-east-1
container_token_group: imdsd-tokens
roles:
  - name: dev
    source: assume-role
    role_arn: arn:aws:iam::123456789012:role/dev
    container: true
EOF
check "install --containers" imdsd install --containers -- --config /etc/imdsd/containers.yaml
check "containers: the service joins the token group" has '^SupplementaryGroups=imdsd-tokens$' /etc/systemd/system/imdsd.service
check "start (containers)" imdsd start
ip -br addr show lo > /tmp/lo
check "alias 169.254.170.23/32 on lo" has '169.254.170.23/32' /tmp/lo
TF=/var/lib/imdsd/container-tokens/dev/token
check "token file: mode 0640, group imdsd-tokens" test "$(stat -L -c '%a %G' $TF)" = "640 imdsd-tokens"
# Only root gets there (DynamicUser=yes: /var/lib/private is 0700 root).
stat -c '%a %U:%G %n' /var/lib/private /var/lib/private/imdsd /var/lib/private/imdsd/container-tokens/dev
check "container endpoint: no token, 401" sh -c "test \$(curl -s -o /dev/null -w '%{http_code}' http://169.254.170.23/roles/dev) = 401"
check "container endpoint: the token file's token, credentials" sh -c "curl -sf -H \"Authorization: \$(cat $TF)\" http://169.254.170.23/roles/dev | grep -q AccessKeyId"
AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/roles/dev AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$TF \
	HOME=/nonexistent /root/sdkclient $STS > /tmp/client3 2>&1
cat /tmp/client3
check "SDK: the container provider" has 'credentials from: CredentialsEndpointProvider' /tmp/client3
check "SDK (container provider): get-caller-identity" has 'get-caller-identity: arn:aws:sts::123456789012:assumed-role/dev/' /tmp/client3
# admin_socket is not the default: only ExecReload='s --config finds it.
check "systemctl reload (ExecReload= gets --config)" systemctl reload imdsd
check "uninstall (containers)" imdsd uninstall
ip -br addr show lo > /tmp/lo
check "container alias removed" sh -c "! grep -q 169.254.170.23 /tmp/lo"
check "container tokens kept" test -e $TF

# The same with socket activation: imdsd.socket binds 169.254.170.23:80 too,
# and the service, with no capability, takes it over by its address.
check "install --socket-activation --containers" imdsd install --socket-activation --containers -- --config /etc/imdsd/containers.yaml
check "start (socket activation, containers)" imdsd start
check "socket activation: container endpoint serves" sh -c "curl -sf -H \"Authorization: \$(cat $TF)\" http://169.254.170.23/roles/dev | grep -q AccessKeyId"
journalctl -u imdsd --no-pager > /tmp/journal
check "uninstall (socket activation, containers)" imdsd uninstall
check "nothing listens on port 80 (containers)" sh -c "! ss -ltn | grep -q ':80 '"
check "journal: no secret, no container token" sh -c "! grep -q -e 'vm/test/base/secret' -e \"\$(cat $TF)\" /tmp/journal"

# The .deb (make package) on a clean /etc/imdsd: installed with the example
# config it starts nothing and says what to edit; configured through the
# config file and the environment file, it serves SDKs with no
# configuration; an upgrade restarts it; dpkg -r stops it and removes the
# alias, keeping the config; dpkg -P removes the config.
rm -rf /etc/imdsd
dpkg -i /root/imdsd.deb > /tmp/dpkg 2>&1; st=$?
cat /tmp/dpkg
check "deb: dpkg -i" test $st = 0
check "deb: not started with the example config" sh -c "! systemctl is-active --quiet imdsd"
check "deb: not enabled with the example config" sh -c "! systemctl is-enabled --quiet imdsd"
check "deb: says what to edit" has 'not started: set a credential source in /etc/imdsd/config.yaml' /tmp/dpkg
check "deb: unit under /usr/lib/systemd/system" test -f /usr/lib/systemd/system/imdsd.service
check "deb: config 0640 root:imdsd" test "$(stat -c '%a %U:%G' /etc/imdsd/config.yaml)" = "640 root:imdsd"
check "deb: environment 0600 root:root" test "$(stat -c '%a %U:%G' /etc/imdsd/environment)" = "600 root:root"
printf 'AWS_ACCESS_KEY_ID=AKIAVMTESTBASE000001\nAWS_SECRET_ACCESS_KEY=vm/test/base/secret/000000000000000000000\n' >> /etc/imdsd/environment
cat >> /etc/imdsd/config.yaml <<EOF
source: assume-role
role_arn: arn:aws:iam::123456789012:role/dev
sts_endpoint: $STS
sts_region: us-east-1
region: eu-west-1
EOF
# postinst's first-install path (rpm's argument 1), now with a source: it
# checks the config as the service's user and starts the service.
sh /var/lib/dpkg/info/imdsd.postinst 1 > /tmp/postinst 2>&1
cat /tmp/postinst
check "deb: postinst starts a configured service" has 'starting the service' /tmp/postinst
check "deb: enabled" systemctl is-enabled --quiet imdsd
for _ in $(seq 60); do systemctl is-active --quiet imdsd && break; sleep 1; done
check "deb: stop" systemctl stop imdsd
check "deb: systemctl start imdsd" systemctl start imdsd
check "deb: active" systemctl is-active --quiet imdsd
P=$(systemctl show imdsd -p MainPID --value)
check "deb: runs as imdsd" test "$(stat -c %U /proc/$P)" = imdsd
ip -br addr show lo > /tmp/lo
check "deb: alias 169.254.169.254/32 on lo" has '169.254.169.254/32' /tmp/lo
HOME=/nonexistent /root/sdkclient $STS > /tmp/client4 2>&1
cat /tmp/client4
check "deb: SDK with no configuration: region from IMDS" has 'region: eu-west-1' /tmp/client4
check "deb: SDK with no configuration: get-caller-identity" has 'get-caller-identity: arn:aws:sts::123456789012:assumed-role/dev/' /tmp/client4
check "deb: systemctl reload" systemctl reload imdsd
check "deb: active after reload" systemctl is-active --quiet imdsd
# An upgrade (the same package again) keeps the changed conffiles and
# restarts the running service.
dpkg -i /root/imdsd.deb > /tmp/dpkg2 2>&1; st=$?
cat /tmp/dpkg2
check "deb: dpkg -i again" test $st = 0
check "deb: upgrade keeps the config" has '^source: assume-role' /etc/imdsd/config.yaml
for _ in $(seq 60); do
	[ "$(systemctl show imdsd -p MainPID --value)" != "$P" ] && systemctl is-active --quiet imdsd && break
	sleep 1
done
check "deb: upgrade restarted the service" sh -c "systemctl is-active --quiet imdsd && test \$(systemctl show imdsd -p MainPID --value) != $P"
journalctl -u imdsd --no-pager > /tmp/journal
check "deb: journal: no secret" sh -c "! grep -q 'vm/test/base/secret' /tmp/journal"
check "deb: dpkg -r" dpkg -r imdsd
check "deb: stopped" sh -c "! systemctl is-active --quiet imdsd"
ip -br addr show lo > /tmp/lo
check "deb: alias removed" sh -c "! grep -q 169.254.169.254 /tmp/lo"
check "deb: binary removed" test ! -e /usr/bin/imdsd
check "deb: config kept" test -f /etc/imdsd/config.yaml
check "deb: dpkg -P" dpkg -P imdsd
check "deb: config removed" test ! -e /etc/imdsd
check "deb: state removed" test ! -e /var/lib/private/imdsd
set +x
tail -n 30 /tmp/journal
if [ $fails = 0 ]; then echo "VMTEST PASS"; else echo "VMTEST FAIL ($fails)"; fi
sync
systemctl poweroff -f
