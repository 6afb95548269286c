/**
 * keepalived (VRRP) for failover tests: the config of one instance of a pair that holds a virtual
 * address in front of a local Switchboard, and the check script that tells keepalived whether that
 * Switchboard still accepts connections. docs/ha.md shows the same files.
 */

/** One keepalived instance of a VRRP pair: everything but the priority is the same on both. */
export interface VrrpInstance {
  /** Interface that carries VRRP adverts and gets the virtual address. */
  iface: string;
  /** Virtual address with prefix length, e.g. `10.200.0.100/24`. */
  vip: string;
  /** 1-255, the same on both instances and unique on the LAN. */
  routerId: number;
  /** Higher wins; the preferred instance gets the higher one. */
  priority: number;
  /** Seconds between adverts; VRRPv3 takes fractions (a backup takes over ~3 adverts after the master went silent). */
  advertInt: number;
  /** Absolute path of the check script (`checkScript`); keepalived runs it every second and a failure makes this instance give the address up. */
  check: string;
}

/** The keepalived.conf of one instance. */
export function keepalivedConfig(v: VrrpInstance): string {
  return `global_defs {
  # Scripts run as root, and only from paths that no one else may write to.
  script_user root
  enable_script_security
  # Announce a new master at once, then twice more a second apart (for switches that missed one).
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 3
}

vrrp_script switchboard_up {
  script "${v.check}"
  interval 1     # seconds; keepalived's minimum
  timeout 1
  fall 1         # one failed check and this instance steps down
  rise 1
  init_fail      # no address until the local Switchboard answered once
}

vrrp_instance switchboard {
  state BACKUP   # both start as backup; the priorities elect the master
  interface ${v.iface}
  virtual_router_id ${v.routerId}
  version 3
  priority ${v.priority}
  advert_int ${v.advertInt}
  virtual_ipaddress {
    ${v.vip}
  }
  track_script {
    switchboard_up
  }
}
`;
}

/** The check script: exit 0 when something accepts TCP connections on 127.0.0.1:`port` within half a second (bash's /dev/tcp: no curl needed). */
export function checkScript(port: number): string {
  return `#!/bin/bash
# Exit 0 when the local Switchboard accepts connections on port ${port}.
exec timeout 0.5 bash -c '</dev/tcp/127.0.0.1/${port}'
`;
}

/** The arguments for one keepalived of several on a machine: foreground, VRRP only, log to the console, its own pid files. */
export function keepalivedArgs(conf: string, pidDir: string, name: string): string[] {
  return ['--dont-fork', '--log-console', '--no-syslog', '--log-detail', '--vrrp', '-f', conf, '-p', `${pidDir}/${name}.pid`, '-r', `${pidDir}/${name}-vrrp.pid`];
}

/** The VRRP state keepalived logged in `line` (`(switchboard) Entering MASTER STATE` → `MASTER`), or undefined. */
export function vrrpState(line: string): string | undefined {
  return /\) Entering (\w+) STATE/.exec(line)?.[1];
}
