/** The CPU time a process and its children use, from /proc: what a proxy costs a request. */
import { childrenOf, cpuSecondsOf } from '../../src/util/pids.js';

/**
 * CPU seconds (user and system) used so far by `pid` and the children it runs now (an HAProxy
 * or nginx master and its workers). Children that exited are not counted: read it before and
 * after a run of processes that live through it.
 */
export function cpuSeconds(pid: number): number {
  return [pid, ...childrenOf(pid)].reduce((sum, each) => sum + (cpuSecondsOf(each) ?? 0), 0);
}
