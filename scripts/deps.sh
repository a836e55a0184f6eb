#!/usr/bin/env bash
# Installs what building and testing rvs needs on Debian 12, idempotently:
# only when something is missing does it run apt-get.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip       || need+=(iproute2)
have nginx    || need+=(nginx-light)
have curl     || need+=(curl)
have wrk      || need+=(wrk)
have tcpdump  || need+=(tcpdump)
have tshark   || need+=(tshark)
have nft      || need+=(nftables)
have haproxy  || need+=(haproxy)
have taskset  || need+=(util-linux)
have ss       || need+=(iproute2)
have cc       || need+=(gcc)
have ping     || need+=(iputils-ping)
have arping   || need+=(arping)
have keepalived || need+=(keepalived)
have python3  || need+=(python3)
have /usr/lib/frr/zebra || need+=(frr)
have bird     || need+=(bird2)
have hping3   || need+=(hping3)
have ethtool  || need+=(ethtool)
# e2e vlan.rs: the 802.1Q switch (userspace datapath; the kernel has no 8021q).
have ovs-vswitchd || need+=(openvswitch-switch)
# rvs-bench e2e's reference rows: DPDK testpmd over net_af_xdp / net_af_packet.
have dpdk-testpmd || need+=(dpdk-dev)
ls /usr/lib/*/dpdk/pmds-*/librte_net_af_xdp.so* >/dev/null 2>&1 || need+=(librte-net-af-xdp23)
# rvsd --features dpdk: bindgen over DPDK's headers needs libclang.
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # frr and bird2 ship services that would start in the host's namespace:
  # the tests run their own daemons per namespace, so keep the packaged
  # ones from starting (policy-rc.d, only for this install).
  # (RVS_POLICY_RC: another path, for the script's own test.)
  policy=${RVS_POLICY_RC:-/usr/sbin/policy-rc.d}
  made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  # A policy file that was there before (Docker-built images ship one)
  # stays, and is no failure of this script.
  status=0
  apt-get install -y -q "${need[@]}" || status=$?
  if [ -n "$made_policy" ]; then rm -f "$policy"; fi
  exit $status
fi
