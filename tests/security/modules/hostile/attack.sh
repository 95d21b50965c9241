#!/bin/sh
# Hostile behaviours, one per argument; each reports what it managed in /outputs/report.
r=/outputs/report
case "$1" in
network)
    if wget -q -T 3 -O /dev/null http://1.1.1.1/ 2>/dev/null; then echo wget=ok >>$r; else echo wget=fail >>$r; fi
    if nc -w 3 8.8.8.8 53 </dev/null 2>/dev/null; then echo nc=ok >>$r; else echo nc=fail >>$r; fi
    if nslookup example.com >/dev/null 2>&1; then echo dns=ok >>$r; else echo dns=fail >>$r; fi
    if [ -S /var/run/docker.sock ]; then echo docker_sock=present >>$r; else echo docker_sock=absent >>$r; fi
    echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')" >>$r ;;
escape)
    for p in /escape /etc/escape /usr/bin/escape /inputs/escape /outputs/../escape /proc/sys/kernel/hostname; do
        if echo pwned 2>/dev/null >"$p"; then echo "write:$p=ok" >>$r; else echo "write:$p=fail" >>$r; fi
    done
    if mount -t tmpfs none /mnt 2>/dev/null; then echo mount=ok >>$r; else echo mount=fail >>$r; fi
    if chroot / true 2>/dev/null; then echo chroot=ok >>$r; else echo chroot=fail >>$r; fi ;;
forkbomb)
    echo started >>$r
    bomb() { bomb & bomb & wait; }
    bomb ;;
memory)
    echo started >>$r
    x=a; while true; do x="$x$x"; done ;;
disk)
    echo started >>$r
    dd if=/dev/zero of=/outputs/fill bs=1M count=100000 2>/dev/null
    echo "dd_exit=$?" >>$r ;;
tmpfs)
    dd if=/dev/zero of=/tmp/fill bs=1M count=100000 2>/dev/null
    echo "tmp_kib=$(du -k /tmp/fill | cut -f1)" >>$r ;;
forever)
    echo started >>$r
    while true; do sleep 1; done ;;
loud)
    yes "lilypad loud module: printing gigabytes of output to stdout and stderr" | tee /dev/stderr ;;
*)
    echo "unknown attack $1" >&2; exit 2 ;;
esac
