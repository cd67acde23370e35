// Guarantees that the control plane's processes and temp dirs never outlive
// the Node process that started them, however it ends.
//
// Children run in process groups of their own (so a Ctrl-C aimed at the
// terminal's foreground group reaches only us, and we stop them in order).
// That also means nothing kills them if we die hard (SIGKILL, OOM, a crash
// before `stop()`): Linux's PR_SET_PDEATHSIG is out of reach from Node. So one
// small detached bash process per Node process holds the read end of a pipe
// whose write end only we have. We tell it which process groups and dirs we
// own; when the pipe reaches EOF — the kernel closes it when we exit by any
// means — it runs the cleanup scripts we registered (a node's teardown), stops
// those groups, newest first (TERM, then KILL after 5 s), and removes the dirs. A graceful `stop()` untracks everything first, so the reaper has
// nothing left to do. Remaining gap: a SIGKILL aimed at the reaper itself
// together with us (e.g. `kill -9` of both) leaves the children running.
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = [
  "trap '' HUP INT",
  'groups=(); cleanups=(); declare -A dirs=()',
  "while IFS=' ' read -r verb arg; do",
  '  case "$verb" in',
  '    track) groups+=("$arg") ;;',
  '    untrack) for i in "${!groups[@]}"; do [[ ${groups[i]} == "$arg" ]] && unset \'groups[i]\'; done ;;',
  '    dir) dirs["$arg"]=1 ;;',
  '    cleanup) cleanups+=("$arg") ;;',
  '    uncleanup) for i in "${!cleanups[@]}"; do [[ ${cleanups[i]} == "$arg" ]] && unset \'cleanups[i]\'; done ;;',
  "    undir) unset 'dirs[$arg]' ;;",
  '  esac',
  'done',
  // Whether a group's leader still runs. Not `kill -0`: that also succeeds
  // for a zombie, and our orphans' new parent (PID 1, in a container often
  // not a real init) may reap late. Each group here is one process.
  'running() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; st=${st##*) }; [[ ${st%% *} != Z ]]; }',
  // Newest first, each given 5 s after SIGTERM: the webhook, then
  // kube-apiserver (it needs etcd to shut down promptly), then etcd.
  // Cleanup scripts first (newest first, bounded): a node's teardown must
  // stop the kubelet and remove pods while containerd still runs.
  'cidx=("${!cleanups[@]}")',
  'for ((j = ${#cidx[@]} - 1; j >= 0; j--)); do timeout -s KILL 180 "${cleanups[${cidx[j]}]}" </dev/null >/dev/null 2>&1; done',
  'idx=("${!groups[@]}")',
  'for ((j = ${#idx[@]} - 1; j >= 0; j--)); do',
  '  g=${groups[${idx[j]}]}',
  '  kill -TERM -- "-$g" 2>/dev/null || continue',
  '  for _ in $(seq 50); do running "$g" || break; sleep 0.1; done',
  '  kill -KILL -- "-$g" 2>/dev/null',
  'done',
  'for d in "${!dirs[@]}"; do rm -rf -- "$d"; done',
].join('\n');

let reaper: ChildProcess | undefined;

function send(line: string): void {
  if (!reaper) {
    reaper = spawn('bash', ['-c', SCRIPT], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    // Neither the reaper nor its pipe may keep our event loop alive.
    reaper.unref();
    (reaper.stdin as unknown as { unref(): void }).unref();
    // Losing the reaper must not take the tests down with it (an EPIPE on
    // its stdin would be an unhandled 'error'); it only weakens the guarantee.
    const lost = (err: Error) =>
      process.emitWarning(`faultline: the process reaper is gone (${err.message}); a hard crash may leave control-plane processes behind`);
    reaper.once('error', lost);
    reaper.stdin!.once('error', lost);
  }
  reaper.stdin!.write(`${line}\n`);
}

/** Process group `pgid` is killed if this process dies before `untrackGroup`. */
export function trackGroup(pgid: number): void {
  send(`track ${pgid}`);
}
export function untrackGroup(pgid: number): void {
  send(`untrack ${pgid}`);
}

/**
 * `script` (an executable file) runs if this process dies before
 * `untrackCleanup`, before the tracked groups are stopped.
 */
export function trackCleanup(script: string): void {
  if (script.includes('\n')) throw new Error(`cannot track a path containing a newline: ${JSON.stringify(script)}`);
  send(`cleanup ${script}`);
}
export function untrackCleanup(script: string): void {
  send(`uncleanup ${script}`);
}

/** `dir` is removed (after the tracked groups are gone) if this process dies before `untrackDir`. */
export function trackDir(dir: string): void {
  if (dir.includes('\n')) throw new Error(`cannot track a path containing a newline: ${JSON.stringify(dir)}`);
  send(`dir ${dir}`);
}
export function untrackDir(dir: string): void {
  send(`undir ${dir}`);
}
