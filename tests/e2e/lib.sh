# lib.sh — helpers the CLI tests share; sourced right after `set -euo pipefail`. The output
# files (out.txt/err.txt, out/err) land in the folder the script is in when it calls them.
#
#   fail MSG...            print "FAIL (script): MSG" and exit 1
#   mf ARGS...             run "$MF" ARGS, stdout/stderr kept in out.txt/err.txt, exit code in RC
#   expect_rc CODE WHAT    fail (showing both outputs) unless RC is CODE
#   expect CODE CMD...     run CMD, stdout/stderr kept in out/err, fail unless it exits CODE
#   has FILE TEXT          fail unless FILE contains TEXT (fixed string)
#   lacks FILE TEXT        fail if FILE contains TEXT

E2E_NAME=$(basename "$0" .sh)

fail() {
  echo "FAIL ($E2E_NAME): $*" >&2
  exit 1
}

mf() {
  set +e
  "$MF" "$@" >out.txt 2>err.txt
  RC=$?
  set -e
}

expect_rc() {
  [ "$RC" -eq "$1" ] || { cat out.txt err.txt >&2; fail "$2: exit $RC, expected $1"; }
}

expect() {
  local want=$1 rc=0
  shift
  "$@" >out 2>err || rc=$?
  [ "$rc" -eq "$want" ] || { cat out err >&2; fail "'$*' exited $rc, expected $want"; }
}

has() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks '$2'"; }; }
lacks() { if grep -qF -- "$2" "$1"; then cat "$1" >&2; fail "$1 has '$2'"; fi; }
