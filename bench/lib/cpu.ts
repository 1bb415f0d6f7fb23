/** The CPU time a process and its children use, from /proc: what a proxy costs a request. */
import { childrenOf, procStat } from '../../src/util/pids.js';

/** The kernel's clock ticks a second (`getconf CLK_TCK`: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user and system) used so far by `pid` and the children it runs now (an HAProxy
 * or nginx master and its workers). Children that exited are not counted: read it before and
 * after a run of processes that live through it.
 */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const each of [pid, ...childrenOf(pid)]) {
    const fields = procStat(each);
    // After the command: state is the first field, utime the 12th, stime the 13th (proc(5)).
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS_PER_SECOND;
}
