#!/bin/bash
# Thread/wait-policy experiment on the quick routing study (quiet machine only).
CLI=${CLI:-$(cd "$(dirname "$0")/../.." && pwd)/src/Amalgam.Cli/bin/Release/net10.0/Amalgam.Cli.dll}
run() { name=$1; shift; rm -rf /tmp/p-$name; env "$@" /usr/bin/time -f "$name wall %e user %U sys %S cs_vol %w" dotnet $CLI $EXTRA study --quick --strategies route --out /tmp/p-$name > /tmp/p-$name.log 2>&1; tail -1 /tmp/p-$name.log; cat /proc/loadavg; }
for round in 1 2; do
EXTRA="" run passive OMP_WAIT_POLICY=PASSIVE
EXTRA="" run spin300k OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=300000
EXTRA="" run spin20k OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=20000
EXTRA="--threads 1" run threads1 OMP_WAIT_POLICY=PASSIVE
done
