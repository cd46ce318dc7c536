#!/usr/bin/env bash
# Installs freeswitch/conf/ into a FreeSWITCH configuration directory: steps 1-5 of
# freeswitch/conf/README.md ("Install, step by step"), which shows the same commands.
#
#   scripts/install_freeswitch_conf.sh --conf-dir DIR --password PW [--owner USER:GROUP]
#       [--esl-port N] [--apply [--fs-cli PATH] [--current-password PW]]
#
# Without --apply it only writes files (steps 1-4) and prints the commands of step 5.
# It edits two of your files with one line each (sip_profiles/external.xml and
# dialplan/public.xml; a copy of each is kept once as <file>.before-callcenter) and
# never replaces them; running it again changes nothing more.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../freeswitch/conf" && pwd)
CONF="" PASSWORD="" OWNER="freeswitch:freeswitch" ESL_PORT=8021
APPLY=0 FS_CLI="" CURRENT_PASSWORD="ClueCon"
GATEWAY_INCLUDE='<X-PRE-PROCESS cmd="include" data="external/cc-gateways/*.xml"/>'
INBOUND_INCLUDE='<X-PRE-PROCESS cmd="include" data="callcenter/inbound.xml"/>'

die() { echo "install_freeswitch_conf: $*" >&2; exit 1; }
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --conf-dir) CONF=${2:-}; shift 2 || usage 2 ;;
    --password) PASSWORD=${2:-}; shift 2 || usage 2 ;;
    --owner) OWNER=${2:-}; shift 2 || usage 2 ;;
    --esl-port) ESL_PORT=${2:-}; shift 2 || usage 2 ;;
    --apply) APPLY=1; shift ;;
    --fs-cli) FS_CLI=${2:-}; shift 2 || usage 2 ;;
    --current-password) CURRENT_PASSWORD=${2:-}; shift 2 || usage 2 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
done

[ -n "$CONF" ] || die "--conf-dir is required (packages: /etc/freeswitch; source build: <prefix>/etc/freeswitch, or /usr/local/freeswitch/conf without --prefix; ask a running switch: fs_cli -x 'global_getvar conf_dir')"
[ -f "$CONF/sip_profiles/external.xml" ] || die "$CONF/sip_profiles/external.xml not found: is $CONF the configuration directory?"
[ -f "$CONF/dialplan/public.xml" ] || die "$CONF/dialplan/public.xml not found: is $CONF the configuration directory?"
# The password goes into XML and onto fs_cli's command line: keep it to safe characters.
[[ "$PASSWORD" =~ ^[A-Za-z0-9._~+@%=:,-]{16,128}$ ]] || die "--password: 16-128 of A-Z a-z 0-9 . _ ~ + @ % = : , - (e.g. openssl rand -hex 24)"
[ "$PASSWORD" != "ClueCon" ] || die "--password: not the stock ClueCon"
[[ "$ESL_PORT" =~ ^[0-9]{1,5}$ ]] || die "--esl-port: a port number"
FS_USER=${OWNER%%:*} FS_GROUP=${OWNER#*:}
[ "$FS_GROUP" != "$OWNER" ] || FS_GROUP=$FS_USER
id -u "$FS_USER" >/dev/null 2>&1 || die "no user '$FS_USER': create it (README step 0) or pass --owner of the user FreeSWITCH runs as"
getent group "$FS_GROUP" >/dev/null 2>&1 || die "no group '$FS_GROUP'"

keep_original() { [ -e "$1.before-callcenter" ] || cp -p "$1" "$1.before-callcenter"; }

# Rewrites a file in place (owner and mode kept) with the awk program given.
edit_in_place() {
  local file=$1; shift
  local tmp; tmp=$(mktemp)
  awk "$@" "$file" > "$tmp" || { rm -f "$tmp"; die "cannot edit $file"; }
  cat "$tmp" > "$file"; rm -f "$tmp"
}

find_fs_cli() {
  [ -n "$FS_CLI" ] && { [ -x "$FS_CLI" ] || die "--fs-cli $FS_CLI is not executable"; return; }
  local candidate
  for candidate in "$(command -v fs_cli || true)" "$CONF/../../bin/fs_cli" "$CONF/../bin/fs_cli" \
                   /usr/local/freeswitch/bin/fs_cli /usr/bin/fs_cli; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { FS_CLI=$candidate; return; }
  done
  die "fs_cli not found: pass --fs-cli <prefix>/bin/fs_cli"
}

# fs_cli with a given password; prints FreeSWITCH's answer, fails when it cannot connect.
fs() { "$FS_CLI" -H 127.0.0.1 -P "$ESL_PORT" -p "$1" -T 2000 -t 30000 -x "$2"; }

echo "1. Event Socket: $CONF/autoload_configs/event_socket.conf.xml"
keep_original_if_present() { [ ! -e "$1" ] || keep_original "$1"; }
keep_original_if_present "$CONF/autoload_configs/event_socket.conf.xml"
sed -e "s/CHANGE-ME-same-as-FREESWITCH_PASSWORD/$PASSWORD/" \
    -e "s/name=\"listen-port\" value=\"8021\"/name=\"listen-port\" value=\"$ESL_PORT\"/" \
    "$SRC/autoload_configs/event_socket.conf.xml" > "$CONF/autoload_configs/.event_socket.tmp"
install -m 0640 -o "$FS_USER" -g "$FS_GROUP" "$CONF/autoload_configs/.event_socket.tmp" \
  "$CONF/autoload_configs/event_socket.conf.xml"
rm -f "$CONF/autoload_configs/.event_socket.tmp"
if [ "$APPLY" = 1 ]; then
  find_fs_cli
  fs "$CURRENT_PASSWORD" "reload mod_event_socket" >/dev/null \
    || die "fs_cli could not connect with the current password (--current-password)"
  # The module restarts its listener once the reloading connection has gone: a few
  # seconds on a busy machine. Wait up to a minute.
  deadline=$(( $(date +%s) + 60 ))
  until fs "$PASSWORD" status >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "the Event Socket does not take the new password"
    sleep 0.2
  done
fi

echo "2. The gateway directory: $CONF/sip_profiles/external/cc-gateways (owner $FS_USER:$FS_GROUP, 0750)"
install -d -o "$FS_USER" -g "$FS_GROUP" -m 0750 "$CONF/sip_profiles/external/cc-gateways"
install -m 0640 -o "$FS_USER" -g "$FS_GROUP" "$SRC/sip_profiles/external/cc-gateways/_placeholder.xml" \
  "$CONF/sip_profiles/external/cc-gateways/"

echo "3. The external profile: one include line in $CONF/sip_profiles/external.xml"
PROFILE_FILE="$CONF/sip_profiles/external.xml"
if ! grep -qF 'data="external/cc-gateways/*.xml"' "$PROFILE_FILE"; then
  grep -q '<gateways>' "$PROFILE_FILE" || die "$PROFILE_FILE has no <gateways> element to add the include to"
  keep_original "$PROFILE_FILE"
  edit_in_place "$PROFILE_FILE" -v line="    $GATEWAY_INCLUDE" \
    '{ print } !done && /<gateways>/ { print line; done = 1 }'
fi

echo "4. Dialplan: $CONF/dialplan/callcenter/inbound.xml, included by the public context; cc_park"
install -d -m 0755 "$CONF/dialplan/callcenter" "$CONF/dialplan/default"
install -m 0644 "$SRC/dialplan/callcenter/inbound.xml" "$CONF/dialplan/callcenter/inbound.xml"
install -m 0644 "$SRC/dialplan/default/00_callcenter_park.xml" "$CONF/dialplan/default/"
PUBLIC_FILE="$CONF/dialplan/public.xml"
if ! grep -qF 'data="callcenter/inbound.xml"' "$PUBLIC_FILE"; then
  grep -q '<context name="public">' "$PUBLIC_FILE" || die "$PUBLIC_FILE has no <context name=\"public\">"
  keep_original "$PUBLIC_FILE"
  # Before the stock "public_extensions" (10[01][0-9] -> default) when it is there,
  # else first in the context: either way ahead of every destination_number match.
  if grep -q 'name="public_extensions"' "$PUBLIC_FILE"; then
    edit_in_place "$PUBLIC_FILE" -v line="    $INBOUND_INCLUDE" \
      '!done && /<extension[^>]*name="public_extensions"/ { print line; done = 1 } { print }'
  else
    edit_in_place "$PUBLIC_FILE" -v line="    $INBOUND_INCLUDE" \
      '{ print } !done && /<context name="public">/ { print line; done = 1 }'
  fi
fi

if [ "$APPLY" = 1 ]; then
  echo "5. Load it: reloadxml, sofia profile external restart"
  out=$(fs "$PASSWORD" reloadxml) && [[ "$out" == *"+OK"* ]] || die "reloadxml: $out"
  fs "$PASSWORD" "sofia profile external restart" >/dev/null
  # The restart is asynchronous: wait until the profile is back and runs its gateways.
  deadline=$(( $(date +%s) + 60 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 0.2
    out=$(fs "$PASSWORD" "sofia xmlstatus profile external" 2>/dev/null || true)
    [[ "$out" == *"<profile-info>"* ]] && break
  done
  [[ "$out" == *"<profile-info>"* ]] || die "profile external did not come back after the restart"
  echo "Loaded. Check: $FS_CLI -p <password> -x 'sofia status gateway'"
else
  echo "5. Now load it (fs_cli: <prefix>/bin/fs_cli for a source build):"
  echo "   fs_cli -p <current password, ClueCon on a new install> -x 'reload mod_event_socket'"
  echo "   fs_cli -p <the new password> -x reloadxml"
  echo "   fs_cli -p <the new password> -x 'sofia profile external restart'"
fi
